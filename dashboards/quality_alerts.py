"""The Grafana alert rule "Rubric score drop": a rubric's rolling judge score fell significantly.

One rule, multi-dimensional (one alert instance per rubric), in group ``quality`` of folder ``llmwatch``,
evaluated every minute:

- ``A``: ``dashboards.quality_sql.drop_sql()`` (table format): one row per rubric whose figures are
  enough and whose agreement gate is open, with the string column ``rubric`` (the instance's label)
  and the one numeric column ``z`` (Welch's z of the last hour against the 24 hours before).
- ``score_z``: reduce (last) of A, naming the value for the annotations.
- ``firing``: math ``$score_z < DROP_Z``; the condition, held for ``FOR`` before it fires.

No data (no judged rubric, or every gate closed) is OK: an untrusted judge never pages anyone. Built
with ``dashboards.table_rules`` (the SLO rules' helpers), so the file and API shapes match.
Only :func:`drop_panel_link` does more than data work (it builds the Quality dashboard).
"""

from __future__ import annotations

from typing import Final

from dashboards.alert_rules import UID_PREFIX, DashboardLink, Json
from dashboards.quality_sql import DROP_Z, drop_sql
from dashboards.table_rules import NoDataState, TableRule, panel_link, table_rule_group

__all__ = ["DROP_PANEL_TITLE", "GROUP", "RULE_UID", "drop_panel_link", "quality_rule_group"]

GROUP: Final = "quality"
RULE_UID: Final = f"{UID_PREFIX}quality_rubric_drop"
DROP_PANEL_TITLE: Final = "Score drop test (the alert's figures)"
SCORE_Z: Final = "score_z"
FOR: Final = "5m"
# Look back far enough for the test's two windows (1 h + 24 h).
LOOKBACK_S: Final = 25 * 3600
NO_DATA: Final[NoDataState] = "OK"


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


def quality_rule_group(link: DashboardLink) -> Json:
    """The ``quality`` rule group in Grafana's HTTP provisioning API shape."""
    return table_rule_group(
        TableRule(
            title="Rubric score drop",
            uid=RULE_UID,
            group=GROUP,
            sql=drop_sql(),
            lookback_s=LOOKBACK_S,
            value_ref=SCORE_Z,
            condition=f"${SCORE_Z} < {DROP_Z}",
            for_val=FOR,
            no_data=NO_DATA,
            labels={"severity": "ticket", "sli": "quality"},
            annotations=_annotations(link),
        )
    )


def drop_panel_link() -> DashboardLink:
    """The Quality dashboard's uid and the id of its drop-test panel."""
    from dashboards import quality

    return panel_link(quality.UID, quality.build, DROP_PANEL_TITLE)
