"""The Drift dashboard: its structure, and every query on chdb over seeded drift rows.

One chdb folder for the module: migrations applied, ``seed_drift`` rows for the two hours before now
(plus flagged rows 20 h and 30 h before now, and a replayed record, which must count once). Each query
is expanded as Grafana would (``dashboards.macros``, the panel's interval) and its rows compared with
the seed's plan. Schema validation and "generated file is current" run for every dashboard in
test_build.py.
"""

from __future__ import annotations

import copy
import math
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from dashboards import drift, drift_sql, overview, prompts
from dashboards.build import build_all
from dashboards.lint import lint_dashboard, provisioned_datasources
from dashboards.macros import AllValue, QueryWindow, VariableValue, render_sql
from dashboards.panels import ALL_VALUE, WHEN_RED
from dashboards.query import DATABASE
from dashboards.runner import (
    QueryResult,
    panel_instances,
    panel_interval_s,
    parse_interval,
    resolve_variables,
    run_sql,
    variable_values,
)
from dashboards.snapshot import render_snapshot
from dashboards.walk import Query, iter_panels, queries, variables, visual_panels
from sinks.migrate import apply_migrations
from streams.drift.consumer import ALERT_RULE
from streams.drift.monitor import DriftConfig
from streams.storage import ALERTS_TABLE, DRIFT_TABLE, DRIFT_TOPICS_TABLE
from tests.clock import Clock
from tests.unit.dashboards.panel_checks import assert_fits_its_panel
from tests.unit.dashboards.seed_drift import (
    BASE_NOVEL_SHARE,
    NOVEL_SCOPE,
    NOVEL_SHARE,
    NOVEL_TEXTS,
    NOVEL_WINDOWS,
    REFERENCE_NOVEL_SHARE,
    SHAPE_SHIFT_WINDOWS,
    SHIFT_PSI,
    SHIFT_Q,
    TINY_Q,
    DriftSeed,
    seed_drift_tables,
)

DOC: Final = build_all()[drift.UID]
PANELS: Final = {p["title"]: p for p in visual_panels(DOC)}
QUERIES: Final = queries(DOC)
SQL: Final = {(q.kind, q.owner): q.sql for q in QUERIES}
RANGE: Final = timedelta(hours=2)
REPLACING: Final = (DRIFT_TABLE, DRIFT_TOPICS_TABLE, ALERTS_TABLE)
_TABLE_RE: Final = re.compile(rf"\b{DATABASE}\.(\w+)")
SCORE: Final = "Drift score per scope"
FLAGGED: Final = "Flagged scopes (last 24 h)"
COUNT: Final = "Scopes flagged (24 h)"
SHARES: Final = "Topic shares: $service ($direction)"
NOVEL: Final = "Novel share: $service ($direction)"
EXAMPLES: Final = "Examples of the top novel group: $service ($direction)"
SHAPE: Final = "Shape PSI: $service"
SHIFTED: Final = "support-bot/gpt-4o-mini/llm"
NOVEL_NAME: Final = "search-rag/llm/input"
EARLIER_NAME: Final = "code-agent/claude-sonnet-4-5/llm"
CHECKED: Final = {
    ("variable", "service"),
    ("variable", "direction"),
    ("annotation", "Drift alerts"),
    *(("panel", title) for title in (COUNT, FLAGGED, SCORE, SHARES, NOVEL, EXAMPLES, SHAPE)),
}


# --- structure ------------------------------------------------------------------------------------


def test_the_dashboard_is_registered_and_lints_clean() -> None:
    assert (DOC["uid"], DOC["title"]) == ("llmwatch-drift", "LLM drift")
    assert lint_dashboard(DOC, provisioned_datasources(), REPLACING) == []


@pytest.mark.parametrize("table", REPLACING)
def test_lint_reports_a_table_read_without_final(table: str) -> None:
    broken = copy.deepcopy(DOC)
    targets = [t for p in visual_panels(broken) for t in p.get("targets", [])]
    targets += [a["target"] for a in broken["annotations"]["list"]]
    for target in targets:
        target["rawSql"] = target["rawSql"].replace(f"{table} FINAL", table)
    problems = lint_dashboard(broken, provisioned_datasources(), REPLACING)
    assert any(f"{DATABASE}.{table} must be read with FINAL" in p for p in problems), problems


