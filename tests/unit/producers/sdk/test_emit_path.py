"""What ``emit`` does on the app's thread (queue a reference: no encoding, no lock) and how the SDK's
thread takes over: bounds, drops, flush order, events left when closing. Broker down throughout."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

import pytest

from producers.events import LlmCallEvent
from producers.sdk import Publisher, PublisherStats, send_loop
from producers.sdk.encoding import encode_event
from producers.sdk.send_loop import MAX_EVENTS_PER_TURN, Barrier
from producers.sdk.sender import THREAD_NAME
from producers.sdk.stats import Counters
from tests.unit.producers.sdk.conftest import QUIET, all_checked, event

MakePublisher = Callable[..., Publisher]

# Generous: only a deadlock (emit waiting for a lock held by the test) would take this long.
DEADLOCK_TIMEOUT_S: Final = 10.0
QUEUE_MAX: Final = 8


def _on_sdk_thread() -> bool:
    return threading.current_thread().name.startswith(THREAD_NAME)


def _sdk_thread_takes_nothing(publisher: Publisher, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the SDK's thread from taking events out of the inbox (other threads still can)."""
    counters = publisher._sender.counters
    take = counters.take
    monkeypatch.setattr(counters, "take", lambda limit: [] if _on_sdk_thread() else take(limit))


def test_emit_never_encodes_on_the_callers_thread(
    make_publisher: MakePublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded_on: list[str] = []

    def recording_encode(item: object, defaults: Any) -> Any:
        encoded_on.append(threading.current_thread().name)
        return encode_event(item, defaults)

    monkeypatch.setattr(send_loop, "encode_event", recording_encode)
    publisher = make_publisher()
    assert publisher.emit(event())
    assert publisher.emit(LlmCallEvent.model_validate(event()))
    assert all_checked(publisher)
    assert publisher.stats.emitted == 2
    assert len(encoded_on) == 2
    assert all(name.startswith(THREAD_NAME) for name in encoded_on), encoded_on


def test_emit_takes_no_lock(make_publisher: MakePublisher) -> None:
    publisher = make_publisher()
    assert publisher.emit(event())  # starts the SDK's thread
    assert all_checked(publisher)
    results: list[bool] = []
    emitter = threading.Thread(target=lambda: results.append(publisher.emit(event())))
    with publisher._sender.counters._lock:  # the only lock on the way; held, emit must not wait
        emitter.start()
        emitter.join(DEADLOCK_TIMEOUT_S)
        finished = not emitter.is_alive()
    emitter.join()
    assert finished and results == [True]
    assert all_checked(publisher)
    assert publisher.stats.emitted == 2


def test_emit_does_not_copy_or_change_the_apps_dict(
    make_publisher: MakePublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    publisher = make_publisher()
    _sdk_thread_takes_nothing(publisher, monkeypatch)
    data = event(trace_id="t-1")
    before = dict(data)
    assert publisher.emit(data)
    assert list(publisher._sender.counters.inbox) == [data]
    assert publisher._sender.counters.inbox[0] is data  # a reference: no tracked copy per event
    monkeypatch.undo()
    assert all_checked(publisher)
    assert data == before  # event_id, defaults and the text policy went into the SDK's own copy


def test_a_full_inbox_drops_at_emit_and_counts_the_drops(
    make_publisher: MakePublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    publisher = make_publisher(queue_max_events=QUEUE_MAX)
    _sdk_thread_takes_nothing(publisher, monkeypatch)
    accepted = [publisher.emit(event()) for _ in range(QUEUE_MAX + 5)]
    assert accepted == [True] * QUEUE_MAX + [False] * 5
    assert publisher.stats == PublisherStats(dropped_queue_full=5, queued=QUEUE_MAX)
    monkeypatch.undo()
    assert all_checked(publisher)
    stats = publisher.stats
    assert (stats.emitted, stats.dropped_queue_full, stats.queued) == (QUEUE_MAX, 5, 0)


def test_events_left_in_the_inbox_at_close_are_counted_as_closed(
    make_publisher: MakePublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    publisher = make_publisher()
    _sdk_thread_takes_nothing(publisher, monkeypatch)
    for _ in range(3):
        assert publisher.emit(event())
    assert publisher.close(timeout=0.2) is False
    stats = publisher.stats
    assert (stats.dropped_closed, stats.queued, stats.emitted) == (3, 0, 0)


def test_flush_settles_only_after_everything_queued_before_it_was_handed_on(
    make_publisher: MakePublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # More than one turn's worth: a flush served after the first turn would find events queued.
    events = 2 * MAX_EVENTS_PER_TURN + 10
    publisher = make_publisher(producer_config={**QUIET, "message.timeout.ms": 300})
    at_settle: list[PublisherStats] = []
    finish = Barrier.finish

    def recording_finish(barrier: Barrier, settled: bool) -> None:
        at_settle.append(publisher.stats)
        finish(barrier, settled)

    monkeypatch.setattr(Barrier, "finish", recording_finish)
    for n in range(events):
        assert publisher.emit(event(trace_id=f"t-{n % 50}"))
    assert publisher.flush(timeout=DEADLOCK_TIMEOUT_S) is False  # broker down: nothing delivered
    (stats,) = at_settle
    assert stats.queued == 0
    assert stats.held_events == 0  # every event was in a record handed to librdkafka
    assert stats.emitted == events


def test_counters_account_for_taken_events_exactly_once() -> None:
    counters = Counters()
    counters.inbox.extend(["a", "b", "c", "d"])
    assert counters.take(3) == ["a", "b", "c"]
    assert counters.snapshot().queued == 4  # three in the thread's hands, one in the inbox
    assert counters.accept(10, max_events=10, max_bytes=100, checked=True)
    counters.drop("dropped_invalid", 1, "bad", checked=1)
    assert not counters.accept(200, max_events=10, max_bytes=100, checked=True)
    snap = counters.snapshot()
    assert (snap.queued, snap.emitted) == (1, 1)
    assert (snap.dropped_invalid, snap.dropped_queue_bytes) == (1, 1)
    assert counters.load() == snap.queued + snap.held_events == 2
    assert counters.taken == 3
    assert counters.taken_mark() == 4
