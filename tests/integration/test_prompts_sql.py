"""Every query of the Prompts dashboard on chdb over the seeded prompt tables returns the plan's values.

The migrations are applied to a fresh chdb folder and ``tests.unit.dashboards.seed_prompts`` writes the
registry (three versions of ``support-answer``, label moves incl. a canary and its auto-rollback, a
second prompt set before the range), four looks at the canary with eight metrics each, and the
support-bot traffic those labels served (rollups and judge scores). Each query is expanded as Grafana
would (``dashboards.macros``) and its rows compared with what the plan and the simulated calls say.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from dashboards.build import build_all
from dashboards.macros import AllValue, QueryWindow, VariableValue, render_sql
from dashboards.panels import ALL_VALUE
from dashboards.prompts import UID
from dashboards.prompts_sql import VERDICT_CODES
from dashboards.runner import run_sql, variable_values
from dashboards.walk import queries, variables
from sinks.migrate import apply_migrations
from tests.clock import Clock
from tests.unit.dashboards.seed_prompts import (
    CANARY_REVISION,
    DRAFTS,
    METRIC_PLAN,
    OTHER_PROMPT,
    PROMPT,
    PromptSeed,
    seed_prompt_tables,
)

DOC: Final = build_all()[UID]
SQL: Final = {(q.kind, q.owner): q.sql for q in queries(DOC)}
RANGE: Final = timedelta(hours=2)
ALL: Final = AllValue(ALL_VALUE)
ROBOT_REASON: Final = "canary failed: latency_p95_ms, cost_per_request_usd"


@dataclass(frozen=True)
class Db:
    client: Client
    seed: PromptSeed

    def window(self, fraction: float = 1.0) -> QueryWindow:
        return QueryWindow(self.seed.start, self.seed.start + RANGE * fraction, 60)

    def name(self, number: int) -> str:
        return f"#{number} {self.seed.version(number)}"

    def llm_calls(self) -> list[dict[str, Any]]:
        return [c for c in self.seed.calls if c["span_kind"] == "llm" and c["prompt_version"]]

    def by_version(self) -> dict[str, list[dict[str, Any]]]:
        names = {self.seed.version(n): self.name(n) for n in (1, 2, 3)}
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for call in self.llm_calls():
            grouped[names[call["prompt_version"]]].append(call)
        return dict(grouped)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Db]:
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path_factory.mktemp('prompts')}")
    try:
        apply_migrations(client, "llmwatch")
        end = Clock.read().ago()
        yield Db(client, seed_prompt_tables(client, "llmwatch", end - RANGE, end))
    finally:
        client.close()


def _run(
    db: Db, kind: str, owner: str, fraction: float = 1.0, /, **chosen: VariableValue
) -> list[tuple[Any, ...]]:
    values: dict[str, VariableValue] = {v["name"]: ALL for v in variables(DOC)}
    values.update({"prompt": [PROMPT], **chosen})
    return run_sql(db.client, render_sql(SQL[(kind, owner)], db.window(fraction), values)).rows


def _panel(db: Db, title: str, fraction: float = 1.0, /, **chosen: VariableValue) -> list[Any]:
    return _run(db, "panel", title, fraction, **chosen)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _moved(db: Db, label: str, revision: int, name: str = PROMPT) -> datetime:
    (move,) = [m for m in db.seed.moves if (m.name, m.label, m.revision) == (name, label, revision)]
    return datetime.fromtimestamp(move.moved_at_ms / 1000, UTC)


CHECKED: Final = {
    ("variable", name)
    for name in ("prompt", "label", "metric", "environment", "service", "provider", "model")
} | {
    ("annotation", "Label moves"),
    *(
        ("panel", title)
        for title in (
            "Latest canary verdict",
            "Latest canary score",
            "Labels now",
            "Label weights over time",
            "Versions",
            "Label moves",
            "Verdict history",
            "$metric: canary vs baseline",
            "$metric: looks",
            "Calls by version",
            "Cost per request by version",
            "Versions compared",
            "Scores by version",
        )
    ),
}


def test_every_query_of_the_dashboard_is_checked_here() -> None:
    assert set(SQL) == CHECKED


def test_the_prompt_label_and_metric_variables_list_the_registry(db: Db) -> None:
    window = db.window()
    known: dict[str, VariableValue] = {"prompt": [PROMPT], "label": ALL}
    listed = {
        name: variable_values(db.client, v, window, known)
        for v in variables(DOC)
        if (name := v["name"]) in ("prompt", "label", "metric")
    }
    assert listed == {
        "prompt": [PROMPT, OTHER_PROMPT],
        "label": ["production", "staging"],
        "metric": sorted(METRIC_PLAN),
    }


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("environment", "environment"),
        ("service", "service"),
        ("provider", "provider_name"),
        ("model", "request_model"),
    ],
)
def test_call_filters_list_the_values_of_the_prompts_calls(db: Db, name: str, column: str) -> None:
    (variable,) = [v for v in variables(DOC) if v["name"] == name]
    known: dict[str, VariableValue] = {v["name"]: ALL for v in variables(DOC)} | {
        "prompt": [PROMPT]
    }
    expected = sorted({str(c[column] or c["response_model"]) for c in db.llm_calls()})
    assert variable_values(db.client, variable, db.window(), known) == expected


@pytest.mark.parametrize(
    ("fraction", "verdict", "score"),
    [(1.0, "fail", 75.0), (0.75, "marginal", 87.5), (0.65, "pass", 100.0), (0.55, "waiting", None)],
)
def test_latest_verdict_and_score_are_the_newest_look_in_the_range(
    db: Db, fraction: float, verdict: str, score: float | None
) -> None:
    assert _panel(db, "Latest canary verdict", fraction) == [(VERDICT_CODES[verdict],)]
    assert _panel(db, "Latest canary score", fraction) == [(score,)]


@pytest.mark.parametrize(
    "chosen", [{"label": ["staging"]}, {"prompt": [OTHER_PROMPT]}], ids=["staging", "other"]
)
def test_no_canary_gives_no_verdict_row(db: Db, chosen: dict[str, VariableValue]) -> None:
    assert _panel(db, "Latest canary verdict", **chosen) == []
    assert _panel(db, "Verdict history", **chosen) == []


def test_labels_now_show_each_labels_last_move(db: Db) -> None:
    rows = [row[:7] + row[8:] for row in _panel(db, "Labels now")]
    v2, v3 = db.name(2), db.name(3)
    assert rows == [
        ("production", 4, f"{v2} 100%", "", f"{v2} 90%, {v3} 10%", "llmwatch-canary", ROBOT_REASON,
         "auto_rollback"),
        ("staging", 1, f"{v3} 100%", "", "", "bob", "try the rewrite", "set"),
    ]  # fmt: skip
    mid_canary = _panel(db, "Labels now", 0.5, label=["production"])
    assert [row[:4] for row in mid_canary] == [("production", 3, f"{v2} 90%, {v3} 10%", v3)]


def test_label_weights_step_at_every_move_and_hold_to_the_end(db: Db) -> None:
    v1, v2, v3 = db.name(1), db.name(2), db.name(3)
    end = db.seed.start + RANGE
    moved = {(label, rev): _moved(db, label, rev) for label, rev in
             [("production", 1), ("production", 2), ("production", 3), ("production", 4),
              ("staging", 1)]}  # fmt: skip
    expected = [
        (moved["production", 1], f"production {v1}", 100.0),
        (moved["production", 2], f"production {v1}", 0.0),
        (moved["production", 2], f"production {v2}", 100.0),
        (moved["staging", 1], f"staging {v3}", 100.0),
        (moved["production", 3], f"production {v2}", 90.0),
        (moved["production", 3], f"production {v3}", 10.0),
        (moved["production", 4], f"production {v2}", 100.0),
        (moved["production", 4], f"production {v3}", 0.0),
        (end, f"production {v2}", 100.0),
        (end, f"production {v3}", 0.0),
        (end, f"staging {v3}", 100.0),
    ]
    rows = [(_utc(t), series, w) for t, series, w in _panel(db, "Label weights over time")]
    assert rows == expected


def test_label_weights_carry_a_state_set_before_the_range(db: Db) -> None:
    other = next(v.version for v in db.seed.versions if v.name == OTHER_PROMPT)
    rows = _panel(db, "Label weights over time", prompt=[OTHER_PROMPT])
    start, end = db.seed.start, db.seed.start + RANGE
    series = f"production #1 {other}"
    assert [(_utc(t), s, w) for t, s, w in rows] == [(start, series, 100.0), (end, series, 100.0)]


def test_versions_are_numbered_in_push_order(db: Db) -> None:
    rows = _panel(db, "Versions")
    assert [(r[0], r[1], r[4], r[5]) for r in rows] == [
        (n, db.seed.version(n), "alice", f"{draft} draft") for n, draft in enumerate(DRAFTS, 1)
    ]
    assert [r[:2] for r in _panel(db, "Versions", prompt=[OTHER_PROMPT])] == [
        (1, next(v.version for v in db.seed.versions if v.name == OTHER_PROMPT))
    ]


def _expected_moves(db: Db) -> list[tuple[Any, ...]]:
    """(label, revision, action, state, canary, previous state, moved_by, reason), newest first."""
    v1, v2, v3 = db.name(1), db.name(2), db.name(3)
    split = f"{v2} 90%, {v3} 10%"
    return [
        (
            "production",
            4,
            "auto_rollback",
            f"{v2} 100%",
            "",
            split,
            "llmwatch-canary",
            ROBOT_REASON,
        ),
        ("production", 3, "split", split, v3, f"{v2} 100%", "bob", "canary the friendlier rewrite"),
        ("staging", 1, "set", f"{v3} 100%", "", "", "bob", "try the rewrite"),
        ("production", 2, "set", f"{v2} 100%", "", f"{v1} 100%", "alice", "shorter answers"),
        ("production", 1, "set", f"{v1} 100%", "", "", "alice", "first release"),
    ]


def test_label_moves_list_the_audit_trail_newest_first_once_each(db: Db) -> None:
    rows = _panel(db, "Label moves")
    assert [row[1:] for row in rows] == _expected_moves(db)
    assert [_utc(row[0]) for row in rows] == [
        _moved(db, row[1], row[2]) for row in rows
    ]  # the replayed moves collapsed


def test_label_moves_are_annotations_with_who_why_and_the_states(db: Db) -> None:
    rows = _run(db, "annotation", "Label moves")
    moves = list(reversed(_expected_moves(db)))
    assert [(_utc(t), _utc(t_end)) for t, t_end, *_ in rows] == [
        (_moved(db, m[0], m[1]),) * 2 for m in moves
    ]
    assert [r[2] for r in rows] == [f"{m[0]}: {m[2]} (revision {m[1]})" for m in moves]
    assert [r[3] for r in rows] == [
        f"{m[2]} by {m[6]}: {m[3]} (was {m[5] or 'unset'}). {m[7]}" for m in moves
    ]
    assert [r[4] for r in rows] == [[PROMPT, m[0], m[2]] for m in moves]


def test_verdict_history_lists_each_look_once_newest_first(db: Db) -> None:
    rows = _panel(db, "Verdict history")
    canary, baseline = db.name(3), db.name(2)
    assert [(r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows] == [
        ("production", CANARY_REVISION, look, canary, baseline, 10) for look in (4, 3, 2, 1)
    ]
    assert [(r[7], r[8], r[9], r[10], r[11], r[12]) for r in rows] == [
        (200, 1800, "fail", 75.0, "latency_p95_ms, cost_per_request_usd", "rolled_back"),
        (100, 900, "marginal", 87.5, "", "none"),
        (50, 450, "pass", 100.0, "", "none"),
        (20, 180, "waiting", 0.0, "", "none"),
    ]


def _band(metric: str) -> list[tuple[float, float, float | None, float | None]]:
    """(canary, baseline, band low, band high) per look: the canary's value +- the plan's half-width
    (baseline + diff_low = canary - half)."""
    baseline, canary, _outcomes = METRIC_PLAN[metric]
    rows: list[tuple[float, float, float | None, float | None]] = [
        (canary[0], baseline, None, None)
    ]
    for look, half_share in enumerate((0.40, 0.25, 0.15), start=2):
        value, half = canary[look - 1], baseline * half_share
        rows.append((value, baseline, value - half, value + half))
    return rows


@pytest.mark.parametrize("metric", ["latency_p95_ms", "cost_per_request_usd", "score:relevance"])
def test_canary_and_baseline_with_the_band_implied_by_the_interval(db: Db, metric: str) -> None:
    rows = _panel(db, "$metric: canary vs baseline", metric=[metric])
    assert [_utc(r[0]) for r in rows] == [
        datetime.fromtimestamp(v.evaluated_at / 1000, UTC) for v in db.seed.verdicts
    ]
    got = [r[1:] for r in rows]
    for (canary, baseline, low, high), want in zip(got, _band(metric), strict=True):
        assert (canary, baseline) == pytest.approx(want[:2])
        assert (low, high) == ((None, None) if want[2] is None else pytest.approx(want[2:]))


def test_metric_looks_show_verdicts_intervals_and_p_values(db: Db) -> None:
    rows = _panel(db, "$metric: looks", metric=["latency_p95_ms"])
    assert [(r[2], r[3], r[4], r[5]) for r in rows] == [
        (4, "fail", 200, 1800),
        (3, "marginal", 100, 900),
        (2, "pass", 50, 450),
        (1, "waiting", 20, 180),
    ]
    assert [(r[8], r[9], r[10]) for r in rows] == [
        (720.0, 1080.0, 0.0004),
        (100.0, 700.0, 0.05),
        (-330.0, 630.0, 0.9),
        (None, None, 1.0),
    ]


def _minute(call: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(call["start_time"] // 60_000 * 60, UTC)


def test_calls_by_version_count_every_llm_call_per_minute(db: Db) -> None:
    expected = Counter((_minute(c), name) for name, calls in db.by_version().items() for c in calls)
    rows = _panel(db, "Calls by version")
    assert {(_utc(t), v): n for t, v, n in rows} == pytest.approx(dict(expected))
    assert set(db.by_version()) == {db.name(1), db.name(2), db.name(3)}


def test_cost_per_request_by_version_is_spend_over_priced_calls(db: Db) -> None:
    spend: dict[tuple[datetime, str], list[float]] = defaultdict(list)
    for name, calls in db.by_version().items():
        for call in calls:
            if call["cost_usd"] is not None:
                spend[_minute(call), name].append(call["cost_usd"])
    rows = _panel(db, "Cost per request by version")
    assert {(_utc(t), v): usd for t, v, usd in rows} == pytest.approx(
        {key: sum(costs) / len(costs) for key, costs in spend.items()}
    )


def _p95_bounds(durations: list[float]) -> tuple[float, float]:
    """The sketch's p95 lies within 1% of the sample's values one rank either side of 0.95 (n-1)."""
    ordered = sorted(max(d, 0.0) for d in durations)
    rank = 0.95 * (len(ordered) - 1)
    low = ordered[max(0, math.floor(rank) - 1)]
    high = ordered[min(len(ordered) - 1, math.ceil(rank) + 1)]
    return low * 0.99 - 1, high * 1.01 + 1


def _compared(calls: list[dict[str, Any]]) -> tuple[int, float, float, float]:
    priced = [c["cost_usd"] for c in calls if c["cost_usd"] is not None]
    return (
        len(calls),
        round(sum(c["status"] == "error" for c in calls) / len(calls), 4),
        round(sum(priced) / len(priced), 6),
        round(sum(c["output_tokens"] for c in calls) / len(calls), 1),
    )


def test_versions_compared_per_version(db: Db) -> None:
    rows = _panel(db, "Versions compared")
    by_version = db.by_version()
    assert [r[0] for r in rows] == [db.name(1), db.name(2), db.name(3)]
    for version, calls, error_rate, p95, usd, tokens in rows:
        expected = _compared(by_version[version])
        assert (calls, error_rate, tokens) == (expected[0], expected[1], expected[3])
        assert usd == pytest.approx(expected[2], abs=1e-6)
        low, high = _p95_bounds([c["duration_ms"] for c in by_version[version]])
        assert low <= p95 <= high, (version, p95, low, high)
    slow, base = rows[2], rows[1]
    assert slow[3] > 2 * base[3] and slow[5] > base[5]  # #3 is the slower, wordier canary


def test_scores_by_version_are_the_judges_means(db: Db) -> None:
    scores: dict[str, list[float]] = defaultdict(list)
    names = {db.seed.version(n): db.name(n) for n in (1, 2, 3)}
    for score in db.seed.scores:
        assert score.score_value is not None
        scores[names[score.prompt_version]].append(score.score_value)
    rows = _panel(db, "Scores by version")
    assert rows == [
        (name, "judge:relevance", len(values), round(sum(values) / len(values), 3))
        for name, values in sorted(scores.items())
    ]
    assert rows[2][3] < rows[1][3]  # the canary's answers score lower


@pytest.mark.parametrize(
    ("variable", "value", "column"),
    [("environment", "production", "environment"), ("provider", "openai", "provider_name")],
)
def test_call_filters_narrow_the_version_panels(
    db: Db, variable: str, value: str, column: str
) -> None:
    rows = _panel(db, "Versions compared", **{variable: [value]})
    expected = Counter(
        name for name, calls in db.by_version().items() for c in calls if c[column] == value
    )
    assert {r[0]: r[1] for r in rows} == dict(expected)
    assert sum(expected.values()) < len(db.llm_calls())
    scored = _panel(db, "Scores by version", **{variable: [value]})
    assert {r[0]: r[2] for r in scored} == dict(expected)


@pytest.mark.parametrize(
    "title", ["Calls by version", "Cost per request by version", "Versions compared"]
)
def test_another_prompts_versions_have_no_calls(db: Db, title: str) -> None:
    assert _panel(db, title, prompt=[OTHER_PROMPT]) == []
