"""The SQL of the Prompts dashboard (``dashboards.prompts``): one prompt's versions, labels, canary
verdicts and metrics, and its versions' cost and quality.

Sources (migration 0011 and the rollups): ``llm_prompts FINAL`` (one row per version),
``llm_prompt_labels FINAL`` (one row per label move; a label's state is its move with the highest
revision), ``llm_canary_verdicts FINAL`` and ``llm_canary_metrics FINAL`` (one row per look, and per
look and metric), ``llm_rollup_1m FINAL`` and the ``llm_scores_1m`` view.

Guarantees:
- Every statement is narrowed to the prompt the ``prompt`` variable names (single-select). The call
  rollups and the scores are narrowed by version instead of by prompt name: a version id is the content
  address of (name, template, model, params), so the prompt's versions are exactly its rows, whatever
  ``prompt_name`` the app stamped on its calls.
- Version numbers are ``row_number()`` over ``(created_at, version)`` within the prompt, the order in
  which ``llmwatch prompts push`` numbers them (``#1``, ``#2``...); a version missing from
  ``llm_prompts`` (the mirror behind the topic) is shown by its id alone.
- The canary's band is ``baseline_value + [diff_low, diff_high]``: the canary values the always-valid
  confidence interval of (canary - baseline) allows. NULL (no band) while an arm has too few calls.

Pure string building; nothing here does I/O.
"""

from __future__ import annotations

from typing import Final

from dashboards.panels import FILTER_VARIABLES, LLM_SPANS, FilterVariable, var_filter
from dashboards.query import DATABASE
from streams.storage import (
    CANARY_METRICS_TABLE,
    CANARY_VERDICTS_TABLE,
    PROMPT_LABELS_TABLE,
    PROMPTS_TABLE,
    ROLLUP_TABLE,
    SCORES_1M_VIEW,
)

__all__ = [
    "CALL_FILTERS",
    "LABELS",
    "METRICS",
    "PROMPTS",
    "ROLLUP",
    "SCORES_1M",
    "VERDICTS",
    "VERDICT_CODES",
    "call_filters",
    "calls_by_version_sql",
    "cost_by_version_sql",
    "label_annotation_sql",
    "label_moves_sql",
    "label_weights_sql",
    "labels_now_sql",
    "latest_score_sql",
    "latest_verdict_sql",
    "metric_band_sql",
    "metric_looks_sql",
    "prompt_versions",
    "scores_by_version_sql",
    "verdict_history_sql",
    "version_name",
    "version_state",
    "versions_compared_sql",
    "versions_sql",
]

PROMPTS: Final = f"{DATABASE}.{PROMPTS_TABLE} FINAL"
LABELS: Final = f"{DATABASE}.{PROMPT_LABELS_TABLE} FINAL"
VERDICTS: Final = f"{DATABASE}.{CANARY_VERDICTS_TABLE} FINAL"
METRICS: Final = f"{DATABASE}.{CANARY_METRICS_TABLE} FINAL"
ROLLUP: Final = f"{DATABASE}.{ROLLUP_TABLE} FINAL"
SCORES_1M: Final = f"{DATABASE}.{SCORES_1M_VIEW}"
# The prompt variable is single-select; IN keeps the clause valid for any selection.
PROMPT: Final = "name IN (${prompt:singlequote})"
LABEL: Final = var_filter("label", "label")
METRIC: Final = var_filter("metric", "metric")
# The stat's number per verdict (Grafana maps it back to the word and its color).
VERDICT_CODES: Final = {"waiting": 0, "pass": 1, "marginal": 2, "fail": 3}
# The other dashboards' filters that apply to calls (prompt_version is replaced by the prompt).
CALL_FILTERS: Final[tuple[FilterVariable, ...]] = tuple(
    v for v in FILTER_VARIABLES if v.name != "prompt_version"
)
MAX_VERDICTS: Final = 200

