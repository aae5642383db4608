"""The demo scenario's incidents each leave their mark on the traffic."""

from __future__ import annotations

from datetime import timedelta

import pytest

from producers.events import LlmCallEvent
from producers.simulator import Simulator, demo_scenario
from tests.clock import HOUR, Clock

START = Clock.read().ago(hours=2, step=HOUR)


@pytest.fixture(scope="module")
def events() -> list[LlmCallEvent]:
    return list(Simulator(11, demo_scenario()).events(20_000, START, START + timedelta(hours=1)))


def _share(events: list[LlmCallEvent], service: str, lo: float, hi: float, pred: object) -> float:
    span = timedelta(hours=1)
    chosen = [
        e
        for e in events
        if e.service == service
        and e.span_kind == "llm"
        and START + lo * span <= e.start_time < START + hi * span
    ]
    assert chosen, f"no llm calls of {service} in [{lo}, {hi})"
    return sum(1 for e in chosen if pred(e)) / len(chosen)  # type: ignore[operator]


def test_429_storm_hits_search_rag_only_inside_its_window(events: list[LlmCallEvent]) -> None:
    def is_429(e: LlmCallEvent) -> bool:
        return e.http_status == 429

    assert _share(events, "search-rag", 0.3, 0.45, is_429) > 0.3
    assert _share(events, "search-rag", 0.55, 0.95, is_429) < 0.1


def test_summarizer_moves_to_the_deprecated_model(events: list[LlmCallEvent]) -> None:
    def deprecated(e: LlmCallEvent) -> bool:
        return e.request_model == "gemini-2.0-flash"

    assert _share(events, "summarizer", 0.0, 0.09, deprecated) == 0.0
    assert _share(events, "summarizer", 0.2, 1.0, deprecated) == 1.0


def test_code_agent_outage_raises_server_errors(events: list[LlmCallEvent]) -> None:
    def failed(e: LlmCallEvent) -> bool:
        return e.status == "error"

    assert _share(events, "code-agent", 0.72, 0.88, failed) > 0.2
    assert _share(events, "code-agent", 0.0, 0.65, failed) < 0.1
