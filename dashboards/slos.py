"""The SLO dashboard: one repeated row per SLO from the stream's status rows, plus firing alerts.

Source: ``llm_slo_status`` (migration 0005), written by the worker's burn-rate evaluator
(``streams.slo.burnrate``) at every evaluation: per SLO, rule and window the good / total counts or the
USD spent, the burn rate, whether the rule fires and the error budget left. The dashboard needs no
regeneration when ``config/slos.yaml`` changes: the ``slo`` variable lists the SLOs that reported in
the range and Grafana repeats the per-SLO row for each selected one. SLO alerts (``llm_alerts``) are
annotated as regions on every time series. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard as dashboard_builder

from dashboards.overview import alert_annotation, firing_alerts_panel
from dashboards.panels import (
    PanelBuilder,
    doc,
    gauge_panel,
    new_dashboard,
    query_variable,
    row,
    table_panel,
    thresholds,
    timeseries_panel,
    var_filter,
)

__all__ = ["UID", "build"]

UID: Final = "llmwatch-slos"
STATUS: Final = "llmwatch.llm_slo_status FINAL"
SLO_FILTER: Final = var_filter("slo", "slo")
WHERE: Final = f"$__timeFilter(evaluated_at) AND {SLO_FILTER}"
HOUR_MS: Final = 3_600_000
BUDGET_WARN: Final = 0.25
# The SLI of a status row: good ratio for ratio SLIs, USD per hour for cost SLIs.
SLI_VALUE: Final = (
    f"if(sli_type = 'cost', spent_usd / (window_ms / {HOUR_MS}), good / nullIf(total, 0))"
)
OBJECTIVE_VALUE: Final = "if(sli_type = 'cost', usd_per_hour, objective)"

_SUMMARY_SQL: Final = f"""SELECT slo, any(sli_type) AS sli, any(objective) AS objective,
    any(usd_per_hour) AS budget_usd_per_hour, any(budget_remaining) AS budget_remaining,
    round(maxIf(burn_rate, window_kind = 'long'), 2) AS max_long_window_burn_rate,
    round(maxIf(burn_rate, window_kind = 'short'), 2) AS max_short_window_burn_rate,
    arrayStringConcat(arraySort(groupUniqArrayIf(rule, firing)), ', ') AS firing_rules
FROM {STATUS}
WHERE {WHERE}
  AND (slo, evaluated_at) IN (
    SELECT slo, max(evaluated_at) FROM {STATUS} WHERE $__timeFilter(evaluated_at) GROUP BY slo)
