-- 0004: pre-aggregated 1-minute rollups and hourly per-user cost (rows: streams.rollups).
--
-- Each row is the mergeable state of ONE raw Kafka record's events for one group of dimensions; the
-- worker emits it attached to that record's offset. The sorting key ends with the record's position
-- (source_partition, source_offset), and a row's content depends only on that record, so a replay after
-- a worker or sink restart produces an identical row with an identical key: ReplacingMergeTree collapses
-- it. Queries read with FINAL and merge rows with sum / sumMap / min; latency quantiles come from the
-- merged DDSketch bins through llmwatch_quantile() (0003). A late event adds a row to its old window.
--
-- Sorting key: time first (every dashboard query is a time range), then the dimensions from lowest to
-- highest cardinality as the dashboards filter them. Partitions by day; rows expire after 400 days.
CREATE TABLE IF NOT EXISTS {database}.llm_rollup_1m
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
    -- Model lifecycle at the call's date: ok, deprecation_soon, deprecated, retiring_soon, retired.
    lifecycle LowCardinality(String),
    source_partition UInt32,
    source_offset UInt64,
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
    -- Sum over priced calls only; unpriced_requests counts the calls whose price is unknown (NULL cost).
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
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (window_start, environment, service, provider_name, model, span_kind, status, prompt_name,
          prompt_version, variant, lifecycle, source_partition, source_offset)
TTL toDateTime(window_start) + INTERVAL 400 DAY;

-- Cost per tenant per minute (tenants are kept out of llm_rollup_1m: multiplying its groups by the
-- number of tenants would multiply its sketches too). Same per-record keying and replay behaviour.
CREATE TABLE IF NOT EXISTS {database}.llm_tenant_cost_1m
(
    window_start DateTime64(3, 'UTC'),
    tenant_id LowCardinality(String),
    service LowCardinality(String),
    environment LowCardinality(String),
    source_partition UInt32,
    source_offset UInt64,
    requests UInt64,
    errors UInt64,
    cost_usd Float64,
    unpriced_requests UInt64,
    input_tokens UInt64,
    output_tokens UInt64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (window_start, tenant_id, service, environment, source_partition, source_offset)
TTL toDateTime(window_start) + INTERVAL 400 DAY;

-- Per-user cost per hour. One row per (hour, tenant, user, source record): with millions of users the
-- table holds about one row per user per record batch, and ORDER BY (tenant_id, user_id, hour_start)
-- makes one user's or one tenant's history a primary-key range read. The top users across everyone
-- come from the stream's top-K (llm_top_users), not from scanning this table.
CREATE TABLE IF NOT EXISTS {database}.llm_user_cost_1h
(
    hour_start DateTime64(3, 'UTC'),
    tenant_id LowCardinality(String),
    user_id String,
    source_partition UInt32,
    source_offset UInt64,
    requests UInt64,
    cost_usd Float64,
    input_tokens UInt64,
    output_tokens UInt64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(hour_start)
ORDER BY (tenant_id, user_id, hour_start, source_partition, source_offset)
TTL toDateTime(hour_start) + INTERVAL 400 DAY;
