-- 0012: drift results (streams/drift).
--
-- llm_drift: one row per (window, scope, feature, test) an evaluation compared with its reference:
-- the test statistic, its p-value and the Benjamini-Hochberg q-value across the evaluation, the effect
-- size (PSI for shape features), the sample sizes, the bin or category that moved most, and whether it
-- was flagged (q <= the FDR and effect >= the floor). Scope: service, model, span kind, and the
-- direction ('input' / 'output') for text features. Keyed by (window_start, scope, feature, test), so a
-- replayed evaluation collapses.
CREATE TABLE IF NOT EXISTS {database}.llm_drift
(
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    reference_start DateTime64(3, 'UTC'),
    reference_end DateTime64(3, 'UTC'),
    reference_kind LowCardinality(String),
    service LowCardinality(String),
    model LowCardinality(String),
    span_kind LowCardinality(String),
    direction LowCardinality(String),
    feature LowCardinality(String),
    test LowCardinality(String),
    statistic Float64,
    p_value Float64,
    q_value Float64,
    effect Float64,
    reference_n UInt64,
    current_n UInt64,
    top_shift String,
    flagged Bool,
    evaluated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(evaluated_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, service, model, span_kind, direction, feature, test)
TTL toDateTime(window_start) + INTERVAL 400 DAY;
