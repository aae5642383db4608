-- 0001: the llm_calls table, one row per LLM call or chain step (keys: streams.records.CALL_FIELDS).
--
-- Every statement here is idempotent (IF NOT EXISTS): ClickHouse DDL is not transactional, so a
-- migration interrupted half-way is simply run again from the top.
--
-- Engine: ReplacingMergeTree(ingested_at). The sink delivers at least once (Kafka offsets are committed
-- after the insert), so a replayed event is inserted again; rows with the same ORDER BY key collapse
-- to the most recently ingested one when parts merge. Merges are eventual: queries that need exact
-- counts or sums read the table with FINAL (SELECT count() FROM llmwatch.llm_calls FINAL WHERE ...).
--
-- ORDER BY (environment, service, provider_name, request_model, start_time, event_id):
--   * every value comes from the event itself, never from ingestion, so a replay of the same event
--     produces the same key and is deduplicated; event_id last makes the key unique per event;
--   * the dashboards filter a time range (pruned by the daily partition first) and then
--     environment / service / provider / model, lowest cardinality first, so the primary index skips
--     granules for those filters and start_time still narrows the range inside each combination;
--   * rows of one service and model sit together, which compresses the dimension columns well.
--
-- TTL: the captured texts (input_text, output_text) are cleared after 30 days by column TTL; whole rows
-- are deleted after 90 days by row TTL (with daily partitions, whole parts expire together). Both count
-- from start_time. TTLs are applied by background merges, so expired data can linger for a few hours.
--
-- Types: times are DateTime64(3, 'UTC') (rows carry epoch milliseconds); dimensions are
-- LowCardinality(String) with '' for absent; Nullable only where NULL means "unknown", which is not
-- zero: cost_usd (no price known for the model), sampling parameters, time to first token, HTTP status,
-- rate-limit headers.
CREATE DATABASE IF NOT EXISTS {database};

CREATE TABLE IF NOT EXISTS {database}.llm_calls
(
    event_id String,
    schema_version UInt8,
    start_time DateTime64(3, 'UTC'),
    end_time DateTime64(3, 'UTC'),
    duration_ms Float64,
    sent_at DateTime64(3, 'UTC'),
    service LowCardinality(String),
    environment LowCardinality(String),
    user_id String,
    tenant_id LowCardinality(String),
    session_id String,
    trace_id String,
    span_id String,
    parent_span_id String,
    span_kind LowCardinality(String),
    operation_name LowCardinality(String),
    provider_name LowCardinality(String),
    request_model LowCardinality(String),
    response_model LowCardinality(String),
    response_id String,
    server_address LowCardinality(String),
    agent_name LowCardinality(String),
    tool_name LowCardinality(String),
    prompt_name LowCardinality(String),
    prompt_version LowCardinality(String),
    variant LowCardinality(String),
    temperature Nullable(Float64),
    top_p Nullable(Float64),
    max_tokens Nullable(UInt32),
    seed Nullable(Int64),
    stream Bool,
    input_tokens UInt32,
    output_tokens UInt32,
    cache_read_input_tokens UInt32,
    cache_creation_input_tokens UInt32,
    reasoning_output_tokens UInt32,
    finish_reasons Array(LowCardinality(String)),
    time_to_first_token_ms Nullable(Float64),
    status LowCardinality(String),
    error_type LowCardinality(String),
    http_status Nullable(UInt16),
    ratelimit_remaining_requests Nullable(UInt64),
    ratelimit_remaining_tokens Nullable(UInt64),
    -- NULL = price unknown. Never 0: a free call and an unpriced call must stay distinguishable.
    cost_usd Nullable(Float64),
    calculated_cost_usd Nullable(Float64),
    reported_cost_usd Nullable(Float64),
    cost_source LowCardinality(String),
    input_text String TTL toDateTime(start_time) + INTERVAL 30 DAY,
    output_text String TTL toDateTime(start_time) + INTERVAL 30 DAY,
    metadata Map(String, String),
    source_partition Int32,
    source_offset Int64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    -- Trace drill-down (all spans of one trace_id) without scanning the time range.
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toDate(start_time)
ORDER BY (environment, service, provider_name, request_model, start_time, event_id)
TTL toDateTime(start_time) + INTERVAL 90 DAY;