# version -> number (#1 = first pushed) of the selected prompt, as a Map for lookups in any clause.
NUMBERS: Final = (
    "(SELECT CAST((groupArray(version), groupArray(number)), 'Map(String, UInt64)')\n"
    "    FROM (SELECT version, row_number() OVER (ORDER BY created_at, version) AS number\n"
    f"        FROM {PROMPTS} WHERE {PROMPT})) AS numbers"
)


def version_name(expr: str) -> str:
    """``#2 9b04c1e2aa01`` for a version of the prompt, the bare id otherwise (needs ``numbers``)."""
    return f"if(numbers[{expr}] = 0, {expr}, concat('#', toString(numbers[{expr}]), ' ', {expr}))"


def version_state(versions: str, weights: str) -> str:
    """A label's arms as text, ``#1 3f1c... 90%, #2 9b04... 10%`` (needs ``numbers``)."""
    return (
        "arrayStringConcat(arrayMap((x, w) -> concat("
        f"{version_name('x')}, ' ', toString(w), '%'), {versions}, {weights}), ', ')"
    )


def prompt_versions() -> str:
    """True for call rows (rollups, scores) of one of the selected prompt's versions."""
    return f"prompt_version IN (SELECT version FROM {PROMPTS} WHERE {PROMPT})"


def call_filters() -> str:
    """The prompt's versions and the environment / service / provider / model filters."""
    clauses = [var_filter(v.name, v.rollup_column) for v in CALL_FILTERS]
    return " AND ".join([prompt_versions(), *clauses])


def versions_sql() -> str:
    """The prompt's versions, numbered in push order."""
    return (
        "SELECT row_number() OVER (ORDER BY created_at, version) AS number, version, model,\n"
        "    created_at, created_by, description, params\n"
        f"FROM {PROMPTS}\nWHERE {PROMPT}\nORDER BY number"
    )


def label_weights_sql() -> str:
    """(time, label and version, weight %) at each move in the range, at the range's start (the state
    then) and at its end (the state now): a step line per (label, version); 0 once a version left."""
    arms = "label, versions, weights, previous_versions"
    return (
        f"WITH {NUMBERS},\n"
        "moves AS (\n"
        f"    SELECT label, revision, moved_at, versions, weights, previous_versions\n"
        f"    FROM {LABELS}\n    WHERE {PROMPT} AND {LABEL} AND moved_at <= $__toTime)\n"
        f"SELECT time, concat(label, ' ', {version_name('v')}) AS series,\n"
        "    toFloat64(if(has(versions, v), weights[indexOf(versions, v)], 0)) AS weight_percent\n"
        "FROM (\n"
        f"    SELECT moved_at AS time, {arms} FROM moves WHERE moved_at >= $__fromTime\n"
        "    UNION ALL\n"
        "    SELECT toDateTime64($__fromTime, 3, 'UTC') AS time, label,\n"
        "        argMax(versions, revision) AS versions, argMax(weights, revision) AS weights,\n"
        "        emptyArrayString() AS previous_versions\n"
        "    FROM moves WHERE moved_at < $__fromTime GROUP BY label\n"
        "    UNION ALL\n"
        "    SELECT toDateTime64($__toTime, 3, 'UTC') AS time, label,\n"
        "        argMax(versions, revision) AS versions, argMax(weights, revision) AS weights,\n"
        "        argMax(previous_versions, revision) AS previous_versions\n"
        "    FROM moves GROUP BY label)\n"
        "ARRAY JOIN arrayDistinct(arrayConcat(versions, previous_versions)) AS v\n"
        "ORDER BY time, series"
    )


def _move_columns() -> str:
    return (
        f"{version_state('versions', 'weights')} AS state,\n"
        f"    if(canary = '', '', {version_name('canary')}) AS canary_version,\n"
        f"    {version_state('previous_versions', 'previous_weights')} AS previous_state,\n"
        "    moved_by, reason"
    )


