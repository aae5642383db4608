-- 0010: quality scores and evaluation runs (streams/evaluation).
--
-- llm_scores: one row per score of one call, shaped after OTel's gen_ai.evaluation.result event (name,
-- score value, label, explanation, response id), from three sources: 'judge' (llmwatch judge, a rubric
-- verdict, with the rubric version, the judge model and its family), 'metric' (BLEU, chrF, ROUGE-L,
-- BERTScore, exact match against a reference) and 'human' (watch.feedback). The key is (target, name,
-- source, evaluator): target is the response id (else trace/span), evaluator the judge model, the
-- metric implementation or the feedback's user. ReplacingMergeTree keeps the newest row per key
-- (version scored_at), so a replayed judge request counts once and a changed thumbs-up replaces the
-- old one. Labels (service, model, prompt version, variant) come from the scored call's text record;
-- feedback that arrived before its call has none, and queries join it to llm_calls by trace id.
--
-- llm_scores_1m: the per-minute rollup per service, model, prompt version, variant, score name and
-- source, as a view over llm_scores FINAL: scores are sampled and capped by the judge budget (calls
-- per minute), so a view stays cheap where the call rollups need materialized states.
--
-- llm_judge_agreement: judge-versus-human agreement per rubric (`llmwatch eval agreement`): weighted
-- kappa and Spearman with bootstrap confidence intervals over the items both scored, and whether the
-- rubric's minimum kappa is met. One row per rubric and computation; dashboards read the newest.
--
-- llm_eval_runs / llm_eval_results: `llmwatch eval run` (a golden dataset against a target): one row
-- per run, and one per (case, seed, metric). Written once per run id; a re-run with the same id
-- replaces its rows.
CREATE TABLE IF NOT EXISTS {database}.llm_scores
(
    target String,
    name LowCardinality(String),
    source LowCardinality(String),
    evaluator String,
    score_value Nullable(Float64),
    label LowCardinality(String),
    explanation String,
    event_id String,
    trace_id String,
    span_id String,
    response_id String,
    service LowCardinality(String),
    environment LowCardinality(String),
    provider_name LowCardinality(String),
    model LowCardinality(String),
    prompt_name LowCardinality(String),
    prompt_version LowCardinality(String),
    variant LowCardinality(String),
    rubric_version LowCardinality(String),
    judge_model LowCardinality(String),
    judge_family LowCardinality(String),
    self_judged Bool,
    min_kappa Float32,
    cost_usd Float64,
    -- When the scored call started (1970 when unknown: feedback naming only a response id).
    start_time DateTime64(3, 'UTC'),
    scored_at DateTime64(3, 'UTC'),
    comment String,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toYYYYMM(scored_at)
ORDER BY (target, name, source, evaluator)
TTL toDateTime(scored_at) + INTERVAL 90 DAY;

CREATE VIEW IF NOT EXISTS {database}.llm_scores_1m AS
SELECT
    toStartOfMinute(scored_at) AS window_start,
    service,
    environment,
    provider_name,
    model,
    prompt_version,
    variant,
    name,
    source,
    count() AS scores,
    countIf(score_value IS NOT NULL) AS valued,
    sum(coalesce(score_value, 0)) AS score_sum,
    sum(cost_usd) AS cost_usd
FROM {database}.llm_scores FINAL
GROUP BY window_start, service, environment, provider_name, model, prompt_version, variant, name, source;

CREATE TABLE IF NOT EXISTS {database}.llm_judge_agreement
(
    rubric LowCardinality(String),
    computed_at DateTime64(3, 'UTC'),
    window_days UInt16,
    n UInt32,
    kappa Float64,
    kappa_low Float64,
    kappa_high Float64,
    spearman Float64,
    spearman_low Float64,
    spearman_high Float64,
    weights LowCardinality(String),
    min_kappa Float64,
    passes Bool
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (rubric, computed_at)
TTL toDateTime(computed_at) + INTERVAL 400 DAY;

CREATE TABLE IF NOT EXISTS {database}.llm_eval_runs
(
    run_id String,
    started_at DateTime64(3, 'UTC'),
    finished_at DateTime64(3, 'UTC'),
    dataset String,
    dataset_sha256 String,
    cases UInt32,
    target_url String,
    model LowCardinality(String),
    seeds Array(Int64),
    temperature Float64,
    metrics Array(String),
    baseline_run_id String,
    -- 0 no significant regression, 1 regression against the baseline, 2 usage or target error.
    exit_code UInt8,
    summary String
)
ENGINE = ReplacingMergeTree(finished_at)
ORDER BY run_id;

CREATE TABLE IF NOT EXISTS {database}.llm_eval_results
(
    run_id String,
    case_id String,
    seed Int64,
    metric LowCardinality(String),
    value Float64,
    label LowCardinality(String),
    -- The target's answer: golden datasets are test data, kept for pairwise judging and review.
    output_text String,
    latency_ms Float64,
    input_tokens UInt32,
    output_tokens UInt32,
    error String,
    created_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (run_id, case_id, metric, seed);
