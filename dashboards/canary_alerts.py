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

from dashboards.alert_rules import UID_PREFIX, DashboardLink, Json
from dashboards.prompts_sql import VERDICTS
from dashboards.table_rules import NoDataState, TableRule, panel_link, table_rule_group

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
FAILED: Final = "failed"
NO_DATA: Final[NoDataState] = "OK"


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


def canary_rule_group(link: DashboardLink) -> Json:
    """The ``prompts`` rule group in Grafana's HTTP provisioning API shape."""
    return table_rule_group(
        TableRule(
            title="Prompt canary failed",
            uid=RULE_UID,
            group=GROUP,
            sql=canary_alert_sql(),
            lookback_s=WINDOW_MINUTES * 60,
            value_ref=FAILED,
            condition=f"${FAILED} > 0",
            for_val="0s",
            no_data=NO_DATA,
            labels={"severity": "page", "sli": "prompt_canary"},
            annotations=_annotations(link),
        )
    )


def verdict_panel_link() -> DashboardLink:
    """The Prompts dashboard's uid and the id of its verdict history panel."""
    from dashboards import prompts

    return panel_link(prompts.UID, prompts.build, VERDICT_PANEL_TITLE)
