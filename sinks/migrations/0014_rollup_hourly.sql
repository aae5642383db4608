-- 0014: hourly rollups rebuilt from the 1-minute rollups, for dashboard ranges of days.
--
-- Why: llm_rollup_1m holds one row per (raw Kafka record, dimension group) and minute, so 30 days of
-- it are tens of millions of rows (more with small SDK batches), and a 30-day panel that merges their
-- sketches with FINAL takes seconds. llm_rollup_1h holds one row per (hour, dimension group): the same
-- sums, sketch bins (sumMap), minima and maxima, with the per-record keys merged away.
--
-- Exactness under replays: the hourly rows are computed FROM llm_rollup_1m FINAL (replayed records
-- already collapsed), never from inserted blocks, so a sink replay is not counted twice. An insert
-- trigger (a plain materialized view) would see every replayed block and double-count it.
-- The aggregation is written once, as the view llm_rollup_1h_source (the time filters of its readers
-- reach the 1-minute table's primary key). The refreshable materialized view below recomputes the
-- last 3 complete hours from it every 5 minutes and
-- appends them; ReplacingMergeTree(computed_at) keeps the newest computation of each (hour, group).
-- Guarantees, for an hour H (UTC) whose 1-minute rows do not change after H + 3 h:
--   * from the first refresh after H + 1 h (at most 5 minutes later) until H + 4 h, and for good after
--     that, llm_rollup_1h holds exactly what llm_rollup_1m FINAL aggregates to for H, per group;
--   * a late event that reaches llm_rollup_1m more than 3 hours after its hour ended is in the 1-minute
--     table but not in the hourly one (the dashboards read the hourly table only for hours that ended
--     at least 1 hour ago, and only when the panel's time step is a whole number of hours).
-- lifecycle is not in the key (as in 0007): per hour it is the newest row's value; it is a function of
-- (provider, model, day), so one hour has one value unless the catalog changed meanwhile.
-- The refresh runs in the ClickHouse server process, or in the chdb process holding the folder, for as
-- long as that process lives; SYSTEM REFRESH VIEW / SYSTEM WAIT VIEW run it on demand.
--
-- The last statement backfills every complete hour already in llm_rollup_1m (a one-off scan of the
-- table with FINAL). Every statement is idempotent: IF NOT EXISTS, and a second backfill replaces the
-- first one's rows (same key, newer computed_at).
CREATE TABLE IF NOT EXISTS {database}.llm_rollup_1h
(
    window_start DateTime64(3, 'UTC'),
    service LowCardinality(String),
    environment LowCardinality(String),
    provider_name LowCardinality(String),
    model LowCardinality(String),
    span_kind LowCardinality(String),
    prompt_name LowCardinality(String),
    prompt_version LowCardinality(String),
    variant LowCardinality(String),
    status LowCardinality(String),
    lifecycle LowCardinality(String),
    requests UInt64,
    errors UInt64,
    rate_limited UInt64,
    timeouts UInt64,
    error_types Map(LowCardinality(String), UInt64),
    input_tokens UInt64,
    output_tokens UInt64,
    cache_read_input_tokens UInt64,
    cache_creation_input_tokens UInt64,
    reasoning_output_tokens UInt64,
    cost_usd Float64,
    priced_requests UInt64,
    unpriced_requests UInt64,
    reported_cost_usd Float64,
    latency_bins Map(Int32, UInt64),
    latency_zero_count UInt64,
    latency_sum_ms Float64,
    ttft_bins Map(Int32, UInt64),
    ttft_zero_count UInt64,
    tokens_per_s_bins Map(Int32, UInt64),
    tokens_per_s_zero_count UInt64,
    ratelimit_remaining_requests_min Nullable(UInt64),
    ratelimit_remaining_tokens_min Nullable(UInt64),
    max_sent_at DateTime64(3, 'UTC'),
    computed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, environment, service, provider_name, model, span_kind, status, prompt_name,
          prompt_version, variant)
TTL toDateTime(window_start) + INTERVAL 400 DAY;

-- The hourly aggregation, written once: the refresh and the backfill below read it.
CREATE VIEW IF NOT EXISTS {database}.llm_rollup_1h_source AS
SELECT hour AS window_start, service, environment, provider_name, model, span_kind, prompt_name,
    prompt_version, variant, status, argMax(lifecycle, ingested_at) AS lifecycle,
    sum(requests) AS requests, sum(errors) AS errors, sum(rate_limited) AS rate_limited,
    sum(timeouts) AS timeouts, sumMap(error_types) AS error_types,
    sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
    sum(cache_read_input_tokens) AS cache_read_input_tokens,
    sum(cache_creation_input_tokens) AS cache_creation_input_tokens,
    sum(reasoning_output_tokens) AS reasoning_output_tokens, sum(cost_usd) AS cost_usd,
    sum(priced_requests) AS priced_requests, sum(unpriced_requests) AS unpriced_requests,
    sum(reported_cost_usd) AS reported_cost_usd, sumMap(latency_bins) AS latency_bins,
    sum(latency_zero_count) AS latency_zero_count, sum(latency_sum_ms) AS latency_sum_ms,
    sumMap(ttft_bins) AS ttft_bins, sum(ttft_zero_count) AS ttft_zero_count,
    sumMap(tokens_per_s_bins) AS tokens_per_s_bins,
    sum(tokens_per_s_zero_count) AS tokens_per_s_zero_count,
    min(ratelimit_remaining_requests_min) AS ratelimit_remaining_requests_min,
    min(ratelimit_remaining_tokens_min) AS ratelimit_remaining_tokens_min,
    max(max_sent_at) AS max_sent_at, now64(3) AS computed_at
FROM
(
    SELECT toStartOfHour(window_start) AS hour, *
    FROM {database}.llm_rollup_1m FINAL
)
GROUP BY hour, service, environment, provider_name, model, span_kind, prompt_name, prompt_version,
    variant, status;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_rollup_1h_refresh
REFRESH EVERY 5 MINUTE APPEND TO {database}.llm_rollup_1h AS
SELECT * FROM {database}.llm_rollup_1h_source
WHERE window_start >= toStartOfHour(now()) - INTERVAL 3 HOUR AND window_start < toStartOfHour(now());

INSERT INTO {database}.llm_rollup_1h
SELECT * FROM {database}.llm_rollup_1h_source WHERE window_start < toStartOfHour(now());
