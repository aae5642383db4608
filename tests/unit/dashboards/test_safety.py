"""The Safety dashboard on chdb: every query runs on seeded guardrail rows and shows the seeded numbers,
filters narrow, no text is ever shown, and the guardrail SLO's alert rules run on the same tables.

One chdb folder for the module: migrations applied, ``seed_guardrails`` rows for the two hours before
now (plus rows before the range and a replayed source record, which must not count). Schema validation,
lint and "generated file is current" run for every dashboard in test_build.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any, Final

import clickhouse_connect
import pytest
import yaml
from clickhouse_connect.driver.client import Client

from dashboards import safety
from dashboards.alert_rules import DEFAULT_SLO_PATH, EXPR_UID, RULES_PATH
from dashboards.build import build_all
from dashboards.lint import lint_dashboards, provisioned_datasources
from dashboards.macros import AllValue, QueryWindow, VariableValue, render_sql
from dashboards.panels import ALL_VALUE
from dashboards.render import is_numeric_type
from dashboards.runner import (
    QueryResult,
    panel_interval_s,
    resolve_variables,
    run_sql,
    variable_values,
)
from dashboards.slo_sql import burn_rate_sql
from dashboards.snapshot import render_snapshot
from dashboards.walk import Query, queries, variables, visual_panels
from sinks.migrate import apply_migrations
from streams.slo.config import MINUTE_MS, GuardrailSli, Slo, load_slo_file
from tests.clock import Clock, to_ms
from tests.unit.dashboards.panel_checks import assert_fits_its_panel
from tests.unit.dashboards.seed_guardrails import (
    INPUT_TEXT,
    OUTPUT_TEXT,
    Expected,
    SeededText,
    expected,
    seed_guardrail_tables,
    seeded_texts,
)

DOC: Final = build_all()[safety.UID]
PANELS: Final = {p["title"]: p for p in visual_panels(DOC)}
QUERIES: Final = queries(DOC)
PANEL_QUERIES: Final = [q for q in QUERIES if q.kind == "panel"]
RANGE: Final = timedelta(hours=2)
HIGH: Final = {"high", "critical"}
GUARDRAIL_SLOS: Final = [
    s for s in load_slo_file(DEFAULT_SLO_PATH).slos if s.sli.type == "guardrail"
]


@dataclass(frozen=True)
class Db:
    client: Client
    window: QueryWindow
    texts: list[SeededText]
    totals: Expected
    replacing: set[str]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Db]:
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path_factory.mktemp('safety')}")
    try:
        apply_migrations(client, "llmwatch")
        end = Clock.read().ago(minutes=0)
        start = end - RANGE
        counts = seed_guardrail_tables(client, "llmwatch", start, end)
        assert min(counts.values()) > 0, counts
        texts = seeded_texts(start, end)
        replacing = {
            name
            for (name,) in client.query(
                "SELECT name FROM system.tables WHERE database = 'llmwatch' "
                "AND engine LIKE 'Replacing%'"
            ).result_rows
        }
        yield Db(client, QueryWindow(start, end, 60), texts, expected(texts, start, end), replacing)
    finally:
        client.close()


def _all() -> dict[str, VariableValue]:
    return {v["name"]: AllValue(ALL_VALUE) for v in variables(DOC)}


def _run(db: Db, query: Query, values: dict[str, VariableValue] | None = None) -> QueryResult:
    panel = PANELS.get(query.owner) if query.kind == "panel" else None
    span_s = (db.window.end - db.window.start).total_seconds()
    interval = panel_interval_s(panel, span_s) if panel is not None else 60
    window = QueryWindow(db.window.start, db.window.end, interval)
    return run_sql(db.client, render_sql(query.sql, window, _all() if values is None else values))


def _panel(db: Db, title: str, **chosen: list[str]) -> list[dict[str, Any]]:
    (query,) = [q for q in PANEL_QUERIES if q.owner == title]
    result = _run(db, query, {**_all(), **chosen})
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def _stat(db: Db, title: str, **chosen: list[str]) -> Any:
    (row,) = _panel(db, title, **chosen)
    (value,) = row.values()
    return value


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: f"{q.kind}/{q.owner}")
def test_query_returns_what_its_panel_needs(db: Db, query: Query) -> None:
    assert_fits_its_panel(query, _run(db, query, resolve_variables(db.client, DOC, db.window)))


@pytest.mark.parametrize("query", PANEL_QUERIES, ids=lambda q: q.owner)
def test_query_has_rows_with_every_filter_set_to_its_first_value(db: Db, query: Query) -> None:
    chosen: dict[str, VariableValue] = {}
    for variable in variables(DOC):
        chosen[variable["name"]] = variable_values(db.client, variable, db.window, chosen)[:1]
    assert chosen == {
        "environment": ["production"],
        "service": ["code-agent"],
        "model": ["claude-sonnet-4"],
        "prompt_version": ["v3"],
    }
    assert _run(db, query, chosen).rows


def test_variables_are_the_other_dashboards_filters_minus_provider() -> None:
    found = [(v["name"], v["multi"], v["includeAll"], v["allValue"]) for v in variables(DOC)]
    assert found == [(name, True, True, ALL_VALUE) for name in safety.FILTER_NAMES]


@pytest.mark.parametrize(
    ("title", "value"),
    [
        ("Texts analysed", 1_150),
        ("Flagged", 168 / 1_150),
        ("Injection attempts", 33 + 8),
        ("PII and secrets found", 138),
    ],
)
def test_stats_show_the_seeded_totals(db: Db, title: str, value: float) -> None:
    """The replayed source records and the rows before the range do not count."""
    assert _stat(db, title) == pytest.approx(value)


def test_the_seed_plan_gives_the_totals_the_stats_assert(db: Db) -> None:
    totals = db.totals
    assert (totals.texts, totals.flagged_texts, sum(totals.pii_entities.values())) == (
        1_150,
        168,
        138,
    )
    assert totals.flagged["prompt_injection"] + totals.flagged["jailbreak"] == 41


@pytest.mark.parametrize(
    ("filters", "title", "value"),
    [
        ({"service": ["search-rag"]}, "Texts analysed", 300),
        ({"environment": ["staging"]}, "Injection attempts", 10),
        ({"prompt_version": ["v8"]}, "Flagged", 48 / 250),
        ({"model": ["claude-sonnet-4"]}, "PII and secrets found", 28),
        ({"service": ["nobody"]}, "Texts analysed", 0),
    ],
)
def test_filters_narrow_the_stats(
    db: Db, filters: dict[str, list[str]], title: str, value: float
) -> None:
    assert _stat(db, title, **filters) == pytest.approx(value)


def _per_service(texts: list[SeededText], window: QueryWindow) -> dict[str, dict[str, Any]]:
    rows: dict[str, Counter[str]] = {}
    for text in texts:
        if window.start <= text.start_time < window.end:
            counts = rows.setdefault(text.cohort.service, Counter())
            counts.update(["texts_analysed", *text.categories])
            counts["texts_flagged"] += bool(text.categories)
    return {
        service: {c: counts[c] for c in ("texts_analysed", "texts_flagged", *safety.CATEGORIES)}
        for service, counts in rows.items()
    }


def test_per_service_table_counts_each_category(db: Db) -> None:
    rows = _panel(db, "Flagged texts per service and category")
    assert [(r["service"], r["texts_analysed"], r["texts_flagged"]) for r in rows] == [
        ("support-bot", 650, 108),
        ("search-rag", 300, 42),
        ("code-agent", 200, 18),
    ]
    want = _per_service(db.texts, db.window)
    assert {r["service"]: {k: r[k] for k in want[r["service"]]} for r in rows} == want
    by_service = {r["service"]: r for r in rows}
    assert by_service["code-agent"]["secret"] == 8 and by_service["support-bot"]["data_leak"] == 30
    assert by_service["search-rag"]["flagged_rate"] == pytest.approx(42 / 300)
    assert by_service["code-agent"]["max_injection_score"] == pytest.approx(0.95)


def test_top_pii_types_sum_the_entities(db: Db) -> None:
    rows = _panel(db, "Top PII and secret types")
    found = [(r["type"], r["found"]) for r in rows]
    assert found == [
        ("EMAIL", 70),
        ("PERSON", 30),
        ("PHONE", 20),
        ("CREDIT_CARD", 10),
        ("API_KEY", 8),
    ]
    assert dict(found) == db.totals.pii_entities
    assert {r["type"]: r["services"] for r in rows}["EMAIL"] == "code-agent, support-bot"


def test_recent_findings_are_high_severity_newest_first_and_never_text(db: Db) -> None:
    rows = _panel(db, "Recent high-severity findings")
    assert list(rows[0]) == [
        "time", "service", "model", "prompt_version", "field", "category", "type",
        "decision", "severity", "score", "event_id",
    ]  # fmt: skip
    assert len(rows) == db.totals.high_findings == 89 < safety.RECENT_FINDINGS
    assert {r["severity"] for r in rows} == HIGH
    times = [r["time"] for r in rows]
    assert times == sorted(times, reverse=True)
    assert all(db.window.start <= t.replace(tzinfo=UTC) <= db.window.end for t in times)
    shown = {str(value) for row in rows for value in row.values()}
    assert not any(value in INPUT_TEXT or value in OUTPUT_TEXT for value in shown if len(value) > 3)
    retrieval = {r["field"] for r in rows if r["service"] == "search-rag"}
    assert retrieval == {"output"}  # injections in retrieved passages


def test_no_query_reads_stored_texts() -> None:
    sql = " ".join(q.sql for q in QUERIES)
    assert "llm_texts" not in sql and "input_text" not in sql and "output_text" not in sql


def test_prompt_version_table_shows_the_bad_release(db: Db) -> None:
    rows = {
        (r["service"], r["prompt_version"]): r for r in _panel(db, "Flagged rate by prompt version")
    }
    assert sorted(rows) == [
        ("code-agent", "v3"),
        ("search-rag", "v5"),
        ("support-bot", "v7"),
        ("support-bot", "v8"),
    ]
    v7, v8 = rows["support-bot", "v7"], rows["support-bot", "v8"]
    assert (v7["texts_analysed"], v8["texts_analysed"]) == (400, 250)
    assert v7["flagged_rate"] == pytest.approx(60 / 400)
    assert v8["flagged_rate"] == pytest.approx(48 / 250)
    assert (v7["data_leak_rate"], v8["data_leak_rate"]) == (0, pytest.approx(30 / 250))
    assert v8["injection_rate"] == pytest.approx(16 / 250)


def _series_sums(db: Db, title: str) -> dict[str, float]:
    (query,) = [q for q in PANEL_QUERIES if q.owner == title]
    result = _run(db, query)
    assert result.columns[0] == "time" and len(result.columns) == 3
    sums: Counter[str] = Counter()
    for _time, label, value in result.rows:
        sums[label] += value or 0
    return dict(sums)


def test_flagged_per_minute_by_category_adds_up_to_the_flagged_texts(db: Db) -> None:
    interval_s = panel_interval_s(PANELS["Flagged texts per minute by category"], RANGE.seconds)
    sums = _series_sums(db, "Flagged texts per minute by category")
    assert {k: round(v * interval_s / 60) for k, v in sums.items()} == db.totals.flagged


def test_injection_rate_has_one_series_per_service(db: Db) -> None:
    (query,) = [q for q in PANEL_QUERIES if q.owner == "Injection-attempt rate by service"]
    rows = _run(db, query).rows
    assert {label for _t, label, _v in rows} == {"code-agent", "search-rag", "support-bot"}
    assert all(0 <= value <= 1 for _t, _l, value in rows)
    assert max(value for _t, _l, value in rows) > 0


def test_lint_is_clean_with_every_replacing_table(db: Db) -> None:
    assert {"llm_guardrail_findings", "llm_guardrail_rollup_1m"} <= db.replacing
    assert lint_dashboards({safety.UID: DOC}, provisioned_datasources(), db.replacing) == []


def test_snapshot_renders_every_panel(db: Db, tmp_path: Path) -> None:
    result = render_snapshot(db.client, safety.UID, db.window.start, db.window.end, tmp_path)
    assert result.errors == {}
    assert len(result.pngs) == len(PANELS)


# --- the guardrail SLO's alert rules ------------------------------------------------------------------


def test_the_slo_file_has_a_guardrail_slo_with_rules() -> None:
    assert [(s.name, s.sli) for s in GUARDRAIL_SLOS] == [
        ("injection-attempts", GuardrailSli(type="guardrail", category="prompt_injection"))
    ]
    doc = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))
    (group,) = [g for g in doc["groups"] if g["name"] == "injection-attempts"]
    assert sorted(r["labels"]["rule"] for r in group["rules"]) == ["fast", "slow"]
    assert {r["labels"]["sli"] for r in group["rules"]} == {"guardrail"}


def _rule_queries() -> list[tuple[str, str]]:
    doc = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))
    names = {slo.name for slo in GUARDRAIL_SLOS}
    return [
        (f"{rule['uid']}/{query['refId']}", query["model"]["rawSql"])
        for group in doc["groups"]
        if group["name"] in names
        for rule in group["rules"]
        for query in rule["data"]
        if query["datasourceUid"] != EXPR_UID
    ]


@pytest.mark.parametrize(("name", "sql"), _rule_queries(), ids=[n for n, _ in _rule_queries()])
def test_guardrail_rule_queries_return_one_burn_rate(db: Db, name: str, sql: str) -> None:
    result = run_sql(db.client, sql)
    assert result.columns == ["burn_rate"] and is_numeric_type(result.types[0])
    ((burn,),) = result.rows
    assert burn >= 0


def _burn_rate(slo: Slo, texts: list[SeededText], now_ms: int, window_ms: int) -> float:
    assert isinstance(slo.sli, GuardrailSli) and slo.objective is not None
    floor = now_ms // MINUTE_MS * MINUTE_MS
    inside = [
        t
        for t in texts
        if floor - window_ms < to_ms(t.start_time) // MINUTE_MS * MINUTE_MS <= floor
    ]
    bad = sum(slo.sli.category in t.categories for t in inside)
    return bad / len(inside) / (1 - slo.objective)


@pytest.mark.parametrize("window", ["1h", "30m", "5m"])
def test_guardrail_burn_rate_sql_counts_the_seeded_texts(db: Db, window: str) -> None:
    (slo,) = GUARDRAIL_SLOS
    now_ms = to_ms(db.window.end)
    window_ms = {"1h": 60, "30m": 30, "5m": 5}[window] * MINUTE_MS
    result = run_sql(db.client, burn_rate_sql(slo, window, now_ms))
    (row,) = [dict(zip(result.columns, r, strict=True)) for r in result.rows]
    assert row["burn_rate"] == pytest.approx(_burn_rate(slo, db.texts, now_ms, window_ms))
    assert row["total"] > 0
