"""What the pipeline stores, named once: the ClickHouse tables its records fill, and their retention.

The worker's records name their target tables (``streams.table_rows`` envelopes carry rows per table),
the sink routes them, the migrations in ``sinks/migrations`` create them and the dashboards query
them: every one of those refers to the constants here (``sinks.schema`` re-exports them for the sink
side). The migrations encode the retention periods as table TTLs, and ``tests/unit/sinks/test_schema.py``
checks that the created tables match; the worker's ingest bounds use :data:`CALLS_TTL_DAYS` as the
oldest event time it accepts, so an event is either stored for the rest of its retention or
dead-lettered with a reason, never inserted only to be dropped by a TTL merge. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AGREEMENT_TABLE",
    "ALERTS_TABLE",
    "CALLS_TABLE",
    "CALLS_TTL_DAYS",
    "CANARY_METRICS_TABLE",
    "CANARY_TTL_DAYS",
    "CANARY_VERDICTS_TABLE",
    "DAY_MS",
    "DEFAULT_DATABASE",
    "DLQ_TABLE",
    "DLQ_TTL_DAYS",
    "DRIFT_TABLE",
    "DRIFT_TOPICS_TABLE",
    "DRIFT_TTL_DAYS",
    "EVAL_RESULTS_TABLE",
    "EVAL_RUNS_TABLE",
    "GUARDRAIL_FINDINGS_TABLE",
    "GUARDRAIL_ROLLUP_TABLE",
    "GUARDRAIL_TTL_DAYS",
    "PIPELINE_METRICS_TABLE",
    "PROMPTS_TABLE",
    "PROMPT_LABELS_TABLE",
    "ROLLUP_1H_TABLE",
    "ROLLUP_TABLE",
    "SCORES_1M_VIEW",
    "SCORES_TABLE",
    "SCORES_TTL_DAYS",
    "SLO_STATUS_TABLE",
    "TENANT_COST_TABLE",
    "TEXTS_TABLE",
    "TEXT_TTL_DAYS",
    "TOP_USERS_TABLE",
    "USER_COST_TABLE",
]

# The database the tables live in unless configured otherwise (dashboards' SQL names this one).
DEFAULT_DATABASE: Final = "llmwatch"
# Tables (all in one database, ``llmwatch`` by default).
CALLS_TABLE: Final = "llm_calls"
DLQ_TABLE: Final = "llm_dlq"
ROLLUP_TABLE: Final = "llm_rollup_1m"
# Whole hours of the 1-minute rollups, rebuilt after FINAL (migration 0014): long dashboard ranges.
ROLLUP_1H_TABLE: Final = "llm_rollup_1h"
TENANT_COST_TABLE: Final = "llm_tenant_cost_1m"
USER_COST_TABLE: Final = "llm_user_cost_1h"
ALERTS_TABLE: Final = "llm_alerts"
SLO_STATUS_TABLE: Final = "llm_slo_status"
PIPELINE_METRICS_TABLE: Final = "llm_pipeline_metrics"
TOP_USERS_TABLE: Final = "llm_top_users"
# The text-analysis consumer's tables (streams.text.records; migration 0009).
GUARDRAIL_FINDINGS_TABLE: Final = "llm_guardrail_findings"
GUARDRAIL_ROLLUP_TABLE: Final = "llm_guardrail_rollup_1m"
TEXTS_TABLE: Final = "llm_texts"
# The evaluation path's tables (streams.evaluation; migration 0010).
SCORES_TABLE: Final = "llm_scores"
SCORES_1M_VIEW: Final = "llm_scores_1m"
EVAL_RUNS_TABLE: Final = "llm_eval_runs"
AGREEMENT_TABLE: Final = "llm_judge_agreement"
EVAL_RESULTS_TABLE: Final = "llm_eval_results"
# The prompt registry's mirror and the canary analysis (producers.prompts, streams.prompts; 0011).
PROMPTS_TABLE: Final = "llm_prompts"
PROMPT_LABELS_TABLE: Final = "llm_prompt_labels"
CANARY_VERDICTS_TABLE: Final = "llm_canary_verdicts"
CANARY_METRICS_TABLE: Final = "llm_canary_metrics"
# Drift results (streams.drift; migrations 0012, 0013).
DRIFT_TABLE: Final = "llm_drift"
DRIFT_TOPICS_TABLE: Final = "llm_drift_topics"

DAY_MS: Final = 86_400_000
# Stored (redacted) prompt and output texts (llm_texts), counted from start_time.
TEXT_TTL_DAYS: Final = 30
# Judge, metric and human scores (llm_scores), counted from scored_at.
SCORES_TTL_DAYS: Final = 90
# Guardrail findings and rollups, counted from start_time / window_start.
GUARDRAIL_TTL_DAYS: Final = 90
# Whole llm_calls rows, counted from start_time; also the oldest event time ingest accepts.
CALLS_TTL_DAYS: Final = 90
# Canary verdicts and their metrics, counted from evaluated_at (kept for post-mortems).
CANARY_TTL_DAYS: Final = 400
# Drift results, counted from window_start.
DRIFT_TTL_DAYS: Final = 400
# Dead letters in llm_dlq, counted from failed_at.
DLQ_TTL_DAYS: Final = 30
