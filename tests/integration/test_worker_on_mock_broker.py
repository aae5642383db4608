"""The fallback broker: the real Faust worker runs unchanged on librdkafka's mock cluster."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer

from llmwatch.mockbroker import MockClusterBroker
from llmwatch.processes import ChildProcess
from producers.sdk import Publisher
from producers.simulator import Simulator, default_scenario
from streams.ingest.call_batches import decode_call_rows
from streams.topics import TopicLayout, faust_internal_specs

EVENTS = 2_000


def test_worker_forwards_every_event_on_the_mock_cluster(tmp_path: Path, topic_prefix: str) -> None:
    layout = TopicLayout(prefix=topic_prefix)
    worker_id = f"{topic_prefix}-worker"
    specs = layout.specs() + faust_internal_specs(worker_id)
    with MockClusterBroker(topics=specs) as broker:
        env = {
            "LLMWATCH_BOOTSTRAP": broker.bootstrap,
            "LLMWATCH_TOPIC_PREFIX": topic_prefix,
            "LLMWATCH_WORKER_ID": worker_id,
            "LLMWATCH_STORE": "memory://",
            "LLMWATCH_DATA_DIR": str(tmp_path),
            "LLMWATCH_DECLARE_TOPICS": "false",
            "TZ": os.environ.get("TZ", "UTC"),
        }
        worker = ChildProcess("worker", ["worker"], env, tmp_path / "worker.log").start()
        try:
            publisher = Publisher(broker.bootstrap, layout.events)
            now = datetime.now(UTC)
            events = list(
                Simulator(1, default_scenario()).events(EVENTS, now - timedelta(minutes=1), now)
            )
            for event in events:
                publisher.emit(event)
            assert publisher.flush(10.0)
            publisher.close()
            seen = _forwarded_ids(broker.bootstrap, layout.calls, EVENTS, timeout_s=60.0)
        finally:
            worker.stop()
    log = (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
    assert seen == {e.event_id for e in events}, log


def _forwarded_ids(bootstrap: str, topic: str, expected: int, timeout_s: float) -> set[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{time.time_ns()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while len(seen) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            seen.update(row["event_id"] for row in decode_call_rows(message.value()))
    finally:
        consumer.close()
    return seen
