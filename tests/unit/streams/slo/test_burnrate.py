"""The stream's burn-rate evaluator on scripted incidents, and the alert record formats."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

import orjson
import pytest

from producers.events import LlmCallEvent
from streams.ingest.validate import SourcePosition, to_call_row
from streams.slo.alerts import (
    ALERT_FIELDS,
    ALERTS_TABLE,
    SLO_STATUS_FIELDS,
    SLO_STATUS_TABLE,
    AlertEvent,
    decode_alert,
    decode_alerts_record,
    encode_status,
)
from streams.slo.burnrate import BurnRateEvaluator
from streams.slo.config import HOUR_MS, MINUTE_MS, SloFile, parse_slo_file
from tests.clock import Clock, to_ms

# Midnight UTC two to three days before the run: every scripted incident stays in the past.
T0_TIME: Final = Clock.read().ago(days=2, step=timedelta(days=1))
T0: Final = to_ms(T0_TIME)
STEP_MS: Final = 3_000  # 20 calls per minute
PER_MINUTE: Final = MINUTE_MS // STEP_MS
_TEMPLATE: Final = to_call_row(
    LlmCallEvent(
        start_time=T0_TIME,
        end_time=T0_TIME + timedelta(seconds=1),
        service="bot",
        provider_name="openai",
        request_model="gpt-4o-mini",
    ),
    SourcePosition("t", 0, 0),
    sent_at_ms=None,
)

SLOS: Final = """
version: 1
slos:
  - {name: bot-availability, objective: 0.99, sli: {type: availability}, selector: {service: bot}}
  - name: bot-latency
    objective: 0.99
    sli: {type: latency, threshold_ms: 2000}
    selector: {service: bot}
  - name: bot-ttft
    objective: 0.9
    sli: {type: ttft, threshold_ms: 500}
    selector: {service: bot}
  - name: bot-cost
    sli: {type: cost, usd_per_hour: 1.0}
    selector: {service: bot, span_kind: null}