def test_queries_read_the_drift_tables_and_the_alerts_only() -> None:
    read = {table for q in QUERIES for table in _TABLE_RE.findall(q.sql)}
    assert read == set(REPLACING)


def test_every_query_of_the_dashboard_is_checked_here() -> None:
    assert set(SQL) == CHECKED


def test_variables_service_with_all_then_a_single_direction_defaulting_to_input() -> None:
    service, direction = variables(DOC)
    assert (service["name"], service["multi"], service["includeAll"], service["allValue"]) == (
        "service",
        True,
        True,
        ALL_VALUE,
    )
    assert direction["name"] == "direction" and not direction.get("multi")
    assert not direction.get("includeAll")
    assert direction["current"]["value"] == drift.DEFAULT_DIRECTION == "input"


def _under(row_title: str) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = DOC["panels"]
    (head,) = [p for p in panels if p["type"] == "row" and p["title"] == row_title]
    after = panels[panels.index(head) + 1 :]
    end = next((i for i, p in enumerate(after) if p["type"] == "row"), len(after))
    return after[:end]


def test_layout_now_then_scores_then_a_row_repeated_per_service() -> None:
    rows = [(p["title"], p.get("repeat")) for p in iter_panels(DOC) if p["type"] == "row"]
    assert rows == [("Now", None), ("Drift score", None), (drift.SERVICE_ROW, "service")]
    assert [p["title"] for p in _under("Now")] == [COUNT, FLAGGED, WHEN_RED]
    assert [p["title"] for p in _under(drift.SERVICE_ROW)] == [SHARES, NOVEL, EXAMPLES, SHAPE]


def test_the_when_red_panel_says_what_to_do() -> None:
    panel = PANELS[WHEN_RED]
    assert panel["type"] == "text" and panel["options"]["mode"] == "markdown"
    content = panel["options"]["content"]
    assert content == drift.runbook_markdown()
    for needed in (
        "`llmwatch eval run`",
        "`llmwatch drift baseline set`",
        f"rule `{ALERT_RULE}` in `{ALERTS_TABLE}`",
        "silent provider model update",
        "retrieval index change",
        "Examples of the top novel group",
        "prompt versions deployed in the window",
        f"(/d/{prompts.UID}?${{__url_time_range}})",
        f"(/d/{overview.UID}?${{__url_time_range}})",
    ):
        assert needed in content, needed


def _steps(title: str) -> list[tuple[float | None, str]]:
    defaults = PANELS[title]["fieldConfig"]["defaults"]
    assert defaults["custom"]["thresholdsStyle"]["mode"] == "line"
    return [(s["value"], s["color"]) for s in defaults["thresholds"]["steps"]]


def test_threshold_lines_at_the_fdr_score_and_the_psi_levels() -> None:
    fdr = DriftConfig().fdr
    assert _steps(SCORE) == [(None, "green"), (pytest.approx(-math.log10(fdr)), "red")]
    assert pytest.approx(2.0) == drift_sql.SCORE_RED
    assert _steps(SHAPE) == [(None, "green"), (0.1, "orange"), (0.25, "red")]


@pytest.mark.parametrize("title", [SCORE, SHARES, NOVEL, SHAPE])
def test_time_series_step_by_whole_drift_windows(title: str) -> None:
    panel = PANELS[title]
    assert parse_interval(panel["interval"]) * 1000 == DriftConfig().window_ms
    assert panel_interval_s(panel, RANGE.total_seconds()) * 1000 == DriftConfig().window_ms


def test_topic_shares_stack_and_novel_is_red() -> None:
    panel = PANELS[SHARES]
    custom = panel["fieldConfig"]["defaults"]["custom"]
    assert custom["stacking"]["mode"] == "normal"
    assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit"
    (override,) = panel["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byRegexp", "options": ".*novel.*"}
    assert override["properties"][0]["value"]["fixedColor"] == "red"


# --- on chdb ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Db:
    client: Client
    window: QueryWindow
    seed: DriftSeed


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Db]:
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path_factory.mktemp('drift')}")
    try:
        apply_migrations(client, DATABASE)
        end = Clock.read().ago()
        seed = seed_drift_tables(client, DATABASE, end - RANGE, end)
        assert min(seed.counts.values()) > 0, seed.counts
        yield Db(client, QueryWindow(end - RANGE, end, 60), seed)
    finally:
        client.close()


