-- 0009: guardrail results from the text-analysis consumer (rows: streams.text.records).
--
-- llm_guardrail_findings: one row per finding (a PII span, an injection verdict, a toxic text, a banned
-- topic, an echoed secret...), with its type, decision, severity, score and span offsets into the
-- analysed text. It never holds the matched text, only where it was. A replayed text record yields the
-- same rows with the same sorting key (the event and the finding's own identity), so ReplacingMergeTree
-- collapses it; exact counts read with FINAL.
--
-- llm_guardrail_rollup_1m: per minute, service, environment, model, prompt version and span kind, how
-- many texts were analysed and how many were flagged per risk category (a Map), plus PII entities per
-- type. Like llm_rollup_1m (0004, 0007), each row is ONE source record's contribution and its key ends
-- with the record's position, so a replay replaces it; queries sum with FINAL.
--
-- llm_texts: prompt and output text of calls captured with text_capture = 'store', stored redacted (the
-- PII detector's spans replaced by <TYPE>), never raw. Texts captured with 'analyze' are never stored.
--
-- Retention (row TTL, from the call's start_time): findings and rollups 90 days (as llm_calls), texts
-- 30 days (as llm_calls' text columns were).
CREATE TABLE IF NOT EXISTS {database}.llm_guardrail_findings
(
    start_time DateTime64(3, 'UTC'),
    event_id String,
    trace_id String,
    span_id String,
    service LowCardinality(String),
    environment LowCardinality(String),
    provider_name LowCardinality(String),
    model LowCardinality(String),
    prompt_name LowCardinality(String),
    prompt_version LowCardinality(String),
    span_kind LowCardinality(String),
    -- Which text: 'input' (prompt, retrieved query) or 'output' (completion, retrieved passages, tool output).
    field LowCardinality(String),
    -- gen_ai.security.* : risk category, decision (allow/flag/block), severity, score.
    category LowCardinality(String),
    type LowCardinality(String),
    decision LowCardinality(String),
    severity LowCardinality(String),
    score Float32,
    span_start UInt32,
    span_end UInt32,
    detector LowCardinality(String),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toDate(start_time)
ORDER BY (service, start_time, event_id, field, category, type, span_start)
TTL toDateTime(start_time) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS {database}.llm_guardrail_rollup_1m
(
    window_start DateTime64(3, 'UTC'),
    service LowCardinality(String),
    environment LowCardinality(String),
    model LowCardinality(String),
    prompt_version LowCardinality(String),
    span_kind LowCardinality(String),
    source_topic LowCardinality(String),
    source_partition UInt32,
    source_offset UInt64,
    texts UInt64,
    flagged_texts UInt64,
    -- Texts with at least one finding of each risk category (pii, secret, prompt_injection, ...).
    flagged Map(LowCardinality(String), UInt64),
    -- PII and secret entities found, per type (EMAIL, PERSON, API_KEY, ...).
    pii_entities Map(LowCardinality(String), UInt64),
    injection_score_max Float32,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toDate(window_start)
ORDER BY (window_start, service, environment, model, prompt_version, span_kind, source_topic,
          source_partition, source_offset)
TTL toDateTime(window_start) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS {database}.llm_texts
(
    start_time DateTime64(3, 'UTC'),
    event_id String,
    trace_id String,
    span_id String,
    service LowCardinality(String),
    environment LowCardinality(String),
    model LowCardinality(String),
    prompt_version LowCardinality(String),
    span_kind LowCardinality(String),
    input_text String,
    output_text String,
    -- How many spans the redaction replaced, per PII type.
    redactions Map(LowCardinality(String), UInt32),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toDate(start_time)
ORDER BY (service, start_time, event_id)
TTL toDateTime(start_time) + INTERVAL 30 DAY;
