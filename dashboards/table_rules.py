"""Single-rule alert groups over one table query (the quality and prompt-canary rules), built once.

A :class:`TableRule` is a ClickHouse query in table format (``A``: string columns become the alert
instance's labels, one numeric column its value), a reduce (last) of it named ``value_ref``, and a math
condition on that value. :func:`table_rule_group` gives the group in Grafana's HTTP provisioning API
shape, with the same helpers as the SLO rules (``dashboards.alert_rules``); :func:`panel_link` finds the
panel an alert links to by its title. Pure data building, except that :func:`panel_link` builds the
dashboard it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from grafana_foundation_sdk.builders import alerting, expr
from grafana_foundation_sdk.models import alerting as alerting_model

from dashboards.alert_rules import (
    EXEC_ERR_STATE,
    FOLDER,
    GROUP_INTERVAL_S,
    ORG_ID,
    DashboardLink,
    Json,
    expression_query,
    group_json,
)
from dashboards.query import DATASOURCE_UID, ClickHouseQueryBuilder, Format
from dashboards.walk import iter_panels

__all__ = ["QUERY", "NoDataState", "TableRule", "panel_link", "table_rule_group"]

QUERY: Final = "A"
FIRING: Final = "firing"
NoDataState = Literal["Alerting", "NoData", "OK"]


@dataclass(frozen=True, slots=True)
class TableRule:
    title: str
    uid: str
    group: str
    sql: str
    lookback_s: int
    value_ref: str  # the reduce's ref id, named in the condition and the annotations
    condition: str  # math on ``$<value_ref>``, e.g. "$failed > 0"
    for_val: str
    no_data: NoDataState
    labels: dict[str, str]
    annotations: dict[str, str]


def _rule(rule: TableRule) -> alerting.Rule:
    query = (
        alerting.Query(QUERY)
        .datasource_uid(DATASOURCE_UID)
        .relative_time_range(alerting_model.RelativeTimeRange(from_val=rule.lookback_s, to=0))
        .model(ClickHouseQueryBuilder(rule.sql, Format.TABLE, QUERY))
    )
    reduce = expr.TypeReduce().expression(QUERY).reducer("last")
    return (
        alerting.Rule(rule.title)
        .uid(rule.uid)
        .org_id(ORG_ID)
        .folder_uid(FOLDER)
        .rule_group(rule.group)
        .condition(FIRING)
        .with_query(query)
        .with_query(expression_query(rule.value_ref, reduce))
        .with_query(expression_query(FIRING, expr.TypeMath().expression(rule.condition)))
        .for_val(rule.for_val)
        .no_data_state(rule.no_data)
        .exec_err_state(EXEC_ERR_STATE)
        .is_paused(False)
        .labels(rule.labels)
        .annotations(rule.annotations)
    )


def table_rule_group(rule: TableRule) -> Json:
    """The rule's own group in Grafana's HTTP provisioning API shape."""
    group = alerting.RuleGroup(rule.group).folder_uid(FOLDER).interval(GROUP_INTERVAL_S)
    return group_json(group.with_rule(_rule(rule)))


def panel_link(uid: str, build: Callable[[], Any], title: str) -> DashboardLink:
    """The dashboard's uid and the id of its panel titled ``title``."""
    from dashboards.build import dashboard_json  # late: dashboards.build imports the dashboards

    for panel in iter_panels(dashboard_json(build())):
        if panel.get("title") == title and isinstance(panel.get("id"), int):
            return DashboardLink(uid, int(panel["id"]))
    raise ValueError(f"dashboard {uid!r} has no panel titled {title!r}")
