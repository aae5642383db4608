"""The "Rubric score drop" alert rule: its shape, condition, states and link to the Quality dashboard."""

from __future__ import annotations

from typing import Any, Final

import yaml

from dashboards.alert_rules import EXPR_UID, RULES_PATH
from dashboards.quality import UID as QUALITY_UID
from dashboards.quality_alerts import (
    DROP_PANEL_TITLE,
    GROUP,
    RULE_UID,
    drop_panel_link,
    quality_rule_group,
)
from dashboards.quality_sql import DROP_Z, drop_sql
from dashboards.walk import iter_panels

Json = dict[str, Any]
DOC: Final[Json] = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))


def _rule() -> Json:
    (group,) = [g for g in DOC["groups"] if g["name"] == GROUP]
    (rule,) = group["rules"]
    return dict(rule)


def test_the_rule_is_in_the_provisioned_file_with_its_own_group() -> None:
    rule = _rule()
    assert rule["uid"] == RULE_UID
    assert rule["title"] == "Rubric score drop"
    assert (rule["noDataState"], rule["execErrState"]) == ("OK", "Error")
    assert rule["labels"] == {"severity": "ticket", "sli": "quality"}


def test_the_query_is_the_drop_test_and_fires_below_the_threshold() -> None:
    rule = _rule()
    by_ref = {q["refId"]: q for q in rule["data"]}
    (sql_query,) = [q for q in rule["data"] if q["datasourceUid"] != EXPR_UID]
    assert sql_query["model"]["rawSql"] == drop_sql()
    assert "WHERE gated_in" in drop_sql()
    assert by_ref["score_z"]["model"]["type"] == "reduce"
    assert by_ref[rule["condition"]]["model"]["expression"] == f"$score_z < {DROP_Z}"


def test_the_rule_links_to_the_drop_panel_of_the_quality_dashboard() -> None:
    from dashboards import quality
    from dashboards.build import dashboard_json

    link = drop_panel_link()
    titles = {p.get("id"): p.get("title") for p in iter_panels(dashboard_json(quality.build()))}
    assert link.uid == QUALITY_UID and titles[link.panel_id] == DROP_PANEL_TITLE
    rule = _rule()
    assert (rule["dashboardUid"], rule["panelId"]) == (QUALITY_UID, link.panel_id)
    api = quality_rule_group(link)
    assert api["rules"][0]["uid"] == RULE_UID
