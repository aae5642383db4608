"""The "Prompt canary failed" alert rule: its shape, its condition, its link to the Prompts dashboard,
and its SQL on chdb: only a (prompt, label) whose newest recent look failed fires."""

from __future__ import annotations

from typing import Any, Final

import pytest
import yaml

from dashboards.alert_rules import EXPR_UID, RULES_PATH
from dashboards.canary_alerts import (
    GROUP,
    RULE_UID,
    VERDICT_PANEL_TITLE,
    WINDOW_MINUTES,
    canary_alert_sql,
    verdict_panel_link,
)
from dashboards.prompts import UID as PROMPTS_UID
from dashboards.query import DATABASE
from sinks.migrate import apply_migrations
from sinks.rows import insert_rows
from streams.prompts.records import CANARY_VERDICT_FIELDS
from streams.storage import CANARY_VERDICTS_TABLE

Json = dict[str, Any]
DOC: Final[Json] = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))
MINUTE_MS: Final = 60_000


def _rule() -> Json:
    (group,) = [g for g in DOC["groups"] if g["name"] == GROUP]
    (rule,) = group["rules"]
    return dict(rule)


def test_the_rule_is_provisioned_in_its_own_group_and_pages_at_once() -> None:
    rule = _rule()
    assert rule["uid"] == RULE_UID and rule["title"] == "Prompt canary failed"
    assert rule["labels"] == {"severity": "page", "sli": "prompt_canary"}
    assert rule["for"] == "0s" and rule["noDataState"] == "OK"
    by_ref = {q["refId"]: q for q in rule["data"]}
    (sql_query,) = [q for q in rule["data"] if q["datasourceUid"] != EXPR_UID]
    assert sql_query["model"]["rawSql"] == canary_alert_sql()
    assert by_ref[rule["condition"]]["model"]["expression"] == "$failed > 0"
    assert "llmwatch prompts rollback {{ $labels.prompt }}" in rule["annotations"]["runbook"]


def test_the_rule_links_to_the_verdict_history() -> None:
    link = verdict_panel_link()
    rule = _rule()
    assert link.uid == PROMPTS_UID
    assert (rule["dashboardUid"], rule["panelId"]) == (PROMPTS_UID, link.panel_id)
    from dashboards import prompts
    from dashboards.build import dashboard_json
    from dashboards.walk import iter_panels

    titles = {p.get("id"): p.get("title") for p in iter_panels(dashboard_json(prompts.build()))}
    assert titles[link.panel_id] == VERDICT_PANEL_TITLE


def _verdict(name: str, at_ms: int, verdict: str, look: int, action: str = "none") -> Json:
    return {
        "name": name, "label": "production", "revision": 2, "look": look, "evaluated_at": at_ms,
        "canary_version": "c" * 12, "baseline_version": "b" * 12, "canary_weight": 10,
        "canary_calls": 50 * look, "baseline_calls": 450 * look, "verdict": verdict,
        "score": 33.0 if verdict == "fail" else 100.0,
        "failed_metrics": ["latency_p95_ms"] if verdict == "fail" else [],
        "action": action, "alpha": 0.01,
    }  # fmt: skip


@pytest.fixture()
def client(ch_client: Any) -> Any:
    apply_migrations(ch_client, DATABASE)
    return ch_client


def test_only_a_recent_newest_fail_fires(client: Any, now_ms: int) -> None:
    old = now_ms - (WINDOW_MINUTES + 30) * MINUTE_MS
    rows = [
        _verdict("fails-now", now_ms - 5 * MINUTE_MS, "pass", 1),
        _verdict("fails-now", now_ms - MINUTE_MS, "fail", 2, "rolled_back"),
        _verdict("failed-long-ago", old, "fail", 1, "rolled_back"),
        _verdict("passes", now_ms - MINUTE_MS, "pass", 1),
        _verdict("failed-then-newer-pass", now_ms - 3 * MINUTE_MS, "fail", 1),
        _verdict("failed-then-newer-pass", now_ms - MINUTE_MS, "pass", 2),
    ]
    insert_rows(client, DATABASE, CANARY_VERDICTS_TABLE, rows, CANARY_VERDICT_FIELDS)
    result = client.query(canary_alert_sql())
    assert [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows] == [
        {
            "prompt": "fails-now",
            "label": "production",
            "canary": "c" * 12,
            "failed_metrics": "latency_p95_ms",
            "action": "rolled_back",
            "failed": 1.0,
        }
    ]
