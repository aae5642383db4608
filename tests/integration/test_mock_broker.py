"""librdkafka's mock cluster as llmwatch's fallback broker: topics, idempotent produce, group commit,
and high watermarks after multi-record batches (what Tansu gets wrong)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from llmwatch.broker import BrokerError
from llmwatch.mockbroker import MockClusterBroker
from streams.admin import TopicMismatchError, ensure_topics
from streams.topics import TopicLayout, TopicSpec

LAYOUT_TOPICS = ("events", "calls", "dlq", "rollups", "alerts")
SESSION_TIMEOUT_MS = 6000
# Generous bounds for "does not hang"; the operations take milliseconds.
DEADLINE_S = 30.0
# linger.ms large enough that every record produced before flush() shares a batch per partition.
LINGER_MS = 200


@pytest.fixture()
def layout(topic_prefix: str) -> TopicLayout:
    return TopicLayout(prefix=topic_prefix)


@pytest.fixture()
def mock_broker(layout: TopicLayout) -> Iterator[MockClusterBroker]:
    with MockClusterBroker(layout.specs()) as broker:
        yield broker


def _producer(bootstrap: str, **extra: Any) -> Producer:
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": LINGER_MS,
        **extra,
    }
    return Producer(config)


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )


def _consume(consumer: Consumer, count: int) -> list[Any]:
    received: list[Any] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(received) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        assert message.error() is None, message.error()
        received.append(message)
    return received


def test_bootstrap_is_loopback_and_answers_metadata(mock_broker: MockClusterBroker) -> None:
    assert mock_broker.running
    assert mock_broker.bootstrap.startswith("127.0.0.1:")
    brokers = (
        AdminClient({"bootstrap.servers": mock_broker.bootstrap}).list_topics(timeout=5).brokers
    )
    assert len(brokers) == 1


@pytest.mark.parametrize("topic", LAYOUT_TOPICS)
def test_layout_topic_exists_with_configured_partitions(
    mock_broker: MockClusterBroker, layout: TopicLayout, topic: str
) -> None:
    name = getattr(layout, topic)
    expected = {spec.name: spec.partitions for spec in layout.specs()}[name]
    metadata = AdminClient({"bootstrap.servers": mock_broker.bootstrap}).list_topics(timeout=5)
    assert name in metadata.topics
    assert len(metadata.topics[name].partitions) == expected


def test_ensure_topics_finds_every_topic(
    mock_broker: MockClusterBroker, layout: TopicLayout
) -> None:
    assert ensure_topics(mock_broker.bootstrap, layout.specs()) == []


def test_ensure_topics_detects_partition_mismatch(
    mock_broker: MockClusterBroker, layout: TopicLayout
) -> None:
    wrong = TopicLayout(prefix=layout.prefix, partitions=layout.partitions + 1)
    with pytest.raises(TopicMismatchError, match=layout.events):
        ensure_topics(mock_broker.bootstrap, wrong.specs())


def test_idempotent_produce_group_consume_and_commit(
    mock_broker: MockClusterBroker, layout: TopicLayout
) -> None:
    count = 200
    producer = _producer(mock_broker.bootstrap)
    for i in range(count):
        producer.produce(layout.events, key=str(i % 17).encode(), value=f"event-{i}".encode())
    assert producer.flush(DEADLINE_S) == 0

    consumer = _consumer(mock_broker.bootstrap, f"g-{uuid.uuid4().hex[:8]}")
    try:
        consumer.subscribe([layout.events])
        received = _consume(consumer, count)
        assert sorted(m.value() for m in received) == sorted(
            f"event-{i}".encode() for i in range(count)
        )
        consumer.commit(asynchronous=False)
        partitions = [TopicPartition(layout.events, p) for p in range(layout.partitions)]
        committed = {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
        high = {
            p: consumer.get_watermark_offsets(TopicPartition(layout.events, p), timeout=10)[1]
            for p in range(layout.partitions)
        }
    finally:
        consumer.close()
    per_partition = {p: sum(1 for m in received if m.partition() == p) for p in high}
    assert high == per_partition
    # A committed offset is the next offset to read; partitions nobody wrote to have no commit.
    assert {p: o for p, o in committed.items() if o >= 0} == {p: n for p, n in high.items() if n}


@pytest.mark.parametrize("records", [2, 10, 500])
def test_high_watermark_after_multi_record_batches(
    mock_broker: MockClusterBroker, layout: TopicLayout, records: int
) -> None:
    stats: list[dict[str, Any]] = []
    producer = _producer(
        mock_broker.bootstrap,
        **{"statistics.interval.ms": 100, "stats_cb": lambda raw: stats.append(json.loads(raw))},
    )
    partition = layout.partitions - 1
    for i in range(records):
        producer.produce(layout.calls, value=f"row-{i}".encode(), partition=partition)
    assert producer.flush(DEADLINE_S) == 0
    deadline = time.monotonic() + DEADLINE_S
    while _largest_batch(stats, layout.calls) < 2 and time.monotonic() < deadline:
        producer.poll(0.1)
    assert _largest_batch(stats, layout.calls) >= 2, "records were not batched: test proves nothing"

    consumer = _consumer(mock_broker.bootstrap, f"g-{uuid.uuid4().hex[:8]}")
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(layout.calls, partition), timeout=10
        )
    finally:
        consumer.close()
    assert (low, high) == (0, records)


def _largest_batch(stats: list[dict[str, Any]], topic: str) -> int:
    """Most records librdkafka put in one produce batch for ``topic``, from its statistics."""
    sizes = [s["topics"][topic]["batchcnt"]["max"] for s in stats if topic in s.get("topics", {})]
    return max(sizes, default=0)


def test_create_topic_is_idempotent_and_checks_partitions(
    mock_broker: MockClusterBroker, topic_prefix: str
) -> None:
    spec = TopicSpec(f"{topic_prefix}.extra", partitions=3, retention_ms=3_600_000)
    assert mock_broker.create_topic(spec) is True
    assert mock_broker.create_topic(spec) is False
    with pytest.raises(TopicMismatchError, match=r"\.extra"):
        mock_broker.create_topic(TopicSpec(spec.name, partitions=5, retention_ms=3_600_000))
    assert ensure_topics(mock_broker.bootstrap, [spec]) == []


def test_restart_recreates_known_topics_on_a_new_cluster(layout: TopicLayout) -> None:
    broker = MockClusterBroker(layout.specs())
    with pytest.raises(BrokerError, match="not running"):
        _ = broker.bootstrap
    with broker:
        assert broker.running
    assert not broker.running
    broker.stop()  # idempotent
    with broker:  # a fresh, empty cluster: the launcher re-creates the topics it knows
        assert ensure_topics(broker.bootstrap, layout.specs()) == []


def test_wait_returns_when_stopped_from_another_thread(layout: TopicLayout) -> None:
    broker = MockClusterBroker(layout.specs()).start()
    stopper = threading.Timer(0.2, broker.stop)
    stopper.start()
    started = time.monotonic()
    try:
        assert broker.wait() == 0
    finally:
        stopper.join()
        broker.stop()
    assert time.monotonic() - started < DEADLINE_S
    assert not broker.running


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="-1"):
        MockClusterBroker(initial_rebalance_delay_ms=-1)
    with pytest.raises(ValueError, match="got 0"):
        MockClusterBroker([TopicSpec("t", partitions=0, retention_ms=1)])
    with pytest.raises(TopicMismatchError, match="'t'"):
        MockClusterBroker([TopicSpec("t", 1, 1), TopicSpec("t", 2, 1)])


def test_consumer_error_codes_are_not_swallowed(mock_broker: MockClusterBroker) -> None:
    """A consumer of a topic that was never created gets UNKNOWN_TOPIC_OR_PART, not silence."""
    consumer = Consumer(
        {
            "bootstrap.servers": mock_broker.bootstrap,
            "group.id": f"g-{uuid.uuid4().hex[:8]}",
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "allow.auto.create.topics": False,
        }
    )
    try:
        consumer.subscribe([f"missing-{uuid.uuid4().hex[:8]}"])
        deadline = time.monotonic() + DEADLINE_S
        error = None
        while error is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is not None:
                error = message.error()
    finally:
        consumer.close()
    assert error is not None
    assert error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
