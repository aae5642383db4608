"""observe_record (the worker's per-record path) counts exactly what observe does row by row."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from producers.simulator import Simulator, default_scenario
from producers.wire import encode_batch_raw
from streams.analytics.record import RecordAnalytics
from streams.ingest.pipeline import RecordProcessor
from streams.ingest.validate import SourcePosition
from streams.slo.burnrate import BurnRateEvaluator
from streams.slo.config import HOUR_MS, load_slo_file

SLO_FILE = Path(__file__).parents[4] / "config" / "slos.yaml"


def _records(
    seed: int, events: int = 3_000, per_record: int = 250
) -> list[list[dict[str, object]]]:
    now = datetime.now(UTC)
    sim = Simulator(seed, default_scenario())
    encoded = [e.to_json() for e in sim.events(events, now - timedelta(minutes=30), now)]
    processor = RecordProcessor(RecordAnalytics())
    now_ms = time.time_ns() // 1_000_000
    return [
        processor.process(
            encode_batch_raw(encoded[i : i + per_record]), SourcePosition("t", 0, i), now_ms
        ).rows
        for i in range(0, len(encoded), per_record)
    ]


def _same(a: Any, b: Any) -> None:
    """Equal, floats within 1e-12 relative: costs are summed per bucket first, in another order."""
    assert a == pytest.approx(b, rel=1e-12) if isinstance(a, float) else type(a) is type(b)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif not isinstance(a, float):
        assert a == b


def _pair(now_ms: int) -> tuple[BurnRateEvaluator, BurnRateEvaluator]:
    slos = load_slo_file(SLO_FILE)
    return (
        BurnRateEvaluator(slos, clock=lambda: now_ms),
        BurnRateEvaluator(slos, clock=lambda: now_ms),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_simulated_traffic_gives_identical_state(seed: int) -> None:
    now_ms = time.time_ns() // 1_000_000
    by_row, by_record = _pair(now_ms)
    for rows in _records(seed):
        by_row.observe_many(rows)
        by_record.observe_record(rows)
    _same(by_record.dump(), by_row.dump())
    assert by_record.stats() == by_row.stats()
    assert by_record.evaluate(now_ms) == by_row.evaluate(now_ms)
    _same(by_record.status_rows(now_ms), by_row.status_rows(now_ms))
    assert by_row.stats().observed == sum(len(r) for r in _records(seed))


def test_future_and_late_rows_are_counted_alike() -> None:
    now_ms = time.time_ns() // 1_000_000
    by_row, by_record = _pair(now_ms)
    rows = _records(4, events=400, per_record=400)[0]
    shifted = [
        {**rows[0], "start_time": now_ms + 2 * HOUR_MS, "end_time": now_ms + 2 * HOUR_MS + 5},
        {
            **rows[1],
            "start_time": now_ms - 40 * 24 * HOUR_MS,
            "end_time": now_ms - 40 * 24 * HOUR_MS,
        },
        *rows[2:],
    ]
    by_row.observe_many(shifted)
    by_record.observe_record(shifted)
    _same(by_record.dump(), by_row.dump())
    stats = by_record.stats()
    _same(stats, by_row.stats())
    assert stats.future_events == 1 and stats.late_events == 1


def test_rows_pruned_inside_one_record_leave_the_same_buckets() -> None:
    # Row by row, the old row is counted and then pruned by the new one; per record it is late.
    now_ms = time.time_ns() // 1_000_000
    by_row, by_record = _pair(now_ms)
    rows = _records(5, events=200, per_record=200)[0]
    old = {**rows[0], "start_time": now_ms - 7 * HOUR_MS, "end_time": now_ms - 7 * HOUR_MS + 10}
    record = [old, *rows[1:]]
    by_row.observe_many(record)
    by_record.observe_record(record)
    _same(by_record.dump(), by_row.dump())
    assert by_record.evaluate(now_ms) == by_row.evaluate(now_ms)
