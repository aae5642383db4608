"""Simulated text: known shares of PII, attacks and toxic text, and every planted PII value reported."""

from __future__ import annotations

import pytest

from producers.events import LlmCallEvent, SpanKind
from producers.simulator import TextMix, run_simulation
from tests.clock import Clock

EVENTS = 3_000


def _run(mix: TextMix | None, seed: int = 5) -> tuple[list[LlmCallEvent], object]:
    sent: list[LlmCallEvent] = []

    def emit(event: LlmCallEvent) -> bool:
        sent.append(event)
        return True

    start = Clock.read().now
    report = run_simulation(emit, events=EVENTS, rate=0, seed=seed, now=lambda: start, texts=mix)
    return sent, report


def test_without_a_mix_no_event_carries_text() -> None:
    sent, _report = _run(None)
    assert all(e.input_text is None and e.output_text is None for e in sent)


def test_llm_and_retrieval_spans_carry_text_at_the_mix_rates() -> None:
    mix = TextMix(pii=0.2, attack=0.1, indirect=0.3, toxic=0.05)
    sent, report = _run(mix)
    llm = [e for e in sent if e.span_kind == SpanKind.LLM]
    retrieval = [e for e in sent if e.span_kind == SpanKind.RETRIEVAL]
    assert llm and retrieval and all(e.input_text and e.output_text for e in llm + retrieval)
    planted = report.planted  # type: ignore[attr-defined]
    share = {
        kind: sum(n for (_s, k), n in planted.items() if k == kind) / len(llm)
        for kind in ("pii", "attack", "toxic")
    }
    assert share["pii"] == pytest.approx(0.2, abs=0.04)
    assert share["attack"] == pytest.approx(0.1, abs=0.03)
    assert share["toxic"] == pytest.approx(0.05, abs=0.02)
    indirect = sum(n for (_s, k), n in planted.items() if k == "indirect") / len(retrieval)
    assert indirect == pytest.approx(0.3, abs=0.08)
    values = report.pii_values  # type: ignore[attr-defined]
    texts = " ".join(e.input_text or "" for e in llm)
    assert values and all(value in texts for value in values)


def test_same_seed_same_texts() -> None:
    first, _ = _run(TextMix(), seed=9)
    again, _ = _run(TextMix(), seed=9)
    assert [e.input_text for e in first] == [e.input_text for e in again]


def test_a_bad_share_names_the_value() -> None:
    with pytest.raises(ValueError, match=r"text mix toxic must be in \[0, 1\], got 1.5"):
        TextMix(toxic=1.5)
