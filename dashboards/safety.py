"""The Safety dashboard: what the guardrails find in LLM prompts and outputs, where and since when.

Sources (migration 0009, written by the text-analysis consumer ``llmwatch analyze``):
``llm_guardrail_rollup_1m`` for every count and rate (per minute, service, environment, model, prompt
version and span kind: texts analysed, texts flagged, texts flagged per risk category, PII and secret
entities per type; one row per source record, so it is read with FINAL and summed), and
``llm_guardrail_findings`` for the list of recent high-severity findings (types, scores and offsets,
never the text). ``llm_texts`` (the stored, redacted texts) is never shown here.

"Texts" are analysed calls (their prompt and output together): a call is flagged for a category when
either text has a finding of it. Injection attempts are the calls flagged ``prompt_injection`` plus
those flagged ``jailbreak`` (a call with both counts twice; the detector reports one per text). The
model is the response model, else the request model (``TextRecord.model``). Only calls whose app
captures text (``text_capture`` ``analyze`` or ``store``) are analysed, so every figure covers those
calls only. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.models import dashboard as dashboard_model

from dashboards.panels import (
    FILTER_VARIABLES,
    PanelBuilder,
    doc,
    new_dashboard,
    query_variable,
    row,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
    var_filter,
    with_sections,
)
from dashboards.query import DATABASE
from streams.storage import GUARDRAIL_FINDINGS_TABLE, GUARDRAIL_ROLLUP_TABLE
from streams.text.findings import RiskCategory, Severity

__all__ = ["CATEGORIES", "FILTER_NAMES", "RECENT_FINDINGS", "UID", "build"]

UID: Final = "llmwatch-safety"
ROLLUP: Final = f"{DATABASE}.{GUARDRAIL_ROLLUP_TABLE} FINAL"
FINDINGS: Final = f"{DATABASE}.{GUARDRAIL_FINDINGS_TABLE} FINAL"
# The filters of the other dashboards that the guardrail tables have (they have no provider).
FILTER_NAMES: Final = ("environment", "service", "model", "prompt_version")
FILTERS: Final = tuple(v for v in FILTER_VARIABLES if v.name in FILTER_NAMES)
CATEGORIES: Final = tuple(str(category) for category in RiskCategory)
INJECTION: Final = (
    f"(sum(flagged['{RiskCategory.PROMPT_INJECTION}']) + sum(flagged['{RiskCategory.JAILBREAK}']))"
)
HIGH_SEVERITIES: Final = ", ".join(f"'{s}'" for s in (Severity.HIGH, Severity.CRITICAL))
RECENT_FINDINGS: Final = 200
TOP_TYPES: Final = 20
FLAGGED_WARN: Final = 0.05
FLAGGED_RED: Final = 0.2
INJECTIONS_RED: Final = 100
INJECTION_RATE_RED: Final = 0.05
RATE_COLUMNS: Final = ".*_rate$"


def filters() -> str:
    """The filter variables' clauses (the same columns in the rollup and the findings), AND-joined."""
    return " AND ".join(var_filter(v.name, v.rollup_column) for v in FILTERS)


def rollup_where() -> str:
    return f"$__timeFilter(window_start) AND {filters()}"


def _filter_variables() -> list[dashboard_builder.QueryVariable]:
    """environment, service, model, prompt_version over the guardrail rollup, each narrowed by the
    ones before it (like ``dashboards.panels.filter_variables`` on the call rollup)."""
    variables = []
    for index, var in enumerate(FILTERS):
        column = var.rollup_column
        narrowing = "".join(
            f" AND {var_filter(parent.name, parent.rollup_column)}" for parent in FILTERS[:index]
        )
        sql = (
            f"SELECT DISTINCT {column} FROM {ROLLUP} WHERE $__timeFilter(window_start) "
            f"AND {column} != ''{narrowing} ORDER BY {column}"
        )
        description = f"Only count analysed calls of these {var.label.lower()}s (All: no filter)."
        variables.append(query_variable(var.name, var.label, sql, description))
    return variables