GROUP BY slo
ORDER BY budget_remaining, slo"""


def _summary() -> PanelBuilder:
    return table_panel(
        "SLO summary",
        _SUMMARY_SQL,
        doc(
            "Every selected SLO at its last evaluation in the range: SLI type, objective (ratio "
            "SLIs) or USD-per-hour budget (cost SLIs), error budget left over the SLO period (1 = "
            "untouched, below 0 = exhausted), the highest burn rates and the rules firing now.",
            "firing_rules not empty or budget_remaining below 0.25: open that SLO's row below and "
            "follow its runbook (in the firing alerts table).",
        ),
        height=9,
    )


def _definition() -> PanelBuilder:
    return table_panel(
        "Definition: $slo",
        f"SELECT slo, any(sli) AS sli, any(objective) AS objective,\n"
        f"    any(budget) AS budget_usd_per_hour, any(period) AS period,\n"
        f"    arrayStringConcat(groupArray(rule_text), '; ') AS alert_rules\n"
        f"FROM (\n"
        f"    SELECT slo, rule, any(sli_type) AS sli, any(objective) AS objective,\n"
        f"        any(usd_per_hour) AS budget, any(budget_period) AS period,\n"
        f"        concat(rule, ' (', any(severity), '): burn > ', toString(any(factor)), ' over ',\n"
        f"            anyIf(window, window_kind = 'long'), ' and ',\n"
        f"            anyIf(window, window_kind = 'short')) AS rule_text\n"
        f"    FROM {STATUS} WHERE {WHERE}\n"
        f"    GROUP BY slo, rule\n"
        f"    ORDER BY slo, rule)\n"
        f"GROUP BY slo\nORDER BY slo",
        doc(
            "How the SLO is defined in config/slos.yaml: SLI, objective or budget, error-budget "
            "period and its multi-window burn-rate rules (a rule fires when both of its windows "
            "burn faster than its factor).",
            "this panel has no red state; it explains the panels next to it.",
        ),
        height=4,
    )


def _sli() -> PanelBuilder:
    return (
        timeseries_panel(
            "SLI vs objective: $slo",
            f"SELECT time, series, value FROM (\n"
            f"    SELECT $__timeInterval(evaluated_at) AS time, concat('SLI over ', window) AS series,\n"
            f"        argMax({SLI_VALUE}, evaluated_at) AS value\n"
            f"    FROM {STATUS} WHERE {WHERE} GROUP BY time, series\n"
            f"    UNION ALL\n"
            f"    SELECT $__timeInterval(evaluated_at) AS time, 'objective' AS series,\n"
            f"        any({OBJECTIVE_VALUE}) AS value\n"
            f"    FROM {STATUS} WHERE {WHERE} GROUP BY time, series)\n"
            f"ORDER BY time, series",
            doc(
                "The SLI measured over each alert window (good ratio for latency, availability and "
                "TTFT SLOs; USD per hour for cost SLOs) against the objective or budget.",
                "a good ratio below the objective (or USD per hour above the budget) burns error "
                "budget; the longer the window below, the more it burns.",
            ),
            "none",
            span=9,
        )
        .decimals(4)
        .axis_label("good ratio, or USD / hour for cost")
    )


def _burn_rates() -> PanelBuilder:
    return timeseries_panel(
        "Burn rate per window: $slo",
        f"SELECT time, series, value FROM (\n"
        f"    SELECT $__timeInterval(evaluated_at) AS time,\n"
        f"        concat(rule, ' ', window) AS series, argMax(burn_rate, evaluated_at) AS value\n"
        f"    FROM {STATUS} WHERE {WHERE} GROUP BY time, series\n"
        f"    UNION ALL\n"
        f"    SELECT $__timeInterval(evaluated_at) AS time,\n"
        f"        concat(rule, ' threshold') AS series, any(factor) AS value\n"
        f"    FROM {STATUS} WHERE {WHERE} GROUP BY time, series)\n"
        f"ORDER BY time, series",
        doc(
            "Burn rate over every window of every rule (1 = spending the error budget exactly "
            "over the SLO period), with each rule's threshold. A rule fires when its long and "
            "short windows are both above its threshold.",
            "both windows of a rule above its threshold: the alert fires (page or ticket by the "
            "rule's severity); the short window falling back below resolves it.",
        ),
        "none",
        span=9,
    ).axis_label("x budget rate")


def _budget() -> PanelBuilder:
    return gauge_panel(
        "Error budget left: $slo",
        f"SELECT argMax(budget_remaining, evaluated_at) AS budget_remaining\n"
        f"FROM {STATUS}\nWHERE {WHERE}",
        doc(
            "Share of the SLO period's error budget (or money budget) left at the end of the "
            "range, as counted by the worker since it started (a restart shortens the history).",
            "below 25%: freeze risky changes to this service; below 0 the SLO is missed for the "
            "period.",
        ),
        "percentunit",
        thresholds((None, "red"), (0.0, "orange"), (BUDGET_WARN, "green")),
        low=0.0,
        high=1.0,
        span=6,
        height=8,
    )


def build() -> dashboard_builder.Dashboard:
    dashboard = (
        new_dashboard(
            UID,
            "LLM SLOs",
            "Burn rates, SLIs and error budgets of the SLOs in config/slos.yaml, one row per SLO.",
        )
        .with_variable(
            query_variable(
                "slo",
                "SLO",
                f"SELECT DISTINCT slo FROM {STATUS} WHERE $__timeFilter(evaluated_at) ORDER BY slo",
                "The SLOs to show, one row each (All: every SLO that reported in the range).",
            )
        )
        .annotation(alert_annotation())
        .with_row(row("Overview"))
        .with_panel(firing_alerts_panel())
        .with_panel(_summary())
        .with_row(row("SLO $slo", repeat="slo"))
    )
    for panel in [_definition(), _sli(), _burn_rates(), _budget()]:
        dashboard = dashboard.with_panel(panel)
    return dashboard