def _all() -> dict[str, VariableValue]:
    return {"service": AllValue(ALL_VALUE), "direction": [drift.DEFAULT_DIRECTION]}


def _run(db: Db, query: Query, values: dict[str, VariableValue]) -> QueryResult:
    panel = PANELS.get(query.owner) if query.kind == "panel" else None
    interval = panel_interval_s(panel, RANGE.total_seconds()) if panel is not None else 60
    window = QueryWindow(db.window.start, db.window.end, interval)
    return run_sql(db.client, render_sql(query.sql, window, values))


def _rows(db: Db, kind: str, owner: str, **chosen: VariableValue) -> list[dict[str, Any]]:
    (query,) = [q for q in QUERIES if (q.kind, q.owner) == (kind, owner)]
    result = _run(db, query, {**_all(), **chosen})
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def _panel(db: Db, title: str, **chosen: VariableValue) -> list[dict[str, Any]]:
    return _rows(db, "panel", title, **chosen)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: f"{q.kind}/{q.owner}")
def test_query_returns_what_its_panel_needs(db: Db, query: Query) -> None:
    assert_fits_its_panel(query, _run(db, query, resolve_variables(db.client, DOC, db.window)))


def test_variables_list_the_tested_services_and_the_directions(db: Db) -> None:
    service, direction = variables(DOC)
    assert variable_values(db.client, service, db.window, {}) == ["search-rag", "support-bot"]
    known: dict[str, VariableValue] = {"service": ["support-bot"]}
    assert variable_values(db.client, direction, db.window, known) == ["input"]
    assert resolve_variables(db.client, DOC, db.window)["direction"] == ["input"]


def test_the_service_row_repeats_once_per_service(db: Db) -> None:
    resolved = resolve_variables(db.client, DOC, db.window)
    titles = [i.title for i in panel_instances(db.client, DOC, db.window, resolved)]
    assert titles[:4] == [COUNT, FLAGGED, WHEN_RED, SCORE]
    assert titles[4:] == [
        title.replace("$service", service).replace("$direction", "input")
        for service in ("search-rag", "support-bot")
        for title in (SHARES, NOVEL, EXAMPLES, SHAPE)
    ]


def _scores(db: Db, **chosen: VariableValue) -> dict[str, dict[datetime, float]]:
    found: dict[str, dict[datetime, float]] = defaultdict(dict)
    for row in _panel(db, SCORE, **chosen):
        found[row["scope"]][_utc(row["time"])] = row["drift_score"]
    return dict(found)


def test_drift_score_is_minus_log10_of_the_smallest_q_capped(db: Db) -> None:
    scores = _scores(db)
    windows = [_at(w) for w in db.seed.windows]
    assert set(scores) == {
        SHIFTED,
        "search-rag/gpt-4o/llm",
        NOVEL_NAME,
        "search-rag/llm/output",
        "support-bot/llm/input",
    }
    shifted = [scores[SHIFTED][w] for w in windows]
    shift = -math.log10(SHIFT_Q)
    assert shifted[-SHAPE_SHIFT_WINDOWS:] == pytest.approx([shift] * 3 + [drift_sql.SCORE_CAP])
    assert -math.log10(TINY_Q) > drift_sql.SCORE_CAP  # the newest window's score is the cap
    assert shifted[-SHAPE_SHIFT_WINDOWS - 1] == pytest.approx(-math.log10(0.02))  # a near miss
    assert shifted[-SHAPE_SHIFT_WINDOWS - 1] < drift_sql.SCORE_RED
    novel = [scores[NOVEL_NAME][w] for w in windows]
    assert novel[-NOVEL_WINDOWS:] == pytest.approx([9.0] * NOVEL_WINDOWS)  # the novel test's q 1e-9
    quiet = [s for scope, by_time in scores.items() for t, s in by_time.items() if t < windows[-5]]
    assert max(quiet) < drift_sql.SCORE_RED
    assert set(_scores(db, service=["support-bot"])) == {SHIFTED, "support-bot/llm/input"}


