"""Guardrail SLIs: validated like the others, split off the worker, and burned by flagged calls."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from producers.texts import TextRecord
from streams.slo.alerts import AlertState
from streams.slo.burnrate import BurnRateEvaluator
from streams.slo.config import MINUTE_MS, SloFileError, parse_slo_file
from streams.text.consumer import slo_row
from streams.text.findings import InjectionVerdict
from streams.text.records import FieldAnalysis, TextAnalysis
from tests.clock import Clock

SLOS = """
version: 1
slos:
  - name: support-latency
    objective: 0.99
    sli: {type: latency, threshold_ms: 2000}
    selector: {service: support-bot}
  - name: support-injection
    description: prompt-injection attempts below 0.5% of analysed calls
    objective: 0.995
    sli: {type: guardrail, category: prompt_injection}
    selector: {service: support-bot, span_kind: null}
"""


def _analysis(start_ms: int, index: int, attack: bool) -> TextAnalysis:
    record = TextRecord(
        capture="analyze",
        event_id=f"e{index}",
        service="support-bot",
        span_kind="llm",
        start_time=datetime.fromtimestamp(start_ms / 1000, tz=UTC),
        input_text="hello",
    )
    score = 0.97 if attack else 0.01
    verdict = InjectionVerdict(score, attack, "instruction_override" if attack else None)
    return TextAnalysis(record, (FieldAnalysis("input", injection=verdict),))


def test_split_gives_the_worker_call_slos_and_the_analyzer_guardrail_slos() -> None:
    calls, guards = parse_slo_file(SLOS).split_guardrails()
    assert calls is not None and [s.name for s in calls.slos] == ["support-latency"]
    assert guards is not None and [s.name for s in guards.slos] == ["support-injection"]
    only_calls, none = calls.split_guardrails()
    assert none is None and only_calls is not None


@pytest.mark.parametrize(
    ("sli", "selector", "message"),
    [
        ("{type: guardrail, category: spam}", "{}", "spam"),
        ("{type: guardrail, category: pii}", "{provider: openai}", "['provider']"),
        ("{type: guardrail}", "{}", "category"),
    ],
    ids=["unknown-category", "provider-selector", "no-category"],
)
def test_bad_guardrail_slis_name_the_value(sli: str, selector: str, message: str) -> None:
    text = f"version: 1\nslos:\n  - name: g\n    objective: 0.99\n    sli: {sli}\n    selector: {selector}\n"
    with pytest.raises(SloFileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_slo_file(text)


def test_an_injection_storm_fires_the_guardrail_slo_and_call_rows_never_count(
    clock: Clock,
) -> None:
    _calls, guards = parse_slo_file(SLOS).split_guardrails()
    assert guards is not None
    start = (clock.now_ms - 90 * MINUTE_MS) // MINUTE_MS * MINUTE_MS
    evaluator = BurnRateEvaluator(guards)
    # A call row from the worker (no guardrail flags) is not an analysed text: not counted.
    evaluator.observe(
        {**slo_row(_analysis(start + 30 * MINUTE_MS, 0, False)), "guardrail_flags": None}
    )
    fired = []
    for minute in range(60):
        for step in range(20):
            ms = start + minute * MINUTE_MS + step * 1_000
            attack = minute >= 45 and step % 2 == 0  # half the calls in the last 15 minutes
            evaluator.observe(slo_row(_analysis(ms, minute * 20 + step, attack)))
        fired += evaluator.evaluate(start + (minute + 1) * MINUTE_MS)
    assert ("fast", AlertState.FIRING) in {(a.rule, a.state) for a in fired}
    rows = evaluator.status_rows(start + 60 * MINUTE_MS)
    (long,) = [r for r in rows if (r["rule"], r["window_kind"]) == ("fast", "long")]
    # The hour ending in the minute of T: minutes 1-59 of the traffic; the call row is not counted.
    assert (long["total"], long["good"]) == (59 * 20, 59 * 20 - 15 * 10)
    assert long["sli_type"] == "guardrail"
