"""Smoke test against a real Grafana running llmwatch's provisioning (docker compose), else skipped.

Set ``GRAFANA_URL`` (e.g. ``http://admin:password@127.0.0.1:3000``) and optionally ``GRAFANA_TOKEN``
(a service-account token, used instead of a user and password in the URL). The Grafana must load this
checkout's provisioning (docker-compose.yml mounts it) or have had ``llmwatch dashboards push``, and
its ClickHouse should hold some llmwatch data. Checks: Grafana's health, the ClickHouse datasource's
health, every dashboard by uid, every panel query through ``/api/ds/query`` (variables set to All,
the plugin expanding its macros), and that every generated alert rule is loaded and evaluates
healthy (``/api/prometheus/grafana/api/v1/rules``). No Grafana runs on the development machines, so
this is skipped there.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Final

import pytest
import yaml

from dashboards.alert_rules import FOLDER, RULES_PATH
from dashboards.build import GENERATED_DIR
from dashboards.macros import AllValue, VariableValue, interpolate_variables
from dashboards.query import DATASOURCE_TYPE, DATASOURCE_UID
from dashboards.walk import variables, visual_panels

Json = dict[str, Any]

GRAFANA_URL: Final = os.environ.get("GRAFANA_URL", "")
pytestmark = pytest.mark.skipif(
    not GRAFANA_URL,
    reason="GRAFANA_URL is not set: this smoke test needs a running Grafana with llmwatch's "
    "provisioning (docker compose up grafana), e.g. GRAFANA_URL=http://admin:pw@127.0.0.1:3000",
)

RANGE: Final = {"from": "now-6h", "to": "now"}
RULE_WAIT_S: Final = 180.0  # a fresh Grafana evaluates each group within its 1-minute interval
POLL_S: Final = 5.0
DASHBOARDS: Final[dict[str, Json]] = {
    doc["uid"]: doc
    for doc in (
        json.loads(p.read_text(encoding="utf-8")) for p in sorted(GENERATED_DIR.glob("*.json"))
    )
}
RULE_TITLES: Final[list[tuple[str, str]]] = [
    (group["name"], rule["title"])
    for group in yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))["groups"]
    for rule in group["rules"]
]


def _panel_targets() -> list[tuple[str, str, Json]]:
    return [
        (uid, str(panel.get("title")), target)
        for uid, doc in DASHBOARDS.items()
        for panel in visual_panels(doc)
        for target in panel.get("targets", []) or []
    ]


@pytest.fixture(scope="module")
def grafana() -> Any:
    from grafana_client.api import GrafanaApi

    return GrafanaApi.from_url(
        GRAFANA_URL, credential=os.environ.get("GRAFANA_TOKEN"), timeout=30.0
    )


def test_grafana_is_healthy(grafana: Any) -> None:
    assert grafana.client.GET("/health")["database"] == "ok"


def test_the_clickhouse_datasource_is_healthy(grafana: Any) -> None:
    health = grafana.client.GET(f"/datasources/uid/{DATASOURCE_UID}/health")
    assert health["status"] == "OK", health


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_dashboard_is_loaded(grafana: Any, uid: str) -> None:
    loaded = grafana.client.GET(f"/dashboards/uid/{uid}")
    expected = DASHBOARDS[uid]
    assert loaded["meta"]["folderUid"] == FOLDER
    assert loaded["dashboard"]["title"] == expected["title"]
    panels = [(p.get("id"), p.get("title")) for p in visual_panels(loaded["dashboard"])]
    assert panels == [(p.get("id"), p.get("title")) for p in visual_panels(expected)]


def _ds_query(grafana: Any, target: Json, values: dict[str, VariableValue]) -> Json:
    """One query through Grafana (the plugin expands its macros); the result for its refId."""
    query = target | {
        "rawSql": interpolate_variables(str(target["rawSql"]), values),
        "datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
        "intervalMs": 60_000,
        "maxDataPoints": 500,
    }
    answer = grafana.client.POST("/ds/query", json=RANGE | {"queries": [query]})
    result: Json = answer["results"][target["refId"]]
    return result


def _variable_values(grafana: Any, doc: Json) -> dict[str, VariableValue]:
    """As Grafana sets them on load: All when there is a custom All value, else the first value."""
    values: dict[str, VariableValue] = {}
    for variable in variables(doc):
        if variable.get("includeAll") and variable.get("allValue"):
            values[variable["name"]] = AllValue(str(variable["allValue"]))
            continue
        target = {"refId": "V", "rawSql": variable["query"], "format": 1, "editorType": "sql"}
        result = _ds_query(grafana, target, values)
        assert not result.get("error"), (variable["name"], result)
        frames = result.get("frames") or [{}]
        column = (frames[0].get("data", {}).get("values") or [[]])[0]
        values[variable["name"]] = [str(column[0])] if column else [""]
    return values


@pytest.fixture(scope="module")
def dashboard_variables(grafana: Any) -> dict[str, dict[str, VariableValue]]:
    return {uid: _variable_values(grafana, doc) for uid, doc in DASHBOARDS.items()}


@pytest.mark.parametrize(
    ("uid", "title", "target"), _panel_targets(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_panel_query_runs_in_grafana(
    grafana: Any,
    dashboard_variables: dict[str, dict[str, VariableValue]],
    uid: str,
    title: str,
    target: Json,
) -> None:
    result = _ds_query(grafana, target, dashboard_variables[uid])
    assert result.get("status", 200) == 200 and not result.get("error"), (title, result)


@pytest.fixture(scope="module")
def rule_health(grafana: Any) -> dict[tuple[str, str], Json]:
    """(group, title) -> the rule's state once every llmwatch rule was evaluated (or the wait ends)."""
    deadline = time.monotonic() + RULE_WAIT_S
    while True:
        answer = grafana.client.GET("/prometheus/grafana/api/v1/rules")
        found = {
            (group["name"], rule["name"]): rule
            for group in answer["data"]["groups"]
            if group.get("file") == FOLDER
            for rule in group["rules"]
        }
        pending = [k for k in RULE_TITLES if found.get(k, {}).get("health", "unknown") == "unknown"]
        if not pending or time.monotonic() > deadline:
            return found
        time.sleep(POLL_S)


@pytest.mark.parametrize(("group", "title"), RULE_TITLES, ids=[t for _, t in RULE_TITLES])
def test_alert_rule_is_loaded_and_healthy(
    rule_health: dict[tuple[str, str], Json], group: str, title: str
) -> None:
    rule = rule_health.get((group, title))
    assert rule is not None, f"rule {title!r} (group {group!r}) is not loaded in Grafana"
    assert rule["health"] == "ok", (rule["health"], rule.get("lastError"))