def test_flagged_scopes_lists_the_last_24_hours_newest_first(db: Db) -> None:
    rows = _panel(db, FLAGGED)
    last = _at(db.seed.windows[-1])
    found = [
        (r["scope"], r["feature"], r["test"], r["flagged_windows"], r["state"], _utc(r["window_start"]))
        for r in rows
    ]  # fmt: skip
    assert found == [
        (SHIFTED, "output_tokens", "chi2", SHAPE_SHIFT_WINDOWS, "drifting", last),
        (NOVEL_NAME, "novel", "binomial", NOVEL_WINDOWS, "drifting", last),
        (NOVEL_NAME, "topics", "chi2", NOVEL_WINDOWS, "drifting", last),
        (NOVEL_NAME, "embedding", "mmd", NOVEL_WINDOWS, "drifting", last),
        (EARLIER_NAME, "duration_ms", "chi2", 1, "recovered", found[-1][-1]),
    ]
    assert timedelta(hours=19) < db.window.end - found[-1][-1] <= timedelta(hours=20, minutes=10)
    first, novel = rows[0], rows[1]
    assert (first["effect"], first["q_value"]) == (pytest.approx(SHIFT_PSI), pytest.approx(TINY_Q))
    assert first["top_shift"] == "b36: 9% -> 27%"
    assert novel["effect"] == pytest.approx(NOVEL_SHARE - REFERENCE_NOVEL_SHARE)
    assert [r["scope"] for r in _panel(db, FLAGGED, service=["support-bot"])] == [SHIFTED]


@pytest.mark.parametrize(
    ("service", "count"),
    [(None, 3), (["search-rag"], 1), (["code-agent"], 1), (["nobody"], 0)],
)
def test_the_count_of_flagged_scopes(db: Db, service: list[str] | None, count: int) -> None:
    chosen: dict[str, VariableValue] = {} if service is None else {"service": service}
    ((value,),) = [tuple(r.values()) for r in _panel(db, COUNT, **chosen)]
    assert value == count


def _shares(db: Db, service: str, direction: str) -> dict[datetime, dict[str, float]]:
    found: dict[datetime, dict[str, float]] = defaultdict(dict)
    for row in _panel(db, SHARES, service=[service], direction=[direction]):
        found[_utc(row["time"])][row["topic_name"]] = row["share"]
    return dict(found)


@pytest.mark.parametrize("service", ["search-rag", "support-bot"])
@pytest.mark.parametrize("direction", ["input", "output"])
def test_topic_shares_sum_to_one_per_window(db: Db, service: str, direction: str) -> None:
    shares = _shares(db, service, direction)
    if (service, direction) == ("support-bot", "output"):
        assert shares == {}  # no such text scope
        return
    assert sorted(shares) == [_at(w) for w in db.seed.windows]
    for by_topic in shares.values():
        assert set(by_topic) == {"novel", "topic 0", "topic 1", "topic 2", "topic 3"}
        assert sum(by_topic.values()) == pytest.approx(1.0)


def test_topic_shares_show_the_novel_topic_growing(db: Db) -> None:
    service, _span, direction = NOVEL_SCOPE
    shares = _shares(db, service, direction)
    novel = [shares[_at(w)]["novel"] for w in db.seed.windows]
    assert novel == pytest.approx(
        [BASE_NOVEL_SHARE] * (len(novel) - NOVEL_WINDOWS) + [NOVEL_SHARE] * NOVEL_WINDOWS
    )
    output = _shares(db, service, "output")
    assert {round(by["topic 0"], 2) for by in output.values()} == {0.48, 0.52}


def test_topic_shares_of_all_services_are_normalized_too(db: Db) -> None:
    rows = _panel(db, SHARES)
    by_time: dict[datetime, float] = defaultdict(float)
    for row in rows:
        by_time[_utc(row["time"])] += row["share"]
    assert len(by_time) == len(db.seed.windows)
    assert list(by_time.values()) == pytest.approx([1.0] * len(by_time))


