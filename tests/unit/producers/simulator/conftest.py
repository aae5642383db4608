"""One shared sample of simulated traffic (generated once per test session)."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import pytest

from producers.events import LlmCallEvent
from producers.simulator import Simulator
from tests.clock import HOUR, Clock

SAMPLE_SEED: Final = 11
SAMPLE_EVENTS: Final = 20_000
SAMPLE_START: Final = Clock.read().ago(hours=3, step=HOUR)  # relative to the run's clock
SAMPLE_END: Final = SAMPLE_START + timedelta(hours=2)


@pytest.fixture(scope="session")
def sample() -> list[LlmCallEvent]:
    """20,000 events of the default scenario over two hours (incident from 60% of the run)."""
    return list(Simulator(SAMPLE_SEED).events(SAMPLE_EVENTS, SAMPLE_START, SAMPLE_END))


@pytest.fixture(scope="session")
def llm_spans(sample: list[LlmCallEvent]) -> list[LlmCallEvent]:
    return [event for event in sample if event.span_kind == "llm"]
