from __future__ import annotations

import dataclasses

import pytest

from sinks.stats import LATENCY_WINDOW, SinkStats, StatsRecorder


def test_snapshot_counts_rows_per_table_and_batches() -> None:
    recorder = StatsRecorder()
    recorder.inserted("llm_calls", 100, 5.0)
    recorder.inserted("llm_calls", 50, 7.0)
    recorder.inserted("llm_dlq", 1, 1.0)
    recorder.count("records_consumed", 12)
    stats = recorder.snapshot()
    assert dict(stats.rows_written) == {"llm_calls": 150, "llm_dlq": 1}
    assert (stats.batches, stats.records_consumed, stats.last_insert_ms) == (3, 12, 1.0)
    assert stats.written("llm_calls") == 150
    assert stats.written("other") == 0


def test_snapshot_does_not_change_afterwards() -> None:
    recorder = StatsRecorder()
    recorder.inserted("t", 1, 1.0)
    stats = recorder.snapshot()
    recorder.inserted("t", 1, 1.0)
    assert stats.written("t") == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.batches = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        stats.rows_written["t"] = 5  # type: ignore[index]


@pytest.mark.parametrize(
    ("latencies", "p99"),
    [([], None), ([3.0], 3.0), ([float(i) for i in range(1, 101)], 99.0)],
)
def test_p99_insert_latency(latencies: list[float], p99: float | None) -> None:
    recorder = StatsRecorder()
    for ms in latencies:
        recorder.inserted("t", 1, ms)
    assert recorder.snapshot().p99_insert_ms == p99


def test_p99_covers_only_the_recent_window() -> None:
    recorder = StatsRecorder()
    recorder.inserted("t", 1, 10_000.0)
    for _ in range(LATENCY_WINDOW):
        recorder.inserted("t", 1, 2.0)
    assert recorder.snapshot().p99_insert_ms == 2.0


def test_unknown_counter_is_refused() -> None:
    with pytest.raises(KeyError, match="'rows_lost'"):
        StatsRecorder().count("rows_lost")


def test_default_stats_are_zero() -> None:
    stats = SinkStats()
    assert (stats.records_consumed, stats.batches, stats.paused) == (0, 0, False)
