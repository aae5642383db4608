"""Shape drift over event-time windows: nothing before the trailing reference is full, a window closes
after its grace, a shift is flagged in the window it starts, a pinned baseline is used when given, and
a replay of the same calls gives the same rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from streams.drift.monitor import DRIFT_FIELDS, DriftConfig, ShapeDriftMonitor
from streams.drift.shape import ShapeWindow

WINDOW_MS = 60_000
CONFIG = DriftConfig(window_ms=WINDOW_MS, reference_windows=3, grace_ms=5_000, min_samples=100)
SCOPE = {"service": "support-bot", "request_model": "gpt-4o-mini", "span_kind": "llm"}


def _calls(
    rng: np.random.Generator, start_ms: int, n: int, longer: float = 1.0
) -> list[dict[str, Any]]:
    times = np.sort(rng.integers(start_ms, start_ms + WINDOW_MS, n))
    return [
        {**SCOPE, "start_time": int(t), "output_tokens": int(rng.lognormal(np.log(250 * longer), 0.6)),
         "input_tokens": int(rng.lognormal(np.log(1500), 0.5)), "status": "ok",
         "duration_ms": float(rng.lognormal(np.log(900), 0.5)), "finish_reasons": ["stop"]}
        for t in times
    ]  # fmt: skip


def _run(
    monitor: ShapeDriftMonitor, origin: int, longer_from: int, seed: int
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for index in range(8):
        longer = 1.4 if index >= longer_from else 1.0
        for call in _calls(rng, origin + index * WINDOW_MS, 400, longer):
            monitor.add(call)
            rows.extend(monitor.close_due(evaluated_at_ms=origin))
    return rows


@pytest.fixture()
def origin(now_ms: int) -> int:
    return now_ms - now_ms % WINDOW_MS - 20 * WINDOW_MS


def test_a_shift_is_flagged_in_the_window_it_starts(origin: int) -> None:
    rows = _run(ShapeDriftMonitor(CONFIG), origin, longer_from=5, seed=1)
    # Windows 0-2 fill the trailing reference; 3 and 4 are compared (and pass); 5 shifts; 6 is closed
    # by window 7's calls; 7 stays open.
    assert sorted({r["window_start"] for r in rows}) == [
        origin + i * WINDOW_MS for i in (3, 4, 5, 6)
    ]
    assert set(rows[0]) == set(DRIFT_FIELDS)
    flagged = {(r["window_start"], r["feature"]) for r in rows if r["flagged"]}
    assert (origin + 5 * WINDOW_MS, "output_tokens") in flagged
    assert all(start >= origin + 5 * WINDOW_MS for start, _feature in flagged)
    shifted = next(r for r in rows if r["window_start"] == origin + 5 * WINDOW_MS
                   and r["feature"] == "output_tokens")  # fmt: skip
    assert shifted["reference_kind"] == "trailing"
    assert shifted["reference_start"] == origin + 2 * WINDOW_MS
    assert shifted["reference_end"] == origin + 5 * WINDOW_MS
    assert shifted["reference_n"] == 1_200 and shifted["current_n"] == 400


def test_a_pinned_baseline_is_the_reference(origin: int) -> None:
    rng = np.random.default_rng(9)
    baseline = ShapeWindow()
    baseline.add_all(_calls(rng, origin - 100 * WINDOW_MS, 1_000))
    monitor = ShapeDriftMonitor(CONFIG, pinned=baseline, pinned_span=(1, 2))
    rows = _run(monitor, origin, longer_from=99, seed=2)
    assert {r["window_start"] for r in rows} == {origin + i * WINDOW_MS for i in range(7)}
    assert {r["reference_kind"] for r in rows} == {"pinned"}
    assert not any(r["flagged"] for r in rows)


def test_late_calls_are_counted_and_dropped(origin: int) -> None:
    monitor = ShapeDriftMonitor(CONFIG)
    rows = _run(monitor, origin, longer_from=99, seed=3)
    assert rows
    monitor.add({**SCOPE, "start_time": origin, "output_tokens": 10})
    assert monitor.late == 1


def test_a_replay_gives_the_same_rows(origin: int) -> None:
    first = _run(ShapeDriftMonitor(CONFIG), origin, longer_from=5, seed=4)
    second = _run(ShapeDriftMonitor(CONFIG), origin, longer_from=5, seed=4)
    assert first == second


@pytest.mark.parametrize("field", ["window_ms", "reference_windows", "min_samples"])
def test_bad_config_names_the_value(field: str) -> None:
    with pytest.raises(ValueError, match=f"{field} must be >= 1, got 0"):
        DriftConfig(**{field: 0})


def test_a_partition_read_ahead_closes_nothing_until_the_others_catch_up(origin: int) -> None:
    rng = np.random.default_rng(6)
    calls = [c for i in range(6) for c in _calls(rng, origin + i * WINDOW_MS, 300)]
    monitor = ShapeDriftMonitor(CONFIG)
    monitor.expect(0)
    monitor.expect(1)
    rows = []
    for call in calls[0::2]:  # partition 0 first, all of it
        monitor.add(call, 0)
        rows += monitor.close_due(origin)
    assert rows == [] and monitor.late == 0  # partition 1 has not delivered: nothing closed
    for call in calls[1::2]:
        monitor.add(call, 1)
        rows += monitor.close_due(origin)
    assert monitor.late == 0
    assert {r["window_start"] for r in rows} == {origin + i * WINDOW_MS for i in (3, 4)}
    monitor.idle(0)
    monitor.idle(1)  # both read to their end: the watermark is the newest call seen
    assert monitor.close_due(origin) == []  # window 5 is not past its grace yet