def test_novel_share_beside_the_reference(db: Db) -> None:
    service, _span, direction = NOVEL_SCOPE
    rows = _panel(db, NOVEL, service=[service], direction=[direction])
    assert [_utc(r["time"]) for r in rows] == [_at(w) for w in db.seed.windows]
    novel = [r["novel_share"] for r in rows]
    assert novel[-NOVEL_WINDOWS:] == pytest.approx([NOVEL_SHARE] * NOVEL_WINDOWS)
    assert novel[:-NOVEL_WINDOWS] == pytest.approx([BASE_NOVEL_SHARE] * (len(rows) - NOVEL_WINDOWS))
    assert [r[drift.REFERENCE_SERIES] for r in rows] == pytest.approx(
        [REFERENCE_NOVEL_SHARE] * len(rows)
    )
    quiet = _panel(db, NOVEL, service=["support-bot"], direction=["input"])
    assert max(r["novel_share"] for r in quiet) == pytest.approx(BASE_NOVEL_SHARE)


def test_examples_of_the_newest_novel_windows_one_per_row(db: Db) -> None:
    service, _span, direction = NOVEL_SCOPE
    rows = _panel(db, EXAMPLES, service=[service], direction=[direction])
    newest = [_at(w) for w in reversed(db.seed.windows[-drift_sql.EXAMPLE_WINDOWS :])]
    assert [(_utc(r["window_start"]), r["rank"], r["example"]) for r in rows] == [
        (window, rank, text) for window in newest for rank, text in enumerate(NOVEL_TEXTS, start=1)
    ]
    assert [r["novel_share"] for r in rows] == pytest.approx([NOVEL_SHARE] * len(rows))


def test_examples_skip_windows_without_any(db: Db) -> None:
    rows = _panel(db, EXAMPLES, service=["support-bot"], direction=["input"])
    with_ids = [_at(w) for i, w in enumerate(db.seed.windows) if i % 2 == 0]
    assert sorted({_utc(r["window_start"]) for r in rows}) == with_ids[-drift_sql.EXAMPLE_WINDOWS :]
    assert len(rows) == 2 * drift_sql.EXAMPLE_WINDOWS
    assert all(re.fullmatch(r"[0-9a-f]{32}", r["example"]) for r in rows)


def test_shape_psi_per_feature_and_model(db: Db) -> None:
    rows = _panel(db, SHAPE, service=["support-bot"])
    series: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        series[row["series"]].append(row["psi"])
    assert set(series) == {f"{feature} (gpt-4o-mini, llm)" for feature in drift_sql.SHAPE_FEATURES}
    shifted = series["output_tokens (gpt-4o-mini, llm)"]
    assert len(shifted) == len(db.seed.windows)
    assert shifted[-SHAPE_SHIFT_WINDOWS:] == pytest.approx([SHIFT_PSI] * SHAPE_SHIFT_WINDOWS)
    assert shifted[-SHAPE_SHIFT_WINDOWS:][0] > drift_sql.MAJOR_PSI
    others = [v for name, values in series.items() if name != "output_tokens (gpt-4o-mini, llm)"
              for v in values]  # fmt: skip
    assert max(others) < drift_sql.MODERATE_PSI


def test_drift_alerts_are_annotated(db: Db) -> None:
    rows = _rows(db, "annotation", "Drift alerts")
    in_range = [r for r in db.seed.flagged() if r["window_start"] in db.seed.windows]
    assert len(rows) == len(in_range) == SHAPE_SHIFT_WINDOWS + 3 * NOVEL_WINDOWS
    assert {r["title"] for r in rows} == {f"drift:{SHIFTED}", f"drift:{NOVEL_NAME}"}
    assert all(r["tags"][0] == ALERT_RULE for r in rows)
    assert any("output_tokens" in r["text"] for r in rows)
    narrowed = _rows(db, "annotation", "Drift alerts", service=["support-bot"])
    assert len(narrowed) == SHAPE_SHIFT_WINDOWS


def test_lint_is_clean_with_every_replacing_table(db: Db) -> None:
    replacing = {
        name
        for (name,) in db.client.query(
            f"SELECT name FROM system.tables WHERE database = '{DATABASE}' "
            "AND engine LIKE 'Replacing%'"
        ).result_rows
    }
    assert set(REPLACING) <= replacing
    assert lint_dashboard(DOC, provisioned_datasources(), replacing) == []


def test_snapshot_renders_every_panel(db: Db, tmp_path: Path) -> None:
    result = render_snapshot(db.client, drift.UID, db.window.start, db.window.end, tmp_path)
    assert result.errors == {}
    assert len(result.pngs) == 4 + 2 * 4  # the service row twice
