"""Counters and the rate-limited drop warning."""

from __future__ import annotations

import dataclasses

import pytest

from producers.sdk.stats import Counters, DropReporter, PublisherStats


def test_snapshot_is_frozen_and_exact() -> None:
    counters = Counters()
    counters.add("emitted", 5)
    counters.add("delivered", 3)
    counters.drop("delivery_failed", 1, "timed out")
    snap = counters.snapshot()
    assert (snap.emitted, snap.delivered, snap.lost, snap.in_flight) == (5, 3, 1, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.emitted = 0  # type: ignore[misc]


def test_rejected_sums_the_not_accepted_kinds() -> None:
    stats = PublisherStats(
        dropped_queue_full=1, dropped_invalid=2, dropped_closed=4, dropped_queue_bytes=8
    )
    assert stats.rejected == 15


def test_accept_checks_both_bounds_and_both_drops_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counters = Counters()
    assert counters.accept(60, max_events=2, max_bytes=100)
    assert not counters.accept(41, max_events=2, max_bytes=100)
    counters.release(60, 1)
    assert counters.accept(100, max_events=2, max_bytes=100)
    assert not counters.accept(0, max_events=1, max_bytes=100)  # the count bound binds too
    DropReporter(counters).report(now=0.0)
    assert counters.snapshot() == PublisherStats(
        emitted=2, dropped_queue_bytes=1, dropped_queue_full=1, held_events=1, held_bytes=100
    )
    assert [r.getMessage() for r in caplog.records] == [
        "llmwatch: dropped 1 events (1 in total): local queue full",
        "llmwatch: dropped 1 events (1 in total): local queue over its byte limit",
    ]


def test_reporter_warns_once_per_interval_with_counts(caplog: pytest.LogCaptureFixture) -> None:
    counters = Counters()
    reporter = DropReporter(counters, interval_s=10.0)
    counters.drop("dropped_queue_full", 3, "full")
    reporter.report(now=100.0)
    counters.drop("dropped_queue_full", 2, "full")
    reporter.report(now=105.0)  # inside the interval: silent
    reporter.report(now=110.0)
    reporter.report(now=130.0)  # nothing new: silent
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "llmwatch: dropped 3 events (3 in total): local queue full; last: full",
        "llmwatch: dropped 2 events (5 in total): local queue full; last: full",
    ]
    assert all(r.levelname == "WARNING" for r in caplog.records)
