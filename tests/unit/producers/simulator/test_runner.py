"""run_simulation on a fake clock: counts, pacing, live timestamps, incident time, validation."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest

from producers.events import LlmCallEvent
from producers.simulator import (
    INCIDENT_NEW_VERSION,
    INCIDENT_SERVICE,
    PROMPT_INCIDENT_NAME,
    SimulationReport,
    default_scenario,
    run_simulation,
)
from producers.simulator.runner import MIN_SLEEP_S, PROGRESS_EVERY, SLEEP_SLICE_S
from tests.clock import Clock

BASE = Clock.read().ago(hours=1)


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def now(self) -> datetime:
        return BASE + timedelta(seconds=self.t)


class Recorder:
    """An emit callback that keeps events and the fake time each one was emitted at."""

    def __init__(self, clock: FakeClock, accept: bool = True) -> None:
        self.clock = clock
        self.accept = accept
        self.events: list[LlmCallEvent] = []
        self.emitted_at: list[datetime] = []

    def __call__(self, event: LlmCallEvent) -> bool:
        self.events.append(event)
        self.emitted_at.append(self.clock.now())
        return self.accept


def _run(events: int, rate: float, **kwargs: Any) -> tuple[SimulationReport, Recorder, FakeClock]:
    fake = FakeClock()
    recorder = Recorder(fake, kwargs.pop("accept", True))
    report = run_simulation(
        recorder,
        events=events,
        rate=rate,
        clock=fake.clock,
        sleep=fake.sleep,
        now=fake.now,
        **kwargs,
    )
    return report, recorder, fake


@pytest.mark.parametrize("events", [1, 9, 1_234])
def test_emits_exactly_the_requested_number(events: int) -> None:
    report, recorder, _ = _run(events, rate=0)
    assert len(recorder.events) == events
    assert report.emitted == report.accepted == events


def test_counts_only_accepted_events() -> None:
    report, _, _ = _run(300, rate=0, accept=False)
    assert (report.emitted, report.accepted, report.rejected) == (300, 0, 300)


def test_report_counts_services_and_models() -> None:
    report, recorder, _ = _run(2_000, rate=0)
    assert sum(report.by_service.values()) == 2_000
    models = [e.request_model for e in recorder.events if e.request_model is not None]
    assert sum(report.by_model.values()) == len(models)
    assert report.by_model["gpt-4o-mini"] == models.count("gpt-4o-mini")


@pytest.mark.parametrize("rate", [0.0, -1.0, math.inf])
def test_unpaced_rates_never_sleep(rate: float) -> None:
    _, _, fake = _run(500, rate=rate)
    assert fake.sleeps == []


@pytest.mark.parametrize(("events", "rate"), [(200, 50.0), (40, 7.3), (5_000, 100_000.0)])
def test_paces_to_the_rate_in_short_sleeps(events: int, rate: float) -> None:
    # Also a regression test: float token arithmetic once asked for sleeps too short to move the clock.
    _, _, fake = _run(events, rate=rate)
    assert (events - 1) / rate <= fake.t <= events / rate + MIN_SLEEP_S
    assert fake.sleeps and MIN_SLEEP_S <= min(fake.sleeps) <= max(fake.sleeps) <= SLEEP_SLICE_S


def test_spreads_events_over_time() -> None:
    _, recorder, _ = _run(200, rate=50.0)
    assert recorder.emitted_at[100] - recorder.emitted_at[0] >= timedelta(seconds=1.99)


def test_timestamps_are_live_and_never_in_the_future() -> None:
    _, recorder, _ = _run(300, rate=20.0)
    pairs = zip(recorder.events, recorder.emitted_at, strict=True)
    assert all(event.end_time <= at for event, at in pairs)
    assert recorder.events[-1].end_time > BASE + timedelta(seconds=10)


def test_parents_are_emitted_before_children() -> None:
    _, recorder, _ = _run(1_000, rate=0)
    seen: set[str] = set()
    for event in recorder.events:
        assert event.parent_span_id is None or event.parent_span_id in seen
        seen.add(event.span_id)


def test_reports_when_the_incident_started() -> None:
    report, recorder, _ = _run(1_000, rate=100.0)
    started = report.incident_starts[PROMPT_INCIDENT_NAME]
    assert report.incident_started_at == started
    assert BASE + timedelta(seconds=5.9) <= started <= BASE + timedelta(seconds=6.2)
    switched = [e for e in recorder.events if e.prompt_version == INCIDENT_NEW_VERSION]
    assert switched and {e.service for e in switched} == {INCIDENT_SERVICE}


def test_no_incident_start_without_incidents() -> None:
    report, _, _ = _run(200, rate=0, scenario=default_scenario(incident_start=None))
    assert report.incident_starts == {}
    assert report.incident_started_at is None


def test_calls_on_progress_periodically_and_at_the_end() -> None:
    calls: list[int] = []
    _run(2 * PROGRESS_EVERY + 7, rate=0, on_progress=calls.append)
    assert calls == [PROGRESS_EVERY, 2 * PROGRESS_EVERY, 2 * PROGRESS_EVERY + 7]


def test_same_seed_and_clock_reproduce_the_run() -> None:
    first = [e.to_json() for e in _run(500, rate=10.0, seed=3)[1].events]
    second = [e.to_json() for e in _run(500, rate=10.0, seed=3)[1].events]
    assert first == second


def test_emit_errors_propagate() -> None:
    def failing(event: LlmCallEvent) -> bool:
        raise RuntimeError(f"broken sink for {event.service}")

    with pytest.raises(RuntimeError, match="broken sink"):
        run_simulation(failing, events=5, rate=0)


@pytest.mark.parametrize("events", [0, -3, 2.5, True])
def test_rejects_bad_event_counts(events: Any) -> None:
    with pytest.raises(ValueError, match=f"got {events!r}"):
        run_simulation(lambda _: True, events=events, rate=0)


def test_rejects_nan_rate() -> None:
    with pytest.raises(ValueError, match="got nan"):
        run_simulation(lambda _: True, events=5, rate=math.nan)
