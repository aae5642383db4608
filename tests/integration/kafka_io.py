"""Plain Kafka helpers for integration tests: produce raw records, read a group's committed offsets.

These use confluent-kafka directly (not the SDK), so tests can put any bytes on a topic. Every call is
bounded: producing flushes for at most 30 s, offset look-ups wait at most 10 s.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from producers.wire import MAX_RECORD_BYTES

__all__ = ["QUIET", "Positions", "Sent", "TaggedProducer", "committed", "produce", "read_until"]

Positions = dict[tuple[str, int], int]
# librdkafka's own log lines are noise in test output; errors still surface through the API.
QUIET: Final[dict[str, Any]] = {"log_level": 0}


def produce(bootstrap: str, records: list[tuple[str, int, bytes]]) -> Positions:
    """Produce (topic, partition, value) records; return the end position of each partition."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **QUIET})
    positions: Positions = {}
    errors: list[Any] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(err)
            return
        key = (msg.topic(), msg.partition())
        positions[key] = max(positions.get(key, 0), msg.offset() + 1)

    for topic, partition, value in records:
        producer.produce(topic, value, partition=partition, on_delivery=delivered)
    assert producer.flush(15) == 0
    assert errors == []
    return positions


@dataclass(frozen=True, slots=True)
class Sent:
    tag: str
    size: int
    sha256: str


class TaggedProducer:
    """A plain confluent-kafka producer (not the SDK) that remembers where each tagged value landed."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, "message.max.bytes": MAX_RECORD_BYTES, **QUIET}
        )
        self._topic = topic
        self.placed: dict[tuple[int, int], Sent] = {}  # by (partition, offset)
        self.errors: list[Any] = []

    def send(self, value: bytes, tag: str) -> None:
        sent = Sent(tag, len(value), hashlib.sha256(value).hexdigest())

        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                self.errors.append(err)
            else:
                self.placed[(msg.partition(), msg.offset())] = sent

        self._producer.produce(self._topic, value, on_delivery=delivered)

    def flush(self) -> None:
        assert self._producer.flush(30) == 0, "raw records not delivered"
        assert self.errors == []


def committed(bootstrap: str, group: str, partitions: list[tuple[str, int]]) -> Positions:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **QUIET})
    try:
        result = consumer.committed([TopicPartition(t, p) for t, p in partitions], timeout=10)
        return {(tp.topic, tp.partition): tp.offset for tp in result}
    finally:
        consumer.close()


def read_until(
    bootstrap: str,
    topic: str,
    partitions: int,
    done: Callable[[list[bytes]], bool],
    timeout_s: float = 60.0,
) -> list[bytes]:
    """Values of ``topic`` from the start (by assignment, no group join) until ``done(values)``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", **QUIET})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not done(values) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value() or b"")
    finally:
        consumer.close()
    return values