"""


def row(start_ms: int, **overrides: Any) -> dict[str, Any]:
    """A normalized row (``CALL_FIELDS``) starting at ``start_ms``; ``duration_ms`` sets its end."""
    duration = overrides.pop("duration_ms", 500.0)
    fields = dict(_TEMPLATE, event_id=f"e{start_ms}", start_time=start_ms, duration_ms=duration)
    fields["end_time"] = start_ms + int(duration)
    fields.update(overrides)
    return fields


def slo_file(text: str = SLOS) -> SloFile:
    return parse_slo_file(text)


def run(
    evaluator: BurnRateEvaluator,
    start_ms: int,
    minutes: int,
    make: Callable[[int, int], dict[str, Any]],
    index: int = 0,
) -> tuple[list[AlertEvent], int]:
    """``minutes`` of traffic (``make(index, start_ms)``), evaluated at the watermark every minute."""
    events: list[AlertEvent] = []
    for minute in range(minutes):
        for step in range(PER_MINUTE):
            evaluator.observe(make(index, start_ms + minute * MINUTE_MS + step * STEP_MS))
            index += 1
        events.extend(evaluator.evaluate())
    return events, index


def healthy(index: int, start: int) -> dict[str, Any]:
    return row(start)


def failing(index: int, start: int) -> dict[str, Any]:
    return row(start, status="error", error_type="RateLimitError", http_status=429)


def transitions(events: list[AlertEvent], slo: str) -> list[tuple[str, str]]:
    return [(e.rule, e.state) for e in events if e.slo == slo]


def test_fast_burn_fires_the_fast_rule_then_resolves_after_recovery() -> None:
    evaluator = BurnRateEvaluator(slo_file())
    quiet, index = run(evaluator, T0, 6 * 60, healthy)
    incident_start = T0 + 6 * HOUR_MS
    burning, index = run(evaluator, incident_start, 15, failing, index)
    recovery_start = incident_start + 15 * MINUTE_MS
    recovered, _ = run(evaluator, recovery_start, 60, healthy, index)

    assert quiet == []
    assert transitions(burning, "bot-availability") == [("fast", "firing")]
    assert transitions(recovered, "bot-availability") == [("fast", "resolved")]
    fired, resolved = burning[0], recovered[0]
    # 1h window: k failing minutes of 60 -> burn 100 k / 60 > 14.4 from the 9th minute on.
    assert incident_start + 8 * MINUTE_MS <= fired.fired_at < incident_start + 10 * MINUTE_MS
    assert fired.burn_rate_long > 14.4 and fired.burn_rate_short == pytest.approx(100.0)
    assert (fired.total_short, fired.good_short) == (5 * PER_MINUTE, 0)
    assert fired.resolved_at is None and fired.alert_id == f"bot-availability/fast/{fired.fired_at}"
    assert resolved.alert_id == fired.alert_id and resolved.fired_at == fired.fired_at
    assert recovery_start < resolved.resolved_at <= recovery_start + 6 * MINUTE_MS  # type: ignore[operator]
    assert resolved.burn_rate_short <= 14.4 < resolved.burn_rate_long
    assert evaluator.firing() == {}


def test_evaluate_returns_only_transitions() -> None:
    evaluator = BurnRateEvaluator(slo_file())
    run(evaluator, T0, 60, failing)
    assert evaluator.evaluate() == []
    assert set(evaluator.firing()) == {("bot-availability", "fast"), ("bot-availability", "slow")}


def test_slow_burn_fires_only_the_slow_rule() -> None:
    evaluator = BurnRateEvaluator(slo_file())

    def eight_percent(index: int, start: int) -> dict[str, Any]:
        # exactly 2 of every 25 calls fail: 8% in every 5-minute window (burn 8: above 6, below 14.4)
        return failing(index, start) if index % 25 in (0, 12) else row(start)

    quiet, index = run(evaluator, T0, 6 * 60, healthy)
    events, _ = run(evaluator, T0 + 6 * HOUR_MS, 8 * 60, eight_percent, index)

    assert quiet == []
    assert transitions(events, "bot-availability") == [("slow", "firing")]
    fired = events[0]
    assert fired.severity == "ticket" and (fired.long_window, fired.short_window) == ("6h", "30m")
    # The 6h window passes 6% after 6h * 6 / 8 = 4.5h of 8% errors.
    assert fired.fired_at == pytest.approx(T0 + 6 * HOUR_MS + 4.5 * HOUR_MS, abs=2 * MINUTE_MS)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_healthy_traffic_stays_quiet_for_hours(seed: int) -> None:
    rng = random.Random(seed)
    evaluator = BurnRateEvaluator(slo_file())

    def noisy(index: int, start: int) -> dict[str, Any]:
        # 0.2% errors against a 1% budget; latency and TTFT well inside their thresholds
        duration = rng.lognormvariate(6.0, 0.4)  # median ~400 ms
        ttft = rng.choice([None, duration * 0.3])
        cost = rng.uniform(0.0, 2 * 0.5 / (60 * PER_MINUTE))  # ~0.5 USD/h of a 1 USD/h budget
        if rng.random() < 0.002:
            return failing(index, start)
        return row(start, duration_ms=duration, time_to_first_token_ms=ttft, cost_usd=cost)

    events, _ = run(evaluator, T0, 8 * 60, noisy)
    assert events == []
    status = {(r["slo"], r["window"]): r for r in evaluator.status_rows()}
    assert status[("bot-availability", "6h")]["total"] == 6 * 60 * PER_MINUTE
    assert 0.0 < status[("bot-cost", "1h")]["burn_rate"] < 1.0


def test_budget_breach_fires_the_cost_rule_and_notes_unpriced_calls() -> None:
    evaluator = BurnRateEvaluator(slo_file())
    per_call_normal = 0.5 / (60 * PER_MINUTE)  # 0.5 USD/h
    per_call_breach = 3.0 / (60 * PER_MINUTE)  # 3 USD/h

    def priced(per_call: float) -> Callable[[int, int], dict[str, Any]]:
        def make(index: int, start: int) -> dict[str, Any]:
            cost = None if index % 10 == 0 else per_call  # 10% of calls have no known price
            return row(start, cost_usd=cost, span_kind="chain" if index % 2 else "llm")

        return make

    quiet, index = run(evaluator, T0, 120, priced(per_call_normal))
    events, _ = run(evaluator, T0 + 2 * HOUR_MS, 30, priced(per_call_breach), index)

    assert quiet == []
    assert transitions(events, "bot-cost") == [("budget", "firing")]
    fired = events[0]
    assert fired.sli_type == "cost" and fired.usd_per_hour == 1.0 and fired.objective is None
    assert fired.burn_rate_long > 1.0 and fired.burn_rate_short > 1.0
    assert fired.unpriced_long == fired.total_long // 10
    assert fired.good_long == fired.total_long - fired.unpriced_long
    assert fired.burn_rate_long == pytest.approx(fired.spent_usd_long / 1.0)  # 1h window, 1 USD/h
    assert fired.selector == {"service": "bot"}


ONE_RULE: Final = """
version: 1
defaults:
  allowed_lateness: 2m
