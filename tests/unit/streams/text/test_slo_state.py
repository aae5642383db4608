"""Guardrail SLOs in the analyzer: each source record counts once, and a restart keeps the incident."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from producers.events import SpanKind, TextCapture
from producers.texts import TextRecord
from streams.ingest.validate import SourcePosition
from streams.slo.alerts import AlertState
from streams.slo.config import MINUTE_MS, parse_slo_file
from streams.state import decode_state
from streams.text.consumer import slo_row
from streams.text.findings import InjectionVerdict
from streams.text.records import FieldAnalysis, TextAnalysis
from streams.text.slo_state import GuardrailSlos, state_key
from tests.clock import Clock

SLOS = """
version: 1
slos:
  - name: support-injection
    objective: 0.995
    sli: {type: guardrail, category: prompt_injection}
    selector: {service: support-bot}
"""
KEY = state_key("llmwatch-analyze")
TOPIC = "llmwatch.texts"


def _rows(start_ms: int, minute: int, attack_share: int) -> list[dict[str, object]]:
    """Twenty analysed calls in one minute; ``attack_share`` of every 20 flagged as injection."""
    rows = []
    for step in range(20):
        ms = start_ms + minute * MINUTE_MS + step * 1_000
        record = TextRecord(
            capture=TextCapture.ANALYZE,
            event_id=f"e{minute}-{step}",
            service="support-bot",
            span_kind=SpanKind.LLM,
            start_time=datetime.fromtimestamp(ms / 1000, tz=UTC),
            input_text="hello",
        )
        attack = step < attack_share
        verdict = InjectionVerdict(0.97 if attack else 0.01, attack, "instruction_override")
        rows.append(slo_row(TextAnalysis(record, (FieldAnalysis("input", injection=verdict),))))
    return rows


def _slos(clock: Clock) -> GuardrailSlos:
    _calls, guards = parse_slo_file(SLOS).split_guardrails()
    assert guards is not None
    return GuardrailSlos(guards, clock=lambda: clock.now_ms)


def _start(clock: Clock) -> int:
    return (clock.now_ms - 60 * MINUTE_MS) // MINUTE_MS * MINUTE_MS


def test_a_record_fed_twice_counts_once(clock: Clock) -> None:
    slos, start = _slos(clock), _start(clock)
    position = SourcePosition(TOPIC, 0, 7)
    assert slos.observe(position, _rows(start, 0, 0))
    assert not slos.observe(position, _rows(start, 0, 0))  # a replay after a rebalance
    assert not slos.observe(SourcePosition(TOPIC, 0, 3), _rows(start, 1, 0))
    assert slos.observe(SourcePosition(TOPIC, 1, 0), _rows(start, 1, 0))  # another partition
    assert slos.replayed_records == 2
    rows = slos.status_rows(start + 2 * MINUTE_MS)
    (long,) = [r for r in rows if (r["rule"], r["window_kind"]) == ("fast", "long")]
    assert long["total"] == 40


def test_a_restart_keeps_the_firing_alert_and_resolves_it_once(clock: Clock) -> None:
    slos, start = _slos(clock), _start(clock)
    fired = []
    for minute in range(40):
        slos.observe(
            SourcePosition(TOPIC, 0, minute), _rows(start, minute, 10 if minute >= 30 else 0)
        )
        fired += slos.evaluate(start + (minute + 1) * MINUTE_MS)
    firing = [a for a in fired if a.state == AlertState.FIRING]
    assert firing, "the storm must fire the fast rule"
    record = slos.state_record(KEY, clock.now_ms)
    assert record is not None
    assert slos.state_record(KEY, clock.now_ms) is None  # unchanged since: nothing to publish

    restored = _slos(clock)
    assert restored.load_state(decode_state(record, KEY).body) == []
    # Re-reading the records the state already counted feeds nothing.
    assert not restored.observe(SourcePosition(TOPIC, 0, 39), _rows(start, 39, 10))
    # Still burning after the restart: no second FIRING event (a new alert id) for the same incident.
    assert restored.evaluate(start + 40 * MINUTE_MS) == []
    resolved = []
    for minute in range(40, 130):
        restored.observe(SourcePosition(TOPIC, 0, minute), _rows(start, minute, 0))
        resolved += restored.evaluate(start + (minute + 1) * MINUTE_MS)
    ends = [a for a in resolved if a.state == AlertState.RESOLVED]
    assert {a.alert_id for a in ends} <= {a.alert_id for a in firing}
    assert len(ends) == len({(a.slo, a.rule) for a in firing})


def test_a_malformed_state_names_the_bad_part_and_changes_nothing(clock: Clock) -> None:
    slos = _slos(clock)
    slos.observe(SourcePosition(TOPIC, 0, 0), _rows(_start(clock), 0, 0))
    before = orjson.dumps(slos.evaluator.dump())
    with pytest.raises(ValueError, match="topic, partition, next"):
        slos.load_state({"offsets": [["t", -1, 2]], "evaluator": None})
    assert orjson.dumps(slos.evaluator.dump()) == before


def test_the_state_key_never_collides_with_the_worker() -> None:
    assert state_key("llmwatch-worker") != "llmwatch-worker"
    assert KEY.startswith("llmwatch-analyze")
