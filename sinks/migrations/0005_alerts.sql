-- 0005: SLO alerts and SLO status (rows: streams.alerts; produced by streams.burnrate).
--
-- llm_alerts: one row per alert transition (keys: streams.alerts.ALERT_FIELDS). A rule that starts
-- firing gives a 'firing' row; when it stops, a 'resolved' row with the same alert_id
-- ('<slo>/<rule>/<fired_at>') and resolved_at set. Engine ReplacingMergeTree(ingested_at) with
-- ORDER BY (slo, rule, alert_id, state): slo and rule are parts of alert_id, so the deduplication key
-- is (alert_id, state) and a re-sent event collapses into one row; slo first makes one SLO's history
-- a primary-key range. Partitioned by the month of fired_at, which both rows of an alert share, so
-- duplicates always meet in one partition. Read with FINAL for exact counts; the alerts open now are
--   SELECT * FROM llmwatch.llm_alerts FINAL WHERE state = 'firing' AND alert_id NOT IN
--     (SELECT alert_id FROM llmwatch.llm_alerts FINAL WHERE state = 'resolved')
--
-- llm_slo_status: the burn rate of every SLO, rule and window at each evaluation the worker publishes
-- (keys: streams.alerts.SLO_STATUS_FIELDS), for dashboards. ReplacingMergeTree(ingested_at) on
-- (slo, rule, window, evaluated_at): a re-sent snapshot collapses. Daily partitions, 30-day TTL.
--
-- Times are DateTime64(3, 'UTC'); dimensions LowCardinality; Nullable only where NULL means "does not
-- apply" (objective of a cost SLO, usd_per_hour of a ratio SLO) or "unknown" (resolved_at while firing,
-- budget_remaining before any data). Every statement is idempotent (IF NOT EXISTS).
CREATE TABLE IF NOT EXISTS {database}.llm_alerts
(
    alert_id String,
    slo LowCardinality(String),
    rule LowCardinality(String),
    severity LowCardinality(String),
    state LowCardinality(String),
    fired_at DateTime64(3, 'UTC'),
    resolved_at Nullable(DateTime64(3, 'UTC')),
    evaluated_at DateTime64(3, 'UTC'),
    sli_type LowCardinality(String),
    objective Nullable(Float64),
    usd_per_hour Nullable(Float64),
    factor Float64,
    long_window LowCardinality(String),
    short_window LowCardinality(String),
    burn_rate_long Float64,
    burn_rate_short Float64,
    good_long UInt64,
    total_long UInt64,
    good_short UInt64,
    total_short UInt64,
    spent_usd_long Float64,
    spent_usd_short Float64,
    unpriced_long UInt64,
    unpriced_short UInt64,
    selector Map(LowCardinality(String), String),
    description String,
    runbook String,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(fired_at)
ORDER BY (slo, rule, alert_id, state)
TTL toDateTime(fired_at) + INTERVAL 400 DAY;

CREATE TABLE IF NOT EXISTS {database}.llm_slo_status
(
    evaluated_at DateTime64(3, 'UTC'),
    slo LowCardinality(String),
    rule LowCardinality(String),
    `window` LowCardinality(String),
    window_kind LowCardinality(String),
    window_ms UInt64,
    sli_type LowCardinality(String),
    severity LowCardinality(String),
    objective Nullable(Float64),
    usd_per_hour Nullable(Float64),
    factor Float64,
    burn_rate Float64,
    good UInt64,
    total UInt64,
    spent_usd Float64,
    unpriced UInt64,
    firing Bool,
    budget_remaining Nullable(Float64),
    budget_period LowCardinality(String),
    budget_covered_ms UInt64,
    late_events UInt64,
    watermark Nullable(DateTime64(3, 'UTC')),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMMDD(evaluated_at)
ORDER BY (slo, rule, `window`, evaluated_at)
TTL toDateTime(evaluated_at) + INTERVAL 30 DAY;
