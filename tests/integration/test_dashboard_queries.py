"""Every dashboard query runs on chdb against the real migrations and realistic data, and snapshots render.

One chdb folder per module: the migrations are applied and ``tests.unit.dashboards.seed`` fills every
table (simulated calls through the worker's ingest, cost and rollup code; dead letters; pipeline
metrics; top users; SLO status and alerts from the real burn-rate evaluator) over the two hours before
now. Each panel, variable and annotation query is then expanded (variables All, macros for those two
hours) and run, and its result must have the shape its panel needs and hold data.
"""

from __future__ import annotations

import html
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from dashboards.build import build_all
from dashboards.lint import lint_dashboards, provisioned_datasources
from dashboards.macros import QueryWindow, VariableValue, render_sql
from dashboards.render import is_numeric_type, is_time_type
from dashboards.runner import (
    QueryResult,
    panel_interval_s,
    resolve_variables,
    run_sql,
    variable_values,
)
from dashboards.snapshot import render_snapshot
from dashboards.walk import Query, queries, variables, visual_panels
from tests.unit.dashboards.seed import Seeded, seed_database

DASHBOARDS: Final = build_all()
PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
MIN_PNG_BYTES: Final = 1_000


@dataclass(frozen=True)
class Case:
    uid: str
    query: Query
    panel: dict[str, Any] | None


def _cases() -> list[Case]:
    cases = []
    for uid, doc in sorted(DASHBOARDS.items()):
        panels = {p["title"]: p for p in visual_panels(doc)}
        for query in queries(doc):
            cases.append(
                Case(uid, query, panels.get(query.owner) if query.kind == "panel" else None)
            )
    return cases


CASES: Final = _cases()
IDS: Final = [f"{c.uid.removeprefix('llmwatch-')}/{c.query.kind}/{c.query.owner}" for c in CASES]


@dataclass(frozen=True)
class Db:
    client: Client
    seeded: Seeded
    window: QueryWindow


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Db]:
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path_factory.mktemp('dashboards')}")
    try:
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        seeded = seed_database(client, end)
        yield Db(client, seeded, QueryWindow(seeded.start, seeded.end, 60))
    finally:
        client.close()


def _run(db: Db, case: Case, values: dict[str, VariableValue]) -> QueryResult:
    span_s = (db.window.end - db.window.start).total_seconds()
    interval = panel_interval_s(case.panel, span_s) if case.panel is not None else 60
    window = QueryWindow(db.window.start, db.window.end, interval)
    return run_sql(db.client, render_sql(case.query.sql, window, values))


def _numeric_values(result: QueryResult) -> list[Any]:
    columns = [i for i, t in enumerate(result.types) if is_numeric_type(t)]
    return [row[i] for row in result.rows for i in columns if row[i] is not None]


def _check_shape(case: Case, result: QueryResult) -> None:
    kind = case.query.panel_type if case.query.kind == "panel" else case.query.kind
    assert result.rows, f"{case.query.owner}: no rows"
    if kind == "timeseries":
        assert is_time_type(result.types[0]), f"first column must be the time, got {result.types}"
        assert result.rows == sorted(result.rows, key=lambda r: r[0]), "rows must be in time order"
        assert _numeric_values(result), f"no numeric value in {result.columns}"
    elif kind in ("stat", "gauge"):
        assert len(result.rows) == 1 and _numeric_values(result), result.rows
    elif kind == "annotation":
        assert {"time", "timeEnd", "title", "text", "tags"} <= set(result.columns)
        assert is_time_type(result.types[result.columns.index("time")])
    elif kind == "variable":
        assert all(isinstance(row[0], str) and row[0] for row in result.rows)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_query_returns_what_its_panel_needs(db: Db, case: Case) -> None:
    values = resolve_variables(db.client, DASHBOARDS[case.uid], db.window)
    _check_shape(case, _run(db, case, values))


def _one_value_each(db: Db, uid: str) -> dict[str, VariableValue]:
    """Every variable set to one real value (its first option), as a user narrowing the view."""
    chosen: dict[str, VariableValue] = {}
    for variable in variables(DASHBOARDS[uid]):
        chosen[variable["name"]] = variable_values(db.client, variable, db.window, chosen)[:1]
    return chosen


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.query.kind == "panel"], ids=lambda c: c.query.owner
)
def test_query_runs_with_every_filter_set_to_one_value(db: Db, case: Case) -> None:
    values = _one_value_each(db, case.uid)
    assert all(values.values()), values
    result = _run(db, case, values)
    assert result.columns


def test_replacing_merge_trees_are_read_with_final(db: Db) -> None:
    replacing = {
        name
        for (name,) in db.client.query(
            "SELECT name FROM system.tables WHERE database = 'llmwatch' AND engine LIKE 'Replacing%'"
        ).result_rows
    }
    assert {"llm_calls", "llm_rollup_1m", "llm_alerts", "llm_slo_status"} <= replacing
    assert lint_dashboards(DASHBOARDS, provisioned_datasources(), replacing) == []


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) >= MIN_PNG_BYTES, path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_snapshot_renders_every_panel(db: Db, uid: str, tmp_path: Path) -> None:
    result = render_snapshot(db.client, uid, db.seeded.start, db.seeded.end, tmp_path)
    assert result.errors == {}
    assert len(result.pngs) >= len(visual_panels(DASHBOARDS[uid]))
    page = result.html.read_text(encoding="utf-8")
    for png in result.pngs:
        width, height = _png_size(png)
        assert width >= 500 and height >= 100
        assert f'src="{png.name}"' in page
    assert all(html.escape(p["description"]) in page for p in visual_panels(DASHBOARDS[uid]))


def test_snapshot_of_an_unknown_dashboard_raises(db: Db, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dashboard uid 'nope'"):
        render_snapshot(db.client, "nope", db.seeded.start, db.seeded.end, tmp_path)


def test_snapshot_shows_a_failing_panel_instead_of_stopping(db: Db, tmp_path: Path) -> None:
    result = render_snapshot(
        db.client,
        "llmwatch-pipeline",
        db.seeded.start,
        db.seeded.end,
        tmp_path,
        database="missing_db",
    )
    assert len(result.errors) == len(result.pngs) > 0
    assert "Query failed" in result.html.read_text(encoding="utf-8")
