"""The Traces dashboard on chdb: seeded chains give the seeded durations, costs and spans; every panel
renders; the overview links here in one click."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from dashboards import traces
from dashboards.build import build_all
from dashboards.macros import AllValue, QueryWindow, VariableValue, render_sql
from dashboards.panels import ALL_VALUE
from dashboards.runner import resolve_variables, run_sql
from dashboards.snapshot import render_snapshot
from dashboards.walk import queries, variables, visual_panels
from producers.events import LlmCallEvent, SpanKind
from sinks.migrate import apply_migrations
from sinks.rows import insert_rows
from streams.ingest.records import CALL_FIELDS
from streams.ingest.validate import CostFields, SourcePosition, to_call_row
from streams.storage import CALLS_TABLE
from tests.clock import Clock

DOC: Final = build_all()[traces.UID]
PANELS: Final = {p["title"]: p for p in visual_panels(DOC)}
QUERIES: Final = {q.owner: q for q in queries(DOC)}
RANGE: Final = timedelta(hours=2)

# trace -> (session, [(span, parent, kind, start offset ms, duration ms, cost)])
CHAINS: Final[dict[str, tuple[str, list[tuple[str, str | None, str, int, int, float | None]]]]] = {
    "t-slow": (
        "conv-1",
        [
            ("a", None, "agent", 0, 40_000, None),
            ("r", "a", "retrieval", 100, 1_500, None),
            ("l1", "a", "llm", 2_000, 9_000, 0.002),
            ("k", "a", "tool", 11_000, 20_000, None),
            ("l2", "a", "llm", 31_000, 8_000, 0.003),
        ],
    ),
    "t-costly": (
        "conv-1",
        [("a2", None, "agent", 0, 3_000, None), ("l3", "a2", "llm", 10, 2_900, 0.9)],
    ),
    "t-small": ("conv-2", [("l4", None, "llm", 0, 800, 0.0001)]),
}


@dataclass(frozen=True)
class Db:
    client: Client
    window: QueryWindow


def _rows(start: datetime) -> list[dict[str, Any]]:
    rows = []
    for trace, (session, spans) in CHAINS.items():
        for offset, (span, parent, kind, at, took, cost) in enumerate(spans):
            event = LlmCallEvent(
                event_id=f"{trace}-{span}",
                trace_id=trace,
                span_id=span,
                parent_span_id=parent,
                span_kind=SpanKind(kind),
                session_id=session,
                service="support-bot",
                request_model="gpt-4o-mini" if kind == "llm" else None,
                tool_name="lookup" if kind == "tool" else None,
                input_tokens=100 if kind == "llm" else 0,
                output_tokens=10 if kind == "llm" else 0,
                start_time=start + timedelta(milliseconds=at),
                end_time=start + timedelta(milliseconds=at + took),
            )
            rows.append(
                to_call_row(
                    event,
                    SourcePosition("t.events", 0, offset),
                    sent_at_ms=None,
                    cost=CostFields(cost_usd=cost, calculated_cost_usd=cost),
                )
            )
    return rows


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Db]:
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path_factory.mktemp('traces')}")
    try:
        apply_migrations(client, "llmwatch")
        end = Clock.read().ago(minutes=0)
        rows = _rows(end - timedelta(minutes=30))
        insert_rows(client, "llmwatch", CALLS_TABLE, rows, CALL_FIELDS)
        insert_rows(client, "llmwatch", CALLS_TABLE, rows, CALL_FIELDS)  # a replay counts once
        yield Db(client, QueryWindow(end - RANGE, end, 60))
    finally:
        client.close()


def _all(**chosen: list[str]) -> dict[str, VariableValue]:
    values: dict[str, VariableValue] = {v["name"]: AllValue(ALL_VALUE) for v in variables(DOC)}
    return {**values, **chosen}


def _panel(db: Db, title: str, **chosen: list[str]) -> list[dict[str, Any]]:
    result = run_sql(db.client, render_sql(QUERIES[title].sql, db.window, _all(**chosen)))
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def test_stats_count_each_trace_once(db: Db) -> None:
    assert _panel(db, "Traces") == [{"traces": 3}]
    (calls,) = _panel(db, "LLM calls per trace")
    assert calls["llm_calls_per_trace"] == pytest.approx(4 / 3)


def test_slowest_traces_carry_their_figures_and_link_to_the_spans(db: Db) -> None:
    rows = _panel(db, "Slowest traces")
    assert [r["trace_id"] for r in rows] == ["t-slow", "t-costly", "t-small"]
    slow = rows[0]
    assert (slow["trace_ms"], slow["steps"], slow["llm_calls"], slow["tool_calls"]) == (
        40_000,
        5,
        2,
        1,
    )
    assert (slow["retrieval_ms"], slow["tokens"], slow["session"]) == (1_500, 220, "conv-1")
    assert slow["cost_usd"] == pytest.approx(0.005)
    link = PANELS["Slowest traces"]["fieldConfig"]["overrides"][0]
    assert link["matcher"]["options"] == "trace_id"
    assert "var-trace_id=${__data.fields.trace_id}" in link["properties"][0]["value"][0]["url"]


def test_costliest_traces_and_sessions(db: Db) -> None:
    assert [r["trace_id"] for r in _panel(db, "Costliest traces")] == [
        "t-costly",
        "t-slow",
        "t-small",
    ]
    sessions = _panel(db, "Costliest sessions")
    assert [(r["session"], r["traces"]) for r in sessions] == [("conv-1", 2), ("conv-2", 1)]
    assert sessions[0]["session_cost_usd"] == pytest.approx(0.905)


def test_the_span_table_lists_one_trace_in_start_order(db: Db) -> None:
    rows = _panel(db, "Spans of the selected trace", trace_id=["t-slow"])
    assert [r["span_id"] for r in rows] == ["a", "r", "l1", "k", "l2"]
    assert [r["offset_ms"] for r in rows] == [0, 100, 2_000, 11_000, 31_000]
    assert rows[3]["step"] == "lookup" and rows[2]["parent_span_id"] == "a"


def test_the_trace_variable_offers_the_slowest_first(db: Db) -> None:
    resolved = resolve_variables(db.client, DOC, db.window)
    assert resolved["trace_id"] == ["t-slow"]


def test_percentile_series_are_in_time_order(db: Db) -> None:
    for title in ("Trace duration p50 / p95 / p99", "Cost per trace p50 / p95"):
        rows = _panel(db, title)
        assert rows and [r["time"] for r in rows] == sorted(r["time"] for r in rows)


def test_snapshot_renders_every_panel(db: Db, tmp_path: Path) -> None:
    result = render_snapshot(db.client, traces.UID, db.window.start, db.window.end, tmp_path)
    assert result.errors == {}
    assert len(result.pngs) == len(PANELS)


def test_the_overview_links_to_the_last_hour_of_traces() -> None:
    links = build_all()["llmwatch-overview"]["links"]
    assert any(link.get("url") == traces.OVERVIEW_LINK for link in links)