def label_moves_sql() -> str:
    """Every label move in the range (the audit trail), newest first."""
    return (
        f"WITH {NUMBERS}\n"
        f"SELECT moved_at, label, revision, action, {_move_columns()}\n"
        f"FROM {LABELS}\nWHERE {PROMPT} AND {LABEL} AND $__timeFilter(moved_at)\n"
        "ORDER BY moved_at DESC, label, revision DESC"
    )


def labels_now_sql() -> str:
    """Each label's state at the end of the range: its move with the highest revision by then."""
    return (
        f"WITH {NUMBERS}\n"
        f"SELECT label, revision, {_move_columns()}, moved_at AS since, action\n"
        f"FROM {LABELS}\nWHERE {PROMPT} AND {LABEL} AND moved_at <= $__toTime\n"
        "ORDER BY label, revision DESC\nLIMIT 1 BY label"
    )


def label_annotation_sql() -> str:
    """Label moves as point annotations: time = moved_at; text = action, who, states and reason."""
    state = version_state("versions", "weights")
    previous = version_state("previous_versions", "previous_weights")
    return (
        f"WITH {NUMBERS}\n"
        "SELECT moved_at AS time, moved_at AS timeEnd,\n"
        "    concat(label, ': ', action, ' (revision ', toString(revision), ')') AS title,\n"
        "    concat(action, ' by ', if(moved_by = '', 'unknown', moved_by), ': ', "
        f"{state},\n        ' (was ', if(empty(previous_versions), 'unset', {previous}), ')',\n"
        "        if(reason = '', '', concat('. ', reason))) AS text,\n"
        "    [toString(name), toString(label), toString(action)] AS tags\n"
        f"FROM {LABELS}\nWHERE {PROMPT} AND {LABEL} AND $__timeFilter(moved_at)\n"
        "ORDER BY time"
    )


def verdict_history_sql() -> str:
    """Every look at a canary in the range, newest first."""
    return (
        f"WITH {NUMBERS}\n"
        "SELECT evaluated_at, label, revision, look,\n"
        f"    {version_name('canary_version')} AS canary,\n"
        f"    {version_name('baseline_version')} AS baseline,\n"
        "    canary_weight, canary_calls, baseline_calls, verdict, round(score, 1) AS score,\n"
        "    arrayStringConcat(failed_metrics, ', ') AS failed_metrics, action\n"
        f"FROM {VERDICTS}\nWHERE {PROMPT} AND {LABEL} AND $__timeFilter(evaluated_at)\n"
        f"ORDER BY evaluated_at DESC, label, revision DESC, look DESC\nLIMIT {MAX_VERDICTS}"
    )


def _latest() -> str:
    """The newest look's verdict and score in the range (no row when there is none)."""
    key = "(evaluated_at, revision, look)"
    return (
        f"SELECT argMax(verdict, {key}) AS latest_verdict, argMax(score, {key}) AS latest_score\n"
        f"    FROM {VERDICTS}\n    WHERE {PROMPT} AND {LABEL} AND $__timeFilter(evaluated_at)"
        "\n    HAVING count() > 0"
    )


def latest_verdict_sql() -> str:
    """The newest look's verdict in the range as its :data:`VERDICT_CODES` number."""
    cases = ", ".join(f"latest_verdict = '{word}', {code}" for word, code in VERDICT_CODES.items())
    return f"SELECT multiIf({cases}, NULL) AS verdict\nFROM ({_latest()})"


def latest_score_sql() -> str:
    """The newest look's score in the range (percent of the judged metrics that pass); NULL while
    it waits (no metric judged yet)."""
    return (
        "SELECT if(latest_verdict = 'waiting', NULL, latest_score) AS score_percent\n"
        f"FROM ({_latest()})"
    )


def _metric_where() -> str:
    return f"{PROMPT} AND {LABEL} AND {METRIC} AND $__timeFilter(evaluated_at)"


