"""Drift results, topic shares and drift alerts for the Drift dashboard's tests.

A fixed plan over the drift windows of ``[start, end)`` the monitor has evaluated by ``end`` (its default
window length and grace, aligned as it aligns them; callers pass "now" as ``end`` so the tables' TTLs
never expire the rows):
- shape rows (``direction`` empty, test ``chi2``) for every window, scope of :data:`SHAPE_SCOPES` and
  shape feature; quiet ones have q >= :data:`QUIET_Q_MIN` and PSI <= :data:`QUIET_PSI_MAX`.
  ``output_tokens`` of :data:`SHIFTED_SHAPE` shifts in the last :data:`SHAPE_SHIFT_WINDOWS` windows
  (PSI :data:`SHIFT_PSI`, q :data:`SHIFT_Q`, flagged; the newest window's q is :data:`TINY_Q`, whose score
  is capped), and the window before is a near miss (q :data:`NEAR_MISS_Q`, not flagged);
- text rows (model empty) for every window and scope of :data:`TEXT_SCOPES`: ``embedding``/``mmd``,
  ``topics``/``chi2``, ``novel``/``binomial``, and topic shares (:data:`REFERENCE_SHARES` plus the novel
  topic); :data:`NOVEL_SCOPE`'s novel share is :data:`NOVEL_SHARE` in the last :data:`NOVEL_WINDOWS`
  windows (all three tests flagged there), :data:`BASE_NOVEL_SHARE` before. The novel row's examples
  are the generated :data:`NOVEL_TEXTS` while novel traffic is high, two event ids in even windows
  before, none in odd ones;
- before the range: :data:`EARLIER` flagged ``duration_ms`` 20 h before ``end`` followed by a quiet window
  (recovered), and a flagged ``input_tokens`` 30 h before ``end`` (outside the 24 h lookback);
- one drift alert per flagged row (``streams.drift.consumer.drift_alert``).
Rows go through the sink's drift route (``encode_drift`` -> the route's decoder) and ``insert_rows``; the
shifted windows' record is inserted twice (a replay with a later ``evaluated_at``, collapsed by FINAL).
Deterministic.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from sinks.routes import default_routes
from sinks.rows import insert_rows
from streams.drift.consumer import drift_alert
from streams.drift.monitor import DRIFT_FIELDS, DriftConfig
from streams.drift.records import DRIFT_TOPIC_FIELDS, encode_drift
from streams.drift.shape import CATEGORICAL, NUMERIC
from streams.slo.alerts import ALERT_FIELDS
from streams.storage import ALERTS_TABLE, DRIFT_TABLE, DRIFT_TOPICS_TABLE
from streams.topics import TopicLayout

__all__ = [
    "BASE_NOVEL_SHARE",
    "EARLIER",
    "NOVEL_SCOPE",
    "NOVEL_SHARE",
    "NOVEL_TEXTS",
    "NOVEL_WINDOWS",
    "REFERENCE_NOVEL_SHARE",
    "REFERENCE_SHARES",
    "SHAPE_SCOPES",
    "SHAPE_SHIFT_WINDOWS",
    "SHIFTED_SHAPE",
    "SHIFT_PSI",
    "SHIFT_Q",
    "TEXT_SCOPES",
    "TINY_Q",
    "WINDOW_MS",
    "DriftSeed",
    "drift_plan",
    "seed_drift_tables",
]

WINDOW_MS: Final = DriftConfig().window_ms
REFERENCE_WINDOWS: Final = DriftConfig().reference_windows
GRACE_MS: Final = DriftConfig().grace_ms
SHAPE_FEATURES: Final = (*NUMERIC, *CATEGORICAL)
# (service, model, span kind) of shape rows; (service, span kind, direction) of text rows.
SHAPE_SCOPES: Final = (("support-bot", "gpt-4o-mini", "llm"), ("search-rag", "gpt-4o", "llm"))
TEXT_SCOPES: Final = (
    ("search-rag", "llm", "input"),
    ("search-rag", "llm", "output"),
    ("support-bot", "llm", "input"),
)
SHIFTED_SHAPE: Final = ("support-bot", "gpt-4o-mini", "llm")
SHIFTED_FEATURE: Final = "output_tokens"
SHAPE_SHIFT_WINDOWS: Final = 4
SHIFT_PSI: Final = 0.42
SHIFT_Q: Final = 1e-7
TINY_Q: Final = 1e-14
NEAR_MISS_Q: Final = 0.02
NEAR_MISS_PSI: Final = 0.15
SHIFT_TOP: Final = "b36: 9% -> 27%"
QUIET_Q_MIN: Final = 0.28
QUIET_PSI_MAX: Final = 0.03
NOVEL_SCOPE: Final = ("search-rag", "llm", "input")
NOVEL_WINDOWS: Final = 3
NOVEL_SHARE: Final = 0.18
BASE_NOVEL_SHARE: Final = 0.01
REFERENCE_NOVEL_SHARE: Final = 0.01
NOVEL_TOPIC: Final = -1
# Per direction: the reference's shares of topics 0..3 (the novel topic has REFERENCE_NOVEL_SHARE).
REFERENCE_SHARES: Final = {"input": (0.45, 0.30, 0.15, 0.09), "output": (0.50, 0.25, 0.15, 0.09)}
JIGGLE: Final = (0.02, -0.02, 0.0, 0.0)
NOVEL_TEXTS: Final = (
    "Can the assistant sync my invoices with the new ledger connector?",
    "How do I map ledger connector fields to my own cost centres?",
    "Why does the ledger connector reject invoices dated next quarter?",
)
SAMPLE: Final = 500
REFERENCE_N: Final = 3_000
# (service, model, span kind, feature, hours before end, flagged, effect, q, top shift)
EARLIER: Final = (
    ("code-agent", "claude-sonnet-4-5", "llm", "duration_ms", 20, True, 0.31, 1e-5, "b52: 4% -> 19%"),
    ("code-agent", "claude-sonnet-4-5", "llm", "duration_ms", 20 - 1 / 6, False, 0.02, 0.6, "b52: 4% -> 5%"),
    ("code-agent", "claude-sonnet-4-5", "llm", "input_tokens", 30, True, 0.27, 1e-6, "b30: 10% -> 22%"),
)  # fmt: skip
LAYOUT: Final = TopicLayout("seed")


@dataclass(frozen=True)
class DriftSeed:
    """What was inserted: the window starts (ms) in the range, the rows and alerts, rows per table."""

    windows: tuple[int, ...]
    rows: tuple[dict[str, Any], ...]
    topics: tuple[dict[str, Any], ...]
    alerts: tuple[dict[str, Any], ...]
    counts: dict[str, int] = field(default_factory=dict)

    def flagged(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["flagged"]]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _window_starts(start: datetime, end: datetime) -> tuple[int, ...]:
    """The windows inside ``[start, end)`` that the monitor closed (evaluated) by ``end``."""
    first = -(-_ms(start) // WINDOW_MS) * WINDOW_MS
    return tuple(range(first, _ms(end) - WINDOW_MS - GRACE_MS + 1, WINDOW_MS))


def _base(window: int, service: str, model: str, span_kind: str, direction: str) -> dict[str, Any]:
    return {
        "window_start": window,
        "window_end": window + WINDOW_MS,
        "reference_start": window - REFERENCE_WINDOWS * WINDOW_MS,
        "reference_end": window,
        "reference_kind": "trailing",
        "service": service,
        "model": model,
        "span_kind": span_kind,
        "direction": direction,
        "reference_n": REFERENCE_N,
        "current_n": SAMPLE,
        "evaluated_at": window + WINDOW_MS + GRACE_MS,
    }


def _result(
    base: dict[str, Any],
    feature: str,
    test: str,
    *,
    statistic: float,
    q: float,
    effect: float,
    top_shift: str,
    flagged: bool,
) -> dict[str, Any]:
    return {
        **base,
        "feature": feature,
        "test": test,
        "statistic": statistic,
        "p_value": q / 10,
        "q_value": q,
        "effect": effect,
        "top_shift": top_shift,
        "flagged": flagged,
    }


def _quiet(index: int, feature: int, scope: int) -> tuple[float, float]:
    """(q, effect) of an unremarkable test."""
    q = min(1.0, 0.28 + 0.07 * ((index + feature + scope) % 10))
    return q, 0.01 + 0.005 * ((3 * index + feature) % 5)


def _shape_rows(windows: Sequence[int]) -> list[dict[str, Any]]:
    rows = []
    last = len(windows) - 1
    for index, window in enumerate(windows):
        for s, scope in enumerate(SHAPE_SCOPES):
            base = _base(window, *scope, "")
            for f, feature in enumerate(SHAPE_FEATURES):
                q, effect = _quiet(index, f, s)
                top, flagged = "b20: 11% -> 12%", False
                if scope == SHIFTED_SHAPE and feature == SHIFTED_FEATURE:
                    if index > last - SHAPE_SHIFT_WINDOWS:
                        q = TINY_Q if index == last else SHIFT_Q
                        effect, top, flagged = SHIFT_PSI, SHIFT_TOP, True
                    elif index == last - SHAPE_SHIFT_WINDOWS:
                        q, effect = NEAR_MISS_Q, NEAR_MISS_PSI
                rows.append(
                    _result(
                        base, feature, "chi2", statistic=effect * SAMPLE, q=q, effect=effect,
                        top_shift=top, flagged=flagged,
                    )
                )  # fmt: skip
    return rows


def _novel(scope: tuple[str, str, str], index: int, count: int) -> bool:
    return scope == NOVEL_SCOPE and index >= count - NOVEL_WINDOWS


def _text_rows(windows: Sequence[int]) -> list[dict[str, Any]]:
    rows = []
    for index, window in enumerate(windows):
        for s, scope in enumerate(TEXT_SCOPES):
            service, span_kind, direction = scope
            base = _base(window, service, "", span_kind, direction)
            if _novel(scope, index, len(windows)):
                tests = (
                    ("embedding", "mmd", 0.012, 1e-4, 0.031, "centroid moved 0.031"),
                    ("topics", "chi2", 95.0, 1e-6, 0.35, "novel: 1% -> 18%"),
                    ("novel", "binomial", NOVEL_SHARE, 1e-9, NOVEL_SHARE - REFERENCE_NOVEL_SHARE,
                     "novel: 1% -> 18%"),
                )  # fmt: skip
                flagged = True
            else:
                q, effect = _quiet(index, 0, s)
                tests = (
                    ("embedding", "mmd", 0.0004, q, effect / 5, "centroid moved 0.002"),
                    ("topics", "chi2", 3.0, q, effect, "topic 1: 30% -> 32%"),
                    ("novel", "binomial", BASE_NOVEL_SHARE, q, 0.0, "novel: 1% -> 1%"),
                )
                flagged = False
            for feature, test, statistic, q_value, effect_value, top in tests:
                rows.append(
                    _result(
                        base, feature, test, statistic=statistic, q=q_value, effect=effect_value,
                        top_shift=top, flagged=flagged,
                    )
                )  # fmt: skip
    return rows


def _event_ids(window: int, count: int) -> list[str]:
    return [hashlib.sha256(f"{window}/{n}".encode()).hexdigest()[:32] for n in range(count)]


def _current_shares(scope: tuple[str, str, str], index: int, count: int) -> list[float]:
    """Topics 0..3, then novel; they sum to 1."""
    reference = REFERENCE_SHARES[scope[2]]
    if _novel(scope, index, count):
        scale = (1 - NOVEL_SHARE) / sum(reference)
        return [share * scale for share in reference] + [NOVEL_SHARE]
    sign = 1 if index % 2 == 0 else -1
    return [share + sign * j for share, j in zip(reference, JIGGLE, strict=True)] + [
        BASE_NOVEL_SHARE
    ]


def _topic_rows(windows: Sequence[int]) -> list[dict[str, Any]]:
    rows = []
    for index, window in enumerate(windows):
        for scope in TEXT_SCOPES:
            service, span_kind, direction = scope
            reference = [*REFERENCE_SHARES[direction], REFERENCE_NOVEL_SHARE]
            current = _current_shares(scope, index, len(windows))
            if _novel(scope, index, len(windows)):
                examples = list(NOVEL_TEXTS)
            else:
                examples = _event_ids(window, 2) if index % 2 == 0 else []
            for topic, (ref, cur) in enumerate(zip(reference, current, strict=True)):
                novel = topic == len(reference) - 1
                rows.append(
                    {
                        "window_start": window,
                        "window_end": window + WINDOW_MS,
                        "reference_kind": "trailing",
                        "service": service,
                        "span_kind": span_kind,
                        "direction": direction,
                        "model_id": f"kmeans-{service}-{direction}-1",
                        "topic": NOVEL_TOPIC if novel else topic,
                        "reference_share": ref,
                        "current_share": cur,
                        "current_n": SAMPLE,
                        "examples": examples if novel else [],
                        "evaluated_at": window + WINDOW_MS + GRACE_MS,
                    }
                )
    return rows


def _earlier_rows(end: datetime) -> list[dict[str, Any]]:
    rows = []
    for service, model, span_kind, feature, hours, flagged, effect, q, top in EARLIER:
        at = _ms(end - timedelta(hours=hours))
        base = _base(at - at % WINDOW_MS, service, model, span_kind, "")
        rows.append(
            _result(
                base, feature, "chi2", statistic=effect * SAMPLE, q=q, effect=effect,
                top_shift=top, flagged=flagged,
            )
        )  # fmt: skip
    return rows


def drift_plan(start: datetime, end: datetime) -> DriftSeed:
    """The plan's rows and alerts (no I/O)."""
    windows = _window_starts(start, end)
    if len(windows) <= SHAPE_SHIFT_WINDOWS + 1:
        raise ValueError(
            f"the range {start.isoformat()} .. {end.isoformat()} holds {len(windows)} drift windows, "
            f"need more than {SHAPE_SHIFT_WINDOWS + 1}"
        )
    rows = [*_earlier_rows(end), *_shape_rows(windows), *_text_rows(windows)]
    alerts = [drift_alert(r).to_row() for r in rows if r["flagged"]]
    return DriftSeed(windows, tuple(rows), tuple(_topic_rows(windows)), tuple(alerts))