slos:
  - name: bot-availability
    objective: 0.99
    sli: {type: availability}
    rules: [{name: fast, long_window: 1h, short_window: 5m, burn_rate: 14.4, severity: page}]
"""


@pytest.mark.parametrize(
    ("age_ms", "late", "in_short_window"),
    [
        pytest.param(3 * MINUTE_MS, False, True, id="inside-short-window"),
        pytest.param(61 * MINUTE_MS, False, False, id="held-inside-lateness"),
        pytest.param(62 * MINUTE_MS, True, False, id="beyond-lateness"),
        pytest.param(5 * HOUR_MS, True, False, id="hours-late"),
    ],
)
def test_late_events_update_their_window_or_are_counted(
    age_ms: int, late: bool, in_short_window: bool
) -> None:
    evaluator = BurnRateEvaluator(slo_file(ONE_RULE))
    run(evaluator, T0, 10 * 60, healthy)
    watermark = evaluator.watermark_ms
    assert watermark == T0 + 10 * HOUR_MS - STEP_MS + 500
    before = {r["window"]: r for r in evaluator.status_rows()}
    held = evaluator.stats().slos[0].minute_buckets

    evaluator.observe(failing(0, watermark - age_ms))
    after = {r["window"]: r for r in evaluator.status_rows()}

    # horizon = floor_minute(watermark - 2m) - 1h: buckets at or before it are late
    assert evaluator.late_events == int(late)
    assert evaluator.stats().slos[0].late_events == int(late)
    assert after["5m"]["total"] == before["5m"]["total"] + in_short_window
    assert after["5m"]["burn_rate"] > 0 if in_short_window else after["5m"]["burn_rate"] == 0
    assert evaluator.stats().slos[0].minute_buckets == held
    assert evaluator.watermark_ms == watermark


@pytest.mark.parametrize(
    ("start_ms", "now_ms", "counted"),
    [
        pytest.param(T0 + 6 * MINUTE_MS, T0 + 10 * MINUTE_MS, 1, id="oldest-bucket-start"),
        pytest.param(T0 + 6 * MINUTE_MS - 1, T0 + 10 * MINUTE_MS, 0, id="just-before-window"),
        pytest.param(T0 + 6 * MINUTE_MS - 1, T0 + 10 * MINUTE_MS - 1, 1, id="now-one-ms-earlier"),
        pytest.param(T0 + 10 * MINUTE_MS + 59_999, T0 + 10 * MINUTE_MS, 1, id="current-minute"),
        pytest.param(T0 + 11 * MINUTE_MS, T0 + 10 * MINUTE_MS + 59_999, 0, id="next-minute"),
    ],
)
def test_windows_at_exact_minute_boundaries(start_ms: int, now_ms: int, counted: int) -> None:
    evaluator = BurnRateEvaluator(slo_file(ONE_RULE))
    evaluator.observe(row(start_ms, duration_ms=1.0))
    short = next(r for r in evaluator.status_rows(now_ms) if r["window"] == "5m")
    assert (short["total"], short["evaluated_at"]) == (counted, now_ms)


@pytest.mark.parametrize(
    ("overrides", "matching"),
    [
        ({}, {"bot-availability", "bot-latency", "bot-cost"}),
        ({"time_to_first_token_ms": 100.0}, {"bot-availability", "bot-latency", "bot-ttft", "bot-cost"}),
        ({"span_kind": "tool"}, {"bot-cost"}),
        ({"service": "other"}, set()),
    ],
)  # fmt: skip
def test_selectors_and_ttft_rows(overrides: dict[str, Any], matching: set[str]) -> None:
    evaluator = BurnRateEvaluator(slo_file())
    evaluator.observe(row(T0, **overrides))
    counted = {r["slo"] for r in evaluator.status_rows() if r["total"] > 0}
    assert counted == matching


@pytest.mark.parametrize(
    ("request_model", "response_model", "matches"),
    [("gpt-4o", "gpt-4o-2024-08-06", True), ("", "gpt-4o", True), ("", "gpt-4o-mini", False),
     ("gpt-4o-mini", "gpt-4o", False)],
)  # fmt: skip
def test_model_selector_falls_back_to_the_response_model(
    request_model: str, response_model: str, matches: bool
) -> None:
    text = (
        "version: 1\nslos:\n  - {name: m, objective: 0.9, sli: {type: availability},"
        " selector: {provider: openai, model: gpt-4o}}\n"
    )
    evaluator = BurnRateEvaluator(slo_file(text))
    evaluator.observe(row(T0, request_model=request_model, response_model=response_model))
    assert evaluator.stats().slos[0].matched == int(matches)


def test_memory_is_bounded_by_the_longest_window() -> None:
    evaluator = BurnRateEvaluator(slo_file())
    run(evaluator, T0, 10 * 60, healthy)
    stats = {s.slo: s for s in evaluator.stats().slos}
    # buckets floor_minute(watermark - 2m) - longest < b <= floor_minute(watermark)
    assert stats["bot-availability"].minute_buckets == 6 * 60 + 2
    assert stats["bot-cost"].minute_buckets == 60 + 2
    assert stats["bot-availability"].hour_buckets == 10
    assert 0 < evaluator.memory_bytes()["bot-availability"] < 200_000


def test_budget_remaining_over_the_period_held() -> None:
    evaluator = BurnRateEvaluator(slo_file())
    run(evaluator, T0, 60, lambda i, s: failing(i, s) if i % 200 == 0 else row(s, cost_usd=0.01))
    status = {r["slo"]: r for r in evaluator.status_rows()}
    # 0.5% bad of a 1% budget: half the budget left; 12 USD of 720 USD (1 USD/h for 30 days) spent
    assert status["bot-availability"]["budget_remaining"] == pytest.approx(0.5)
    assert status["bot-cost"]["budget_remaining"] == pytest.approx(1 - 0.01 * 1194 / 720)
    assert status["bot-availability"]["budget_covered_ms"] == HOUR_MS
    assert status["bot-ttft"]["budget_remaining"] is None  # no TTFT measured yet


def test_a_clock_keeps_future_rows_from_moving_the_watermark() -> None:
    evaluator = BurnRateEvaluator(slo_file(), clock=lambda: T0 + HOUR_MS)
    evaluator.observe(row(T0))
    evaluator.observe(row(T0 + 365 * 24 * HOUR_MS))
    stats = evaluator.stats()
    assert (stats.future_events, stats.observed, stats.watermark_ms) == (1, 1, T0 + 500)


def test_nothing_to_evaluate_before_the_first_row() -> None:
    evaluator = BurnRateEvaluator(slo_file())
    assert evaluator.evaluate() == [] and evaluator.status_rows() == []
    assert len(evaluator.status_rows(T0)) == 3 * 2 * 2 + 1 * 2  # (SLO, rule, window)


@pytest.mark.parametrize("value", [-1, -MINUTE_MS])
def test_negative_lateness_is_rejected(value: int) -> None:
    with pytest.raises(ValueError, match=str(value)):
        BurnRateEvaluator(slo_file(), allowed_lateness_ms=value)


def _fired_event() -> AlertEvent:
    evaluator = BurnRateEvaluator(slo_file())
    events, _ = run(evaluator, T0, 10, failing)
    return events[0]


def test_alert_event_round_trips_and_has_the_table_fields() -> None:
    event = _fired_event()
    assert AlertEvent.decode(event.to_json()) == event
    assert tuple(event.to_row()) == ALERT_FIELDS
    assert decode_alerts_record(event.to_json()) == {ALERTS_TABLE: [event.to_row()]}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"state": "pending"}, "'pending'"),
        ({"fired_at": "soon"}, "'soon'"),
        ({"burn_rate_long": None}, "burn_rate_long"),
        ({"selector": ["bot"]}, "['bot']"),
        ({"resolved_at": 1.5}, "1.5"),
    ],
)
def test_decode_alert_names_the_bad_value(change: dict[str, Any], error: str) -> None:
    doc = orjson.loads(_fired_event().to_json()) | change
    with pytest.raises(ValueError, match=error.replace("[", r"\[").replace("]", r"\]")):
        decode_alert(orjson.dumps(doc))


@pytest.mark.parametrize(
    ("value", "error"),
    [(b"not json", "not JSON"), (b"[1]", "JSON object"), (b'{"alert_id": "x"}', "lacks field")],
)
def test_decode_alert_rejects_other_records(value: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        decode_alert(value)


def test_status_record_round_trips() -> None:
    evaluator = BurnRateEvaluator(slo_file())
    run(evaluator, T0, 5, healthy)
    rows = evaluator.status_rows()
    assert all(tuple(sorted(r)) == tuple(sorted(SLO_STATUS_FIELDS)) for r in rows)
    assert decode_alerts_record(encode_status(rows)) == {SLO_STATUS_TABLE: rows}
    with pytest.raises(ValueError, match="lacks field"):
        decode_alerts_record(encode_status([{"slo": "x"}]))