def _stats() -> list[PanelBuilder]:
    texts = stat_panel(
        "Texts analysed",
        f"SELECT sum(texts) AS texts_analysed FROM {ROLLUP} WHERE {rollup_where()}",
        doc(
            "Calls whose prompt and output the guardrails analysed in the range and filters.",
            "nothing was analysed: check that the apps capture text (text_capture analyze or "
            "store) and that `llmwatch analyze` runs and keeps up (Pipeline health dashboard).",
        ),
        "short",
        thresholds((None, "red"), (1, "blue")),
    )
    flagged = stat_panel(
        "Flagged",
        f"SELECT sum(flagged_texts) / nullIf(sum(texts), 0) AS flagged_share "
        f"FROM {ROLLUP} WHERE {rollup_where()}",
        doc(
            "Share of analysed calls with at least one guardrail finding of any category (PII, "
            "secret, injection, toxicity, banned topic, data leak, unknown URL, refusal).",
            f"above {FLAGGED_RED:.0%}: find the category in 'Flagged texts per minute by category' "
            "and the service and prompt version in the tables below.",
        ),
        "percentunit",
        thresholds((None, "green"), (FLAGGED_WARN, "orange"), (FLAGGED_RED, "red")),
        decimals=2,
    )
    injections = stat_panel(
        "Injection attempts",
        f"SELECT {INJECTION} AS injection_attempts FROM {ROLLUP} WHERE {rollup_where()}",
        doc(
            "Analysed calls flagged as prompt injection or jailbreak in the range (in the prompt, "
            "or in retrieved passages and tool output).",
            f"{INJECTIONS_RED} or more: someone is probing the app. Find the service in "
            "'Injection-attempt rate by service' and the calls in 'Recent high-severity findings'; "
            "check what the model did with them before blocking the user.",
        ),
        "short",
        thresholds((None, "green"), (1, "orange"), (INJECTIONS_RED, "red")),
    )
    pii = stat_panel(
        "PII and secrets found",
        f"SELECT sum(arraySum(mapValues(pii_entities))) AS pii_entities "
        f"FROM {ROLLUP} WHERE {rollup_where()}",
        doc(
            "PII entities and secrets (emails, names, card numbers, API keys...) found in analysed "
            "prompts and outputs in the range; 'Top PII and secret types' breaks them down.",
            "never red by itself; secrets (API_KEY, SECRET) should be zero: rotate any key "
            "found and ask the service's owners why users paste keys.",
        ),
        "short",
        thresholds((None, "blue")),
    )
    return [texts, flagged, injections, pii]


def _trends() -> list[PanelBuilder]:
    by_category = timeseries_panel(
        "Flagged texts per minute by category",
        f"SELECT time, category, texts_flagged / ($__interval_s / 60) AS texts_per_min\nFROM (\n"
        f"    SELECT $__timeInterval(window_start) AS time, sumMap(flagged) AS by_category\n"
        f"    FROM {ROLLUP}\n    WHERE {rollup_where()}\n    GROUP BY time)\n"
        f"ARRAY JOIN mapKeys(by_category) AS category, mapValues(by_category) AS texts_flagged\n"
        f"ORDER BY time, category",
        doc(
            "Analysed calls per minute with a finding of each risk category (a call with findings "
            "of two categories counts in both).",
            "a category jumping at one moment: a new prompt version, model or feature started "
            "then (compare prompt versions below) or an attack began (check the injection rate).",
        ),
        "short",
    ).axis_label("texts / min")
    injection_rate = timeseries_panel(
        "Injection-attempt rate by service",
        f"SELECT $__timeInterval(window_start) AS time, service,\n"
        f"    {INJECTION} / nullIf(sum(texts), 0) AS injection_rate\n"
        f"FROM {ROLLUP}\nWHERE {rollup_where()}\nGROUP BY time, service\nORDER BY time, service",
        doc(
            "Share of each service's analysed calls flagged as prompt injection or jailbreak, per "
            f"interval. The red line is {INJECTION_RATE_RED:.0%}; the injection SLO "
            "(config/slos.yaml) alerts on its burn rate.",
            "a service above the line is under attack or ingests poisoned documents: look at "
            "'Recent high-severity findings' (field output means retrieved or tool text), "
            "rate-limit the source and check what the model did with it.",
        ),
        "percentunit",
        limits=thresholds((None, "transparent"), (INJECTION_RATE_RED, "red")),
    ).axis_label("share of texts")
    return [by_category, injection_rate]


def _per_service() -> table.Panel:
    columns = ",\n    ".join(f"sum(flagged['{c}']) AS {c}" for c in CATEGORIES)
    return _sorted(
        table_panel(
            "Flagged texts per service and category",
            f"SELECT service, sum(texts) AS texts_analysed, sum(flagged_texts) AS texts_flagged,\n"
            f"    texts_flagged / nullIf(texts_analysed, 0) AS flagged_rate,\n    {columns},\n"
            f"    round(max(injection_score_max), 3) AS max_injection_score\n"
            f"FROM {ROLLUP}\nWHERE {rollup_where()}\n"
            f"GROUP BY service\nORDER BY texts_flagged DESC, service",
            doc(
                "Per service: calls analysed, calls flagged and their share, calls flagged per "
                "risk category, and the highest injection score. Click a header to sort.",
                "a service whose flagged_rate stands out: its category columns say what to fix "
                "(secret: rotate keys; data_leak: the model repeats personal data, fix the "
                "prompt; prompt_injection or jailbreak: see the findings below).",
            ),
        ),
        "texts_flagged",
    )


