"""The Grafana alert rule "Rubric score drop": a rubric's rolling judge score fell significantly.

One rule, multi-dimensional (one alert instance per rubric), in group ``quality`` of folder ``llmwatch``,
evaluated every minute:

- ``A``: ``dashboards.quality_sql.drop_sql()`` (table format): one row per rubric whose figures are
  enough and whose agreement gate is open, with the string column ``rubric`` (the instance's label)
  and the one numeric column ``z`` (Welch's z of the last hour against the 24 hours before).
- ``score_z``: reduce (last) of A, naming the value for the annotations.
- ``firing``: math ``$score_z < DROP_Z``; the condition, held for ``FOR`` before it fires.

No data (no judged rubric, or every gate closed) is OK: an untrusted judge never pages anyone. Built
with the same helpers as the SLO rules (``dashboards.alert_rules``), so the file and API shapes match.
Only :func:`drop_panel_link` does more than data work (it builds the Quality dashboard).
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
from dashboards.quality_sql import DROP_Z, drop_sql
from dashboards.query import DATASOURCE_UID, ClickHouseQueryBuilder, Format
from dashboards.walk import iter_panels

__all__ = ["DROP_PANEL_TITLE", "GROUP", "RULE_UID", "drop_panel_link", "quality_rule_group"]

GROUP: Final = "quality"
RULE_UID: Final = f"{UID_PREFIX}quality_rubric_drop"
DROP_PANEL_TITLE: Final = "Score drop test (the alert's figures)"
QUERY: Final = "A"
SCORE_Z: Final = "score_z"
FIRING: Final = "firing"
FOR: Final = "5m"
# Look back far enough for the test's two windows (1 h + 24 h).
LOOKBACK_S: Final = 25 * 3600
NO_DATA: Final = "OK"


def _annotations(link: DashboardLink) -> dict[str, str]:
    value = '{{ printf "%.2f" $values.' + SCORE_Z + ".Value }}"
    return {
        "summary": "Judge score of rubric {{ $labels.rubric }} dropped (z = " + value + ")",
        "description": (
            "The judge's mean score for rubric {{ $labels.rubric }} over the last hour is "
            f"significantly below the 24 hours before (Welch z = {value}, fires below {DROP_Z:g}). "
            "Only rubrics whose judge agrees with people (minimum kappa met) can fire."
        ),
        "runbook": (
            "Open the Quality dashboard: 'Judge score by prompt version' shows which release; the "
            "lowest-scored calls show what went wrong. Roll the prompt back if a new version is "
            "the cause, then confirm offline with `llmwatch eval run --baseline`."
        ),
        "__dashboardUid__": link.uid,
        "__panelId__": str(link.panel_id),
        "dashboard_path": f"/d/{link.uid}",
    }


def _rule(link: DashboardLink) -> alerting.Rule:
    query = (
        alerting.Query(QUERY)
        .datasource_uid(DATASOURCE_UID)
        .relative_time_range(alerting_model.RelativeTimeRange(from_val=LOOKBACK_S, to=0))
        .model(ClickHouseQueryBuilder(drop_sql(), Format.TABLE, QUERY))
    )
    return (
        alerting.Rule("Rubric score drop")
        .uid(RULE_UID)
        .org_id(ORG_ID)
        .folder_uid(FOLDER)
        .rule_group(GROUP)
        .condition(FIRING)
        .with_query(query)
        .with_query(expression_query(SCORE_Z, expr.TypeReduce().expression(QUERY).reducer("last")))
        .with_query(expression_query(FIRING, expr.TypeMath().expression(f"${SCORE_Z} < {DROP_Z}")))
        .for_val(FOR)
        .no_data_state(NO_DATA)
        .exec_err_state(EXEC_ERR_STATE)
        .is_paused(False)
        .labels({"severity": "ticket", "sli": "quality"})
        .annotations(_annotations(link))
    )


def quality_rule_group(link: DashboardLink) -> Json:
    """The ``quality`` rule group in Grafana's HTTP provisioning API shape."""
    group = alerting.RuleGroup(GROUP).folder_uid(FOLDER).interval(GROUP_INTERVAL_S)
    return group_json(group.with_rule(_rule(link)))


def drop_panel_link() -> DashboardLink:
    """The Quality dashboard's uid and the id of its drop-test panel."""
    from dashboards import quality
    from dashboards.build import dashboard_json  # late: dashboards.build imports the dashboards

    doc = dashboard_json(quality.build())
    for panel in iter_panels(doc):
        if panel.get("title") == DROP_PANEL_TITLE and isinstance(panel.get("id"), int):
            return DashboardLink(quality.UID, int(panel["id"]))
    raise ValueError(f"the Quality dashboard has no panel titled {DROP_PANEL_TITLE!r}")
