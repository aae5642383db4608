"""``llmwatch trace``: a trace's spans read back from chdb as a tree, replays shown once, orphans kept."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
from rich.console import Console
from typer.testing import CliRunner

from llmwatch.cli import app
from llmwatch.trace_view import fetch_trace, render_trace, trace_summary
from producers.events import LlmCallEvent, SpanKind
from sinks.migrate import apply_migrations
from sinks.rows import insert_rows
from streams.ingest.records import CALL_FIELDS
from streams.ingest.validate import CostFields, SourcePosition, to_call_row
from streams.storage import CALLS_TABLE
from tests.clock import Clock

DB = "llmwatch"
TRACE = "trace-agent-1"


def _rows(clock: Clock) -> list[dict[str, Any]]:
    start = clock.ago(minutes=5)
    # (span, parent, kind, extra fields, offset ms, duration ms, cost)
    spans: list[tuple[str, str | None, str, dict[str, Any], int, int, float | None]] = [
        ("s-agent", None, "agent", {"agent_name": "planner"}, 0, 900, None),
        ("s-chain", "s-agent", "chain", {"operation_name": "workflow"}, 10, 800, None),
        ("s-tool", "s-chain", "tool", {"tool_name": "search_orders"}, 20, 120, None),
        (
            "s-llm",
            "s-chain",
            "llm",
            {"request_model": "gpt-4o-mini", "input_tokens": 120, "output_tokens": 30},
            200,
            500,
            0.0004,
        ),
        (
            "s-lost",
            "s-missing",
            "llm",
            {"request_model": "gpt-4o-mini", "status": "error", "error_type": "RateLimitError"},
            300,
            50,
            None,
        ),
    ]
    rows = []
    for offset, (span, parent, kind, extra, at, took, cost) in enumerate(spans):
        event = LlmCallEvent(
            event_id=f"e-{span}",
            trace_id=TRACE,
            span_id=span,
            parent_span_id=parent,
            span_kind=SpanKind(kind),
            service="support-bot",
            start_time=start + timedelta(milliseconds=at),
            end_time=start + timedelta(milliseconds=at + took),
            **extra,
        )
        rows.append(
            to_call_row(
                event,
                SourcePosition("t.events", 0, offset),
                sent_at_ms=None,
                cost=CostFields(cost_usd=cost, calculated_cost_usd=cost),
            )
        )
    other = LlmCallEvent(
        event_id="e-other", trace_id="another", service="x", start_time=start, end_time=start
    )
    rows.append(to_call_row(other, SourcePosition("t.events", 0, 9), sent_at_ms=None))
    return rows


def _load(dsn: str, clock: Clock) -> None:
    client = clickhouse_connect.get_client(dsn=dsn)
    try:
        apply_migrations(client, DB)
        rows = _rows(clock)
        insert_rows(client, DB, CALLS_TABLE, rows, CALL_FIELDS)
        insert_rows(client, DB, CALLS_TABLE, rows, CALL_FIELDS)  # a replay: shown once
    finally:
        client.close()


def test_a_trace_reads_back_as_a_tree_with_totals(chdb_dsn: str, clock: Clock) -> None:
    _load(chdb_dsn, clock)
    client = clickhouse_connect.get_client(dsn=chdb_dsn)
    try:
        spans = fetch_trace(client, DB, TRACE)
        assert fetch_trace(client, DB, "no-such-trace") == []
    finally:
        client.close()
    assert [s.span_id for s in spans] == ["s-agent", "s-chain", "s-tool", "s-llm", "s-lost"]
    total = trace_summary(spans)
    assert (total.duration_ms, total.steps, total.llm_calls, total.errors) == (900, 5, 2, 1)
    assert (total.input_tokens, total.output_tokens, total.unpriced) == (120, 30, 1)
    assert abs(total.cost_usd - 0.0004) < 1e-12

    console = Console(width=200, record=True, color_system=None)
    console.print(render_trace(TRACE, spans))
    lines = console.export_text().splitlines()
    depth = {
        name: next(i for i, ch in enumerate(line) if ch.isalpha())
        for line in lines[1:]
        for name in ("planner", "workflow", "search_orders", "gpt-4o-mini")
        if name in line and "orphan" not in line
    }
    assert depth["planner"] < depth["workflow"] < depth["search_orders"] == depth["gpt-4o-mini"]
    (orphan,) = [line for line in lines if "(orphan)" in line]
    assert "RateLimitError" in orphan
    assert "+200 ms" in next(
        line for line in lines if "gpt-4o-mini" in line and "orphan" not in line
    )


def test_the_cli_prints_the_tree_and_fails_for_an_unknown_trace(
    chdb_dsn: str, clock: Clock, tmp_path: Path
) -> None:
    _load(chdb_dsn, clock)
    runner = CliRunner()
    shown = runner.invoke(app, ["trace", TRACE, "--dsn", chdb_dsn, "--data-dir", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert "5 steps" in shown.output and "search_orders" in shown.output
    missing = runner.invoke(app, ["trace", "nope", "--dsn", chdb_dsn, "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1
