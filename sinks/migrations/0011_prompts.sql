-- 0011: the prompt registry's mirror and the canary analysis (producers/prompts, streams/prompts).
--
-- llm_prompts: one row per prompt version, from the registry topic (producers.prompts.records). The
-- version id is the content address of (name, template, model, params), so a replayed push collapses.
-- Templates are operator-authored; `llmwatch prompts push` refuses one the guard flags as holding a
-- secret or PII, so nothing here holds either.
--
-- llm_prompt_labels: one row per label move (the audit trail: who, when, why, from which state to
-- which). Keyed by (name, label, revision): a replayed move collapses onto itself.
--
-- llm_canary_verdicts: one row per evaluation of a canary against its baseline (streams.prompts): the
-- Kayenta-style verdict, its score (percent of metrics that pass), the metrics that failed and what the
-- policy did (alert only, or rolled back). Keyed by (name, label, revision, look): the analysis is a
-- function of the events since the move, so a restarted analyzer rewrites the same looks.
--
-- llm_canary_metrics: the metrics behind each verdict, one row per (evaluation, metric): the canary's
-- and the baseline's value, the always-valid confidence interval of their difference, the test's
-- p-value and the metric's own verdict.
CREATE TABLE IF NOT EXISTS {database}.llm_prompts
(
    name LowCardinality(String),
    version String,
    template String,
    model LowCardinality(String),
    params String,
    description String,
    created_at DateTime64(3, 'UTC'),
    created_by LowCardinality(String)
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (name, version);

CREATE TABLE IF NOT EXISTS {database}.llm_prompt_labels
(
    name LowCardinality(String),
    label LowCardinality(String),
    revision UInt32,
    versions Array(String),
    weights Array(UInt8),
    canary String,
    previous_versions Array(String),
    previous_weights Array(UInt8),
    action LowCardinality(String),
    moved_at DateTime64(3, 'UTC'),
    moved_by LowCardinality(String),
    reason String
)
ENGINE = ReplacingMergeTree(moved_at)
ORDER BY (name, label, revision);

CREATE TABLE IF NOT EXISTS {database}.llm_canary_verdicts
(
    name LowCardinality(String),
    label LowCardinality(String),
    revision UInt32,
    look UInt32,
    evaluated_at DateTime64(3, 'UTC'),
    canary_version String,
    baseline_version String,
    canary_weight UInt8,
    canary_calls UInt64,
    baseline_calls UInt64,
    -- 'pass', 'marginal', 'fail', or 'waiting' (fewer calls than the policy's minimum).
    verdict LowCardinality(String),
    score Float64,
    failed_metrics Array(String),
    -- 'none', 'alert' (act: false), 'rolled_back'.
    action LowCardinality(String),
    alpha Float64
)
ENGINE = ReplacingMergeTree(evaluated_at)
PARTITION BY toYYYYMM(evaluated_at)
ORDER BY (name, label, revision, look)
TTL toDateTime(evaluated_at) + INTERVAL 400 DAY;

CREATE TABLE IF NOT EXISTS {database}.llm_canary_metrics
(
    name LowCardinality(String),
    label LowCardinality(String),
    revision UInt32,
    look UInt32,
    evaluated_at DateTime64(3, 'UTC'),
    metric LowCardinality(String),
    canary_version String,
    baseline_version String,
    canary_n UInt64,
    baseline_n UInt64,
    canary_value Nullable(Float64),
    baseline_value Nullable(Float64),
    -- The always-valid confidence interval of (canary - baseline) at this look (NULL: unbounded).
    diff_low Nullable(Float64),
    diff_high Nullable(Float64),
    p_value Nullable(Float64),
    -- 'pass', 'marginal', 'fail' or 'waiting'.
    verdict LowCardinality(String)
)
ENGINE = ReplacingMergeTree(evaluated_at)
PARTITION BY toYYYYMM(evaluated_at)
ORDER BY (name, label, revision, look, metric)
TTL toDateTime(evaluated_at) + INTERVAL 400 DAY;