def metric_band_sql() -> str:
    """(time, canary, baseline, canary_band_low, canary_band_high) per look of the metric."""
    return (
        "SELECT evaluated_at AS time, canary_value AS canary, baseline_value AS baseline,\n"
        "    baseline_value + diff_low AS canary_band_low,\n"
        "    baseline_value + diff_high AS canary_band_high\n"
        f"FROM {METRICS}\nWHERE {_metric_where()}\nORDER BY time, label, revision, look, metric"
    )


def metric_looks_sql() -> str:
    """The metric at every look in the range, newest first."""
    return (
        "SELECT evaluated_at, label, look, verdict, canary_n, baseline_n,\n"
        "    round(canary_value, 6) AS canary, round(baseline_value, 6) AS baseline,\n"
        "    round(diff_low, 6) AS diff_low, round(diff_high, 6) AS diff_high,\n"
        "    round(p_value, 4) AS p_value\n"
        f"FROM {METRICS}\nWHERE {_metric_where()}\n"
        "ORDER BY evaluated_at DESC, label, revision DESC, look DESC, metric"
    )


def _rollup_where() -> str:
    return f"$__timeFilter(window_start) AND {LLM_SPANS} AND {call_filters()}"


def calls_by_version_sql() -> str:
    """LLM calls per minute per version."""
    return (
        f"WITH {NUMBERS}\n"
        "SELECT $__timeInterval(window_start) AS time,\n"
        f"    {version_name('prompt_version')} AS version,\n"
        "    sum(requests) / ($__interval_s / 60) AS calls_per_min\n"
        f"FROM {ROLLUP}\nWHERE {_rollup_where()}\n"
        "GROUP BY time, prompt_version\nORDER BY time, version"
    )


def cost_by_version_sql() -> str:
    """USD per priced LLM call per version."""
    return (
        f"WITH {NUMBERS}\n"
        "SELECT $__timeInterval(window_start) AS time,\n"
        f"    {version_name('prompt_version')} AS version,\n"
        "    sum(cost_usd) / nullIf(sum(priced_requests), 0) AS usd_per_call\n"
        f"FROM {ROLLUP}\nWHERE {_rollup_where()}\n"
        "GROUP BY time, prompt_version\nHAVING sum(priced_requests) > 0\nORDER BY time, version"
    )


def versions_compared_sql() -> str:
    """Per version over the range: calls, error rate, p95 latency, USD and output tokens per call."""
    return (
        f"WITH {NUMBERS}\n"
        f"SELECT {version_name('prompt_version')} AS version, sum(requests) AS calls,\n"
        "    round(sum(errors) / nullIf(sum(requests), 0), 4) AS error_rate,\n"
        "    round(llmwatch_quantile(0.95, sumMap(latency_bins), sum(latency_zero_count)))"
        " AS p95_latency_ms,\n"
        "    round(sum(cost_usd) / nullIf(sum(priced_requests), 0), 6) AS usd_per_call,\n"
        "    round(sum(output_tokens) / nullIf(sum(requests), 0), 1) AS output_tokens_per_call\n"
        f"FROM {ROLLUP}\nWHERE {_rollup_where()}\n"
        "GROUP BY prompt_version\nORDER BY numbers[prompt_version], prompt_version"
    )


def scores_by_version_sql() -> str:
    """Per version and score (source:name): scores and their mean over the range."""
    return (
        f"WITH {NUMBERS}\n"
        f"SELECT {version_name('prompt_version')} AS version,\n"
        "    concat(source, ':', name) AS score, sum(scores) AS scores,\n"
        "    round(sum(score_sum) / nullIf(sum(valued), 0), 3) AS mean_score\n"
        f"FROM {SCORES_1M}\nWHERE $__timeFilter(window_start) AND {call_filters()}\n"
        "GROUP BY prompt_version, score\nORDER BY numbers[prompt_version], prompt_version, score"
    )