def _pii_types() -> table.Panel:
    return _sorted(
        table_panel(
            "Top PII and secret types",
            f"SELECT type, sum(entities) AS found,\n"
            f"    arrayStringConcat(arraySort(groupUniqArray(service)), ', ') AS services\n"
            f"FROM {ROLLUP}\n"
            f"ARRAY JOIN mapKeys(pii_entities) AS type, mapValues(pii_entities) AS entities\n"
            f"WHERE {rollup_where()}\nGROUP BY type\nORDER BY found DESC, type\nLIMIT {TOP_TYPES}",
            doc(
                "PII and secret entities found per type in the range, with the services they "
                "were found in.",
                "API_KEY or SECRET rows: rotate the keys (the findings table below has the event "
                "ids); card numbers or SSNs in a service that should never see them: mask them "
                "in the app before the call.",
            ),
            span=9,
            height=9,
        ),
        "found",
        rates=False,
    )


def _prompt_versions() -> table.Panel:
    injection_rate = f"{INJECTION} / nullIf(texts_analysed, 0)"
    rates = ",\n    ".join(
        f"sum(flagged['{c}']) / nullIf(texts_analysed, 0) AS {c}_rate"
        for c in (RiskCategory.PII, RiskCategory.DATA_LEAK, RiskCategory.TOXICITY)
    )
    return _sorted(
        table_panel(
            "Flagged rate by prompt version",
            f"SELECT service, prompt_version, min(window_start) AS first_seen,\n"
            f"    max(window_start) AS last_seen, sum(texts) AS texts_analysed,\n"
            f"    sum(flagged_texts) / nullIf(texts_analysed, 0) AS flagged_rate,\n"
            f"    {injection_rate} AS injection_rate,\n    {rates}\n"
            f"FROM {ROLLUP}\nWHERE {rollup_where()} AND prompt_version != ''\n"
            f"GROUP BY service, prompt_version\nORDER BY service, first_seen, prompt_version",
            doc(
                "Per service and prompt version: when it was first and last seen in the range, "
                "calls analysed and the share flagged (any category, injection, PII, data leak, "
                "toxicity).",
                "a new version flagged much more often than the one before it is a bad prompt "
                "release (e.g. data_leak_rate: the model repeats personal data): roll it back.",
            ),
            span=15,
            height=9,
        ),
        "flagged_rate",
    )


def _recent() -> PanelBuilder:
    return table_panel(
        "Recent high-severity findings",
        f"SELECT start_time AS time, service, model, prompt_version, field, category, type,\n"
        f"    decision, severity, round(score, 3) AS score, event_id\n"
        f"FROM {FINDINGS}\n"
        f"WHERE $__timeFilter(start_time) AND severity IN ({HIGH_SEVERITIES}) AND {filters()}\n"
        f"ORDER BY time DESC, event_id, field, category, type\nLIMIT {RECENT_FINDINGS}",
        doc(
            f"The latest {RECENT_FINDINGS} findings of severity high or critical (injections, "
            "jailbreaks, secrets, card numbers, data leaks) in the range: where, of which kind, "
            "the decision and score, and the call's event id. Never the text itself.",
            "a critical (block) finding: look the call up by event_id (and its stored, redacted "
            "text in llm_texts when the app captures with store) and decide whether to block "
            "the user or fix the prompt.",
        ),
        height=10,
    )


def _sorted(panel: table.Panel, column: str, *, rates: bool = True) -> table.Panel:
    """``panel`` sorted by ``column`` (descending) on load; its ``*_rate`` columns in % if ``rates``."""
    panel = panel.sort_by([common_builder.TableSortByFieldState().display_name(column).desc(True)])
    if not rates:
        return panel
    percent = dashboard_model.DynamicConfigValue(id_val="unit", value="percentunit")
    return panel.override_by_regexp(RATE_COLUMNS, [percent])


def build() -> dashboard_builder.Dashboard:
    dashboard = new_dashboard(
        UID,
        "LLM safety",
        "Guardrail findings on LLM prompts and outputs: PII and secrets, prompt injection, "
        "content filters, by service, category and prompt version.",
    )
    return with_sections(
        dashboard,
        _filter_variables(),
        [
            (row("Totals"), _stats()),
            (row("Trends"), _trends()),
            (row("Where and what"), [_per_service(), _pii_types(), _prompt_versions(), _recent()]),
        ],
    )