def _insert_record(
    client: Client, database: str, rows: Sequence[dict[str, Any]], topics: Sequence[dict[str, Any]]
) -> Counter[str]:
    """One drift record through the sink's route; rows inserted per table."""
    route = default_routes(LAYOUT)[LAYOUT.drift]
    split = route.split(encode_drift(list(rows), list(topics)))
    columns = {DRIFT_TABLE: DRIFT_FIELDS, DRIFT_TOPICS_TABLE: DRIFT_TOPIC_FIELDS}
    counts: Counter[str] = Counter()
    for table, fields in columns.items():
        if split[table]:
            counts[table] += insert_rows(client, database, table, split[table], list(fields))
    return counts


def seed_drift_tables(client: Client, database: str, start: datetime, end: datetime) -> DriftSeed:
    """Insert the plan's rows (migrations 0005, 0012 and 0013 applied); see the module docstring."""
    plan = drift_plan(start, end)
    counts: Counter[str] = Counter()
    for window in sorted({r["window_start"] for r in plan.rows}):
        counts += _insert_record(
            client,
            database,
            [r for r in plan.rows if r["window_start"] == window],
            [t for t in plan.topics if t["window_start"] == window],
        )
    shifted = [r for r in plan.rows if r["flagged"] and r["window_start"] in plan.windows]
    replay = [{**r, "evaluated_at": r["evaluated_at"] + 1_000} for r in shifted]
    counts += _insert_record(client, database, replay, [])
    counts[f"{ALERTS_TABLE}:drift"] = insert_rows(
        client, database, ALERTS_TABLE, list(plan.alerts), list(ALERT_FIELDS)
    )
    return DriftSeed(plan.windows, plan.rows, plan.topics, plan.alerts, dict(counts))
