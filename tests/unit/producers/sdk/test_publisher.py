"""Publisher behaviour with the broker down: drops are counted, nothing raises or hangs."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from producers.events import LlmCallEvent
from producers.sdk import Publisher, PublisherStats
from producers.sdk.sender import THREAD_NAME
from tests.unit.producers.sdk.conftest import QUIET, all_checked, event, wait_until

MakePublisher = Callable[..., Publisher]


def _one_slot_buffer(buffer_full_timeout_s: float) -> dict[str, Any]:
    """Settings under which librdkafka's buffer is full after one record (broker down)."""
    return {
        "batch_max_events": 1,
        "flush_interval_s": 0.0,
        "buffer_full_timeout_s": buffer_full_timeout_s,
        "producer_config": {**QUIET, "queue.buffering.max.messages": 1},
    }


def _sender_threads(publisher: Publisher) -> list[threading.Thread]:
    name = f"{THREAD_NAME}:{publisher.config.topic}"
    return [t for t in threading.enumerate() if t.name == name]


def test_accepts_dicts_and_models(make_publisher: MakePublisher) -> None:
    publisher = make_publisher()
    model = LlmCallEvent.model_validate(event())
    assert publisher.emit(event()) is True
    assert publisher.emit(model) is True
    assert all_checked(publisher)
    assert publisher.stats.emitted == 2


def test_queue_full_drops_are_counted_and_logged(
    make_publisher: MakePublisher, caplog: pytest.LogCaptureFixture
) -> None:
    # The thread blocks on the full librdkafka buffer, so the 10-slot local queue fills up.
    publisher = make_publisher(queue_max_events=10, **_one_slot_buffer(30.0))
    accepted = [publisher.emit(event()) for _ in range(1_000)]
    assert all_checked(publisher)
    stats = publisher.stats
    assert stats.emitted == accepted.count(True)
    assert stats.dropped_queue_full == accepted.count(False)
    assert stats.dropped_queue_full >= 900
    assert wait_until(lambda: "local queue full" in caplog.text)
    assert publisher.close(timeout=0.2) is False
    assert _sender_threads(publisher) == []  # close() cut the 30 s of buffer-full retries short
    settled = publisher.stats
    assert settled.emitted == settled.lost  # every accepted event is accounted for


def test_buffer_full_drops_are_counted_and_every_event_settles(
    make_publisher: MakePublisher,
) -> None:
    publisher = make_publisher(**_one_slot_buffer(0.2))
    for _ in range(3):
        assert publisher.emit(event())
    assert wait_until(lambda: publisher.stats.dropped_buffer_full == 2)
    assert publisher.close(timeout=0.5) is False
    stats = publisher.stats
    assert stats.emitted == 3
    assert (stats.delivered, stats.delivery_failed, stats.dropped_buffer_full) == (0, 1, 2)


def test_unacknowledged_events_count_as_failed_per_event(make_publisher: MakePublisher) -> None:
    publisher = make_publisher(producer_config={**QUIET, "message.timeout.ms": 200})
    for _ in range(7):
        publisher.emit(event(trace_id="one-trace"))  # one key bucket: one record of 7 events
    assert wait_until(lambda: publisher.stats.delivery_failed == 7)
    assert publisher.stats.batches_sent == 1


class _Unhashable(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        return iter(["a"])

    def __len__(self) -> int:
        return 1


@pytest.mark.parametrize(
    "garbage",
    [None, 0, 3.5, "text", b"bytes", [event()], object(), _Unhashable()],
    ids=repr,
)
def test_emit_never_raises_on_garbage(make_publisher: MakePublisher, garbage: Any) -> None:
    publisher = make_publisher()
    assert publisher.emit(garbage) is False  # refused on the spot: not a mapping, or unreadable
    assert publisher.stats == PublisherStats(dropped_invalid=1)


@pytest.mark.parametrize("garbage", [{"x": object()}, {2: 1}], ids=repr)
def test_unserializable_dicts_are_queued_then_dropped_by_the_thread(
    make_publisher: MakePublisher, garbage: Any
) -> None:
    publisher = make_publisher()
    assert publisher.emit(garbage) is True  # emit does not encode: the thread finds out
    assert all_checked(publisher)
    assert publisher.stats == PublisherStats(dropped_invalid=1)


def test_flush_without_events_is_true(make_publisher: MakePublisher) -> None:
    assert make_publisher().flush(timeout=1.0) is True


def test_flush_with_broker_down_is_false_within_timeout(make_publisher: MakePublisher) -> None:
    publisher = make_publisher()
    publisher.emit(event())
    started = time.monotonic()
    assert publisher.flush(timeout=1.0) is False
    assert time.monotonic() - started < 1.0 + 4.0  # generous: "bounded", not a speed test


def test_close_is_idempotent_and_stops_the_thread(make_publisher: MakePublisher) -> None:
    publisher = make_publisher()
    publisher.emit(event())
    assert len(_sender_threads(publisher)) == 1
    first = publisher.close(timeout=0.3)
    assert publisher.close(timeout=0.3) is first is False
    assert _sender_threads(publisher) == []
    assert publisher.closed
    assert publisher.emit(event()) is False
    stats = publisher.stats
    assert (stats.dropped_closed, stats.delivery_failed) == (1, 1)


def test_close_without_events_is_true(make_publisher: MakePublisher) -> None:
    publisher = make_publisher()
    assert publisher.close() is True
    assert publisher.close() is True


def test_context_manager_closes(make_publisher: MakePublisher) -> None:
    with make_publisher(shutdown_timeout_s=0.1) as publisher:
        publisher.emit(event())
    assert publisher.closed


def test_unreferenced_publisher_stops_its_thread(make_publisher: MakePublisher) -> None:
    publisher = Publisher(
        make_publisher().config.bootstrap, "gc-topic", shutdown_timeout_s=0.2, producer_config=QUIET
    )
    publisher.emit(event())
    (thread,) = _sender_threads(publisher)
    del publisher
    gc.collect()
    thread.join(timeout=10.0)
    assert not thread.is_alive()


def test_track_and_observe_emit_through_the_publisher(make_publisher: MakePublisher) -> None:
    publisher = make_publisher(service="api")
    assert publisher.service == "api"
    with publisher.track(provider="openai", model="gpt-4o") as span:
        span.set_usage(input_tokens=3)

    @publisher.observe(operation="execute_tool", span_kind="tool")
    def tool() -> str:
        return "done"

    assert tool() == "done"
    assert all_checked(publisher)
    assert publisher.stats.emitted == 2
