"""The SDK against the real (Tansu) broker: exactly-once arrival, key buckets, fork, broker down."""

from __future__ import annotations

import os
import signal
import statistics
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from llmwatch.broker import TansuBroker, free_port
from producers.events import LlmCallEvent
from producers.sdk import Publisher, bucket_for, bucket_key
from producers.wire import SplitRecord, split_record
from streams.admin import ensure_topics
from streams.topics import TopicLayout

QUIET: dict[str, Any] = {"log_level": 0}
EVENTS = 5_000
TRACES = 250
DOWN_EMITS = 20_000


@pytest.fixture()
def events_topic(broker: TansuBroker, topic_prefix: str) -> str:
    layout = TopicLayout(prefix=topic_prefix)
    ensure_topics(broker.bootstrap, layout.specs())
    return layout.events


def _event(trace: int, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "event_id": uuid.uuid4().hex,
        "trace_id": f"trace-{trace}",
        "start_time": now,
        "end_time": now,
        "input_tokens": 10,
        **extra,
    }


def _consume(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0) -> list[Any]:
    """(key, partition, event) for every event in the topic; reads on briefly to catch duplicates."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex}", "log_level": 0}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        found: list[Any] = []
        deadline = time.monotonic() + timeout_s
        quiet_until = None
        while time.monotonic() < (quiet_until or deadline):
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            record = split_record(message.value())
            assert isinstance(record, SplitRecord), record
            found += [(message.key(), message.partition(), e) for e in record.events]
            if len(found) >= expected and quiet_until is None:
                quiet_until = time.monotonic() + 1.0
        return found
    finally:
        consumer.close()


def test_events_arrive_exactly_once_with_trace_keys(broker: TansuBroker, events_topic: str) -> None:
    publisher = Publisher(broker.bootstrap, events_topic, service="itest", producer_config=QUIET)
    sent = [_event(n % TRACES) for n in range(EVENTS)]
    assert all(publisher.emit(e) for e in sent)
    with publisher.track(provider="openai", model="gpt-4o", trace_id="trace-0") as span:
        span.set_usage(input_tokens=12, output_tokens=3)
    assert publisher.flush(timeout=30.0) is True
    assert publisher.close() is True
    stats = publisher.stats
    assert (stats.emitted, stats.delivered, stats.lost) == (EVENTS + 1, EVENTS + 1, 0)

    found = _consume(broker.bootstrap, events_topic, EVENTS + 1)
    ids = [e["event_id"] for _, _, e in found]
    assert len(ids) == len(set(ids)) == EVENTS + 1
    assert set(ids) >= {e["event_id"] for e in sent}
    placement: dict[str, set[tuple[bytes, int]]] = defaultdict(set)
    for key, partition, e in found:
        assert key == bucket_key(bucket_for(e["trace_id"]))
        placement[e["trace_id"]].add((key, partition))
    assert all(len(p) == 1 for p in placement.values())  # one key, one partition per trace
    tracked = [LlmCallEvent.model_validate(e) for _, _, e in found if "request_model" in e]
    assert [(t.service, t.output_tokens) for t in tracked] == [("itest", 3)]


def test_forked_child_sends_only_its_own_events(broker: TansuBroker, events_topic: str) -> None:
    # A long flush interval keeps the parent's events pending in its thread while it forks.
    publisher = Publisher(
        broker.bootstrap, events_topic, flush_interval_s=5.0, producer_config=QUIET
    )
    parent_events = [_event(1) for _ in range(20)]
    child_events = [_event(2) for _ in range(30)]
    assert all(publisher.emit(e) for e in parent_events)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child process
        code = 2
        try:
            sent = all(publisher.emit(e) for e in child_events)
            code = 0 if sent and publisher.close(timeout=20.0) else 3
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60.0
    while not (status := os.waitpid(pid, os.WNOHANG))[0] and time.monotonic() < deadline:
        time.sleep(0.05)
    if not status[0]:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert status[0] and os.waitstatus_to_exitcode(status[1]) == 0
    assert publisher.close(timeout=20.0) is True

    found = [e["event_id"] for _, _, e in _consume(broker.bootstrap, events_topic, 50)]
    assert sorted(found) == sorted(e["event_id"] for e in parent_events + child_events)


def test_emit_does_not_block_with_broker_down() -> None:
    publisher = Publisher(f"127.0.0.1:{free_port()}", "down", producer_config=QUIET)
    durations = []
    try:
        for n in range(DOWN_EMITS):
            started = time.perf_counter()
            publisher.emit(_event(n % TRACES))
            durations.append(time.perf_counter() - started)
    finally:
        publisher.close(timeout=0.5)
    p99 = statistics.quantiles(durations, n=100)[98]
    print(
        f"\nemit() with the broker down: p99 {p99 * 1e6:.1f} us, max {max(durations) * 1e3:.2f} ms"
    )
    stats = publisher.stats
    assert stats.queued == 0  # close() left nothing unaccounted
    assert stats.emitted + stats.dropped_queue_full + stats.dropped_closed == DOWN_EMITS
    assert max(durations) < 0.050
    assert p99 < 0.005
