"""One event must never switch alerting off: the stream state's watermarks are bounded by a clock.

Rows here are normalized rows (``CALL_FIELDS``) whose times are set after validation, i.e. rows that
slipped past the ingest contract (which dead-letters such events): the analytics must hold anyway.
Times derive from the ``clock`` fixture, never from fixed dates.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import pytest

from producers.events import LlmCallEvent
from streams.analytics.record import RecordAnalytics
from streams.analytics.topk import TopUsers
from streams.ingest.validate import SourcePosition, to_call_row
from streams.monitor import StreamMonitor
from streams.periodic import PIPELINE_METRICS_TABLE, TOP_USERS_TABLE, decode_snapshot
from streams.slo.burnrate import BurnRateEvaluator
from streams.slo.config import MINUTE_MS, parse_slo_file
from tests.clock import Clock, to_ms

SLOS: Final = """
version: 1
slos:
  - {name: bot-availability, objective: 0.99, sli: {type: availability}, selector: {service: bot}}
"""
# The adversarial value itself (a broken producer clock), not a test clock.
YEAR_2100_MS: Final = to_ms(datetime.fromisoformat("2100-01-01T00:00:00+00:00"))
YEAR_1970_MS: Final = 86_400_000  # 1970-01-02
REAL_USERS: Final = ("alice", "bob", "carol")
STRAY_USER: Final = "stray"
# (start_time, end_time) of a stray row (None: now), and the monitor counter it must land in.
STRAY_TIMES: Final = {
    "ends in 2100": (None, YEAR_2100_MS, "future_events"),
    "starts and ends in 2100": (YEAR_2100_MS, YEAR_2100_MS + 500, "future_events"),
    "1970": (YEAR_1970_MS, YEAR_1970_MS + 500, "late_events"),
    "ends before it starts (starts 2100)": (YEAR_2100_MS, None, "inverted_time_events"),
    "ends before it starts (ends 1970)": (None, YEAR_1970_MS, "inverted_time_events"),
}
COUNTERS: Final = ("future_events", "inverted_time_events", "late_events")
_NOW: Final = datetime.now(
    UTC
)  # only to build a valid template; every test time comes from `clock`
_TEMPLATE: Final = to_call_row(
    LlmCallEvent(
        start_time=_NOW,
        end_time=_NOW,
        service="bot",
        provider_name="openai",
        request_model="gpt-4o-mini",
        tenant_id="acme",
        user_id=REAL_USERS[0],
    ),
    SourcePosition("t", 0, 0),
    sent_at_ms=None,
)


def call_row(start_ms: int, end_ms: int | None = None, **fields: Any) -> dict[str, Any]:
    """A valid row (ingest's own normalizer), then its times overwritten as a bad clock would."""
    row = dict(_TEMPLATE, start_time=start_ms, cost_usd=0.01, duration_ms=500.0)
    row.update(end_time=start_ms + 500 if end_ms is None else end_ms, **fields)
    return row


def burning_rows(now_ms: int) -> list[dict[str, Any]]:
    """Ten minutes up to now, half of them errors, from the real users: a fast burn."""
    rows = []
    for i in range(200):
        start = now_ms - 10 * MINUTE_MS + i * 3_000
        status = "error" if i % 2 else "ok"
        rows.append(call_row(start, status=status, user_id=REAL_USERS[i % len(REAL_USERS)]))
    return rows


def stray_row(kind: str, now_ms: int) -> dict[str, Any]:
    start, end, _ = STRAY_TIMES[kind]
    start_ms = now_ms if start is None else start
    end_ms = now_ms if end is None else end
    return call_row(start_ms, end_ms, status="ok", user_id=STRAY_USER, cost_usd=1_000.0)


def _metrics(monitor: StreamMonitor, now_ms: int) -> dict[str, float]:
    tables = decode_snapshot(monitor.snapshot(now_ms))
    return {m["metric"]: m["value"] for m in tables[PIPELINE_METRICS_TABLE] if not m["labels"]}


@pytest.mark.parametrize("kind", sorted(STRAY_TIMES))
def test_one_stray_row_keeps_firing_alerts_firing_and_top_users_real(
    kind: str, clock: Clock
) -> None:
    # The monitor's default clock is the wall clock, as in the worker; rows are stamped around it.
    now_ms = clock.now_ms
    monitor = StreamMonitor(
        RecordAnalytics(), parse_slo_file(SLOS), instance="t", started_ms=now_ms
    )
    monitor.observe(burning_rows(now_ms))
    fired = [record for _, record in monitor.alerts(now_ms)]
    assert fired and all(b'"state":"firing"' in record for record in fired)
    assert monitor.evaluator is not None
    firing = monitor.evaluator.firing()

    monitor.observe([stray_row(kind, now_ms)])

    assert monitor.alerts(now_ms + 1_000) == []  # no transition: nothing resolved
    assert monitor.evaluator.firing() == firing
    top = decode_snapshot(monitor.snapshot(now_ms))[TOP_USERS_TABLE]
    assert {row["user_id"] for row in top} == set(REAL_USERS)
    metrics = _metrics(monitor, now_ms)
    counted = STRAY_TIMES[kind][2]
    assert {name: metrics[name] for name in COUNTERS} == {n: int(n == counted) for n in COUNTERS}


def test_the_watermark_never_passes_the_clock_plus_the_allowance(clock: Clock) -> None:
    now_ms = clock.now_ms
    evaluator = BurnRateEvaluator(parse_slo_file(SLOS), clock=lambda: now_ms)
    evaluator.observe(call_row(now_ms))
    evaluator.observe(call_row(now_ms, YEAR_2100_MS))
    evaluator.observe(call_row(now_ms + 4 * MINUTE_MS))  # within the 5-minute allowance
    stats = evaluator.stats()
    assert (stats.future_events, stats.observed) == (1, 2)
    assert stats.watermark_ms == now_ms + 4 * MINUTE_MS + 500


def test_a_first_row_from_1970_is_late_not_counted(clock: Clock) -> None:
    now_ms = clock.now_ms
    evaluator = BurnRateEvaluator(parse_slo_file(SLOS), clock=lambda: now_ms)
    evaluator.observe(call_row(YEAR_1970_MS, status="error"))
    assert evaluator.stats().late_events == 1
    status = evaluator.status_rows(YEAR_1970_MS + MINUTE_MS)
    assert {row["total"] for row in status} == {0}


@pytest.mark.parametrize("stray_ms", [YEAR_2100_MS, YEAR_1970_MS], ids=["2100", "1970"])
@pytest.mark.parametrize("stray_first", [True, False], ids=["stray first", "stray last"])
def test_top_users_report_the_real_users_of_the_trailing_hour(
    stray_ms: int, stray_first: bool, clock: Clock
) -> None:
    now_ms = clock.now_ms
    top = TopUsers(capacity=10, clock=lambda: now_ms)
    if stray_first:
        top.add("acme", STRAY_USER, 1_000.0, stray_ms)
        assert top.top(5) == []
    for i, user in enumerate(REAL_USERS):
        top.add("acme", user, 1.0 + i, now_ms - 30 * MINUTE_MS + i)
    if not stray_first:
        top.add("acme", STRAY_USER, 1_000.0, stray_ms)
    assert [u.user_id for u in top.top(5)] == list(reversed(REAL_USERS))
    assert (top.future_events, top.late_events) == ((1, 0) if stray_ms == YEAR_2100_MS else (0, 1))


def test_top_users_window_ends_at_the_clock_when_traffic_stops(clock: Clock) -> None:
    now_ms = clock.now_ms
    times = iter([now_ms, now_ms + 61 * MINUTE_MS])
    top = TopUsers(capacity=10, clock=lambda: next(times))
    top.add("acme", "alice", 1.0, now_ms)
    assert top.top(5) == []  # an hour later by the clock: alice left the trailing hour
