-- 0007: rollup sorting keys that a replay cannot split: the source topic joins them, lifecycle leaves.
--
-- Why: a rollup row's identity is the raw record it came from plus its dimensions. Two changes make
-- that identity exact:
--   * source_topic: (source_partition, source_offset) alone collide when two source topics (another
--     prefix, a replayed copy of the events topic) feed the same tables, and ReplacingMergeTree would
--     then silently keep one of two different rows.
--   * lifecycle is derived from a configuration file (the model lifecycle catalog). A replay after the
--     file changed would give the same record's rows another lifecycle, hence another key, and both
--     copies would count. Out of the key, the replayed row replaces the old one. Lifecycle is a function
--     of (provider, model, day), and day is fixed by window_start, so it never splits a group.
-- ClickHouse cannot drop a column from a sorting key, so each table is rebuilt: create the new table,
-- copy the rows (rows written before this migration get source_topic ''), swap the two atomically
-- (EXCHANGE TABLES, Atomic database engine: ClickHouse's default and chdb's), drop the old one.
-- Every statement is idempotent except the EXCHANGE; a failure between an EXCHANGE and the migration
-- being recorded needs the *_next table dropped by hand before the next start (the error names it).
CREATE TABLE IF NOT EXISTS {database}.llm_rollup_1m_next
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
    source_topic LowCardinality(String),
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
          prompt_version, variant, source_topic, source_partition, source_offset)
TTL toDateTime(window_start) + INTERVAL 400 DAY;

INSERT INTO {database}.llm_rollup_1m_next (* EXCEPT (source_topic))
SELECT * FROM {database}.llm_rollup_1m;

EXCHANGE TABLES {database}.llm_rollup_1m AND {database}.llm_rollup_1m_next;

DROP TABLE IF EXISTS {database}.llm_rollup_1m_next;

CREATE TABLE IF NOT EXISTS {database}.llm_tenant_cost_1m_next
(
    window_start DateTime64(3, 'UTC'),
    tenant_id LowCardinality(String),
    service LowCardinality(String),
    environment LowCardinality(String),
    source_topic LowCardinality(String),
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
ORDER BY (window_start, tenant_id, service, environment, source_topic, source_partition, source_offset)
TTL toDateTime(window_start) + INTERVAL 400 DAY;

INSERT INTO {database}.llm_tenant_cost_1m_next (* EXCEPT (source_topic))
SELECT * FROM {database}.llm_tenant_cost_1m;

EXCHANGE TABLES {database}.llm_tenant_cost_1m AND {database}.llm_tenant_cost_1m_next;

DROP TABLE IF EXISTS {database}.llm_tenant_cost_1m_next;

CREATE TABLE IF NOT EXISTS {database}.llm_user_cost_1h_next
(
    hour_start DateTime64(3, 'UTC'),
    tenant_id LowCardinality(String),
    user_id String,
    source_topic LowCardinality(String),
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
ORDER BY (tenant_id, user_id, hour_start, source_topic, source_partition, source_offset)
TTL toDateTime(hour_start) + INTERVAL 400 DAY;

INSERT INTO {database}.llm_user_cost_1h_next (* EXCEPT (source_topic))
SELECT * FROM {database}.llm_user_cost_1h;

EXCHANGE TABLES {database}.llm_user_cost_1h AND {database}.llm_user_cost_1h_next;

DROP TABLE IF EXISTS {database}.llm_user_cost_1h_next;
