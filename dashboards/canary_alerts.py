"""The Grafana alert rule "Prompt canary failed": the canary analysis failed a prompt version.

One rule, multi-dimensional (one alert instance per prompt and label), in group ``prompts`` of folder
``llmwatch``, evaluated every minute:

- ``A``: :func:`canary_alert_sql` (table format): one row per (prompt, label) whose newest look in the
  last :data:`WINDOW_MINUTES` minutes is a fail, with string columns ``prompt``, ``label``, ``canary``,
  ``failed_metrics`` and ``action`` (the instance's labels) and the one numeric column ``failed``.
- ``failed``: reduce (last) of A; ``firing``: math ``$failed > 0``, no pending period: the analysis
  already waited for significance, so a fail pages at once.

A fail the policy acted on (``action = rolled_back``) still fires, as a ticket: someone must fix the
version before a new canary. A fail it did not act on (``act: false``) pages, with the rollback command.
No data (no failed canary) is OK. Pure data building; only :func:`verdict_panel_link` builds the
Prompts dashboard to find the panel the alert links to.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import alerting, expr
from grafana_foundation_sdk.models import alerting as alerting_model

from dashboards.alert_rules import (
    EXEC_ERR_STATE,
    FOLDER,
    GROUP_INTERVAL_S,
    ORG_ID,
    UID_PREFIX,
    DashboardLink,
    Json,
    expression_query,
    group_json,
)
from dashboards.prompts_sql import VERDICTS
from dashboards.query import DATASOURCE_UID, ClickHouseQueryBuilder, Format
from dashboards.walk import iter_panels

__all__ = [
    "GROUP",
    "RULE_UID",
    "VERDICT_PANEL_TITLE",
    "WINDOW_MINUTES",
    "canary_alert_sql",
    "canary_rule_group",
    "verdict_panel_link",
]

GROUP: Final = "prompts"
RULE_UID: Final = f"{UID_PREFIX}prompt_canary_failed"
VERDICT_PANEL_TITLE: Final = "Verdict history"
WINDOW_MINUTES: Final = 60
QUERY: Final = "A"
FAILED: Final = "failed"
FIRING: Final = "firing"
NO_DATA: Final = "OK"


def canary_alert_sql() -> str:
    """One row per (prompt, label) whose newest look in the window failed."""
    key = "(evaluated_at, revision, look)"
    return (
        "SELECT name AS prompt, label,\n"
        f"    argMax(canary_version, {key}) AS canary,\n"
        f"    arrayStringConcat(argMax(failed_metrics, {key}), ', ') AS failed_metrics,\n"
        f"    argMax(action, {key}) AS action,\n"
        f"    toFloat64(argMax(verdict, {key}) = 'fail') AS {FAILED}\n"
        f"FROM {VERDICTS}\n"
        f"WHERE evaluated_at > now64(3) - INTERVAL {WINDOW_MINUTES} MINUTE\n"
        "GROUP BY name, label\n"
        f"HAVING {FAILED} > 0\n"
        "ORDER BY prompt, label"
    )


def _annotations(link: DashboardLink) -> dict[str, str]:
    return {
        "summary": (
            "Prompt {{ $labels.prompt }}@{{ $labels.label }}: canary {{ $labels.canary }} failed "
            "on {{ $labels.failed_metrics }} ({{ $labels.action }})"
        ),
        "description": (
            "llmwatch canary judged the canary version worse than its baseline beyond the label "
            "policy's tolerances, with always-valid tests (false fail at most the policy's alpha). "
            "action rolled_back: the label is back on the baseline; action alert: the policy does "
            "not act."
        ),
        "runbook": (
            "If the action is alert, roll back now: llmwatch prompts rollback {{ $labels.prompt }} "
            "--label {{ $labels.label }}. Then open the Prompts dashboard: the canary's metrics "
            "beside the baseline's show what got worse; fix the version before a new canary."
        ),
        "__dashboardUid__": link.uid,
        "__panelId__": str(link.panel_id),
        "dashboard_path": f"/d/{link.uid}",
    }


def _rule(link: DashboardLink) -> alerting.Rule:
    query = (
        alerting.Query(QUERY)
        .datasource_uid(DATASOURCE_UID)
        .relative_time_range(alerting_model.RelativeTimeRange(from_val=WINDOW_MINUTES * 60, to=0))
        .model(ClickHouseQueryBuilder(canary_alert_sql(), Format.TABLE, QUERY))
    )
    return (
        alerting.Rule("Prompt canary failed")
        .uid(RULE_UID)
        .org_id(ORG_ID)
        .folder_uid(FOLDER)
        .rule_group(GROUP)
        .condition(FIRING)
        .with_query(query)
        .with_query(expression_query(FAILED, expr.TypeReduce().expression(QUERY).reducer("last")))
        .with_query(expression_query(FIRING, expr.TypeMath().expression(f"${FAILED} > 0")))
        .for_val("0s")
        .no_data_state(NO_DATA)
        .exec_err_state(EXEC_ERR_STATE)
        .is_paused(False)
        .labels({"severity": "page", "sli": "prompt_canary"})
        .annotations(_annotations(link))
    )


def canary_rule_group(link: DashboardLink) -> Json:
    """The ``prompts`` rule group in Grafana's HTTP provisioning API shape."""
    group = alerting.RuleGroup(GROUP).folder_uid(FOLDER).interval(GROUP_INTERVAL_S)
    return group_json(group.with_rule(_rule(link)))


def verdict_panel_link() -> DashboardLink:
    """The Prompts dashboard's uid and the id of its verdict history panel."""
    from dashboards import prompts
    from dashboards.build import dashboard_json  # late: dashboards.build imports the dashboards

    doc = dashboard_json(prompts.build())
    for panel in iter_panels(doc):
        if panel.get("title") == VERDICT_PANEL_TITLE and isinstance(panel.get("id"), int):
            return DashboardLink(prompts.UID, int(panel["id"]))
    raise ValueError(f"the Prompts dashboard has no panel titled {VERDICT_PANEL_TITLE!r}")
