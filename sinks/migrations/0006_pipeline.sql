-- 0006: the pipeline's own health, and the stream's top users by cost.
--
-- llm_pipeline_metrics: long-format gauges and counters published every few seconds by the worker
-- (records, valid events, dead letters, late events, redactions, unpriced and deprecated-model calls)
-- and by the sink (rows written, insert latency, insert failures, consumer lag per partition).
-- Counters are cumulative since the process started (process_start identifies the run), so rates
-- are max(value) per run differenced over time; gauges are the value at `ts`.
-- Freshness (emit -> row) needs no metric: it is ingested_at - sent_at on llm_calls.
CREATE TABLE IF NOT EXISTS {database}.llm_pipeline_metrics
(
    ts DateTime64(3, 'UTC'),
    process LowCardinality(String),
    instance LowCardinality(String),
    process_start DateTime64(3, 'UTC'),
    metric LowCardinality(String),
    labels Map(LowCardinality(String), String),
    value Float64
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (process, metric, ts)
TTL toDateTime(ts) + INTERVAL 30 DAY;

-- llm_top_users: the stream's top-K users by cost over the trailing hour, one snapshot per minute per
-- worker instance (Space-Saving summaries per partition, merged in the worker). A snapshot replaces an
-- earlier one with the same (snapshot_minute, instance, rank).
CREATE TABLE IF NOT EXISTS {database}.llm_top_users
(
    snapshot_minute DateTime64(3, 'UTC'),
    instance LowCardinality(String),
    rank UInt16,
    tenant_id LowCardinality(String),
    user_id String,
    cost_usd Float64,
    requests UInt64,
    error_bound_usd Float64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMMDD(snapshot_minute)
ORDER BY (snapshot_minute, instance, rank)
TTL toDateTime(snapshot_minute) + INTERVAL 30 DAY;
