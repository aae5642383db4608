"""A 15 MiB invalid event on the events topic ends as exactly one llm_dlq row: capped, redacted, identified.

Real parts: the session's Tansu broker, an ``llmwatch worker`` subprocess, and the sink in a thread on
chdb. Before dead letters were capped, the worker's dead letter for such an event (base64, ~20 MiB)
exceeded the 16 MiB record limit: the event was neither stored nor dead-lettered.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson

from llmwatch.broker import TansuBroker
from sinks.schema import DLQ_TABLE, qualified
from streams.admin import ensure_topics
from streams.ingest.deadletter import PAYLOAD_CAP_BYTES, TRUNCATED_MARKER
from tests.integration.kafka_io import TaggedProducer
from tests.integration.pipeline_harness import (
    ProcessGroup,
    TopicWatcher,
    pipeline_settings,
    sink_thread,
    wait_drained,
)

MIB: Final = 1024 * 1024
HUGE_EVENT_BYTES: Final = 15 * MIB
FAKE_EMAIL: Final = "jane.doe@example.com"
FAKE_KEY: Final = "sk-proj-FAKEfakeFAKEfake0123456789"


def _huge_invalid_event() -> bytes:
    """One event of ~15 MiB that breaks the contract (input_tokens), with PII at its start."""
    end = datetime.now(UTC) - timedelta(seconds=5)
    head = f"mail {FAKE_EMAIL} key {FAKE_KEY} "
    event: dict[str, Any] = {
        "service": "e2e-huge",
        "start_time": (end - timedelta(seconds=2)).isoformat(),
        "end_time": end.isoformat(),
        "input_tokens": "lots",
        "output_tokens": 5,
        "metadata": {"contact": FAKE_EMAIL},
        "input_text": head + "x" * (HUGE_EVENT_BYTES - len(head)),
    }
    return orjson.dumps(event)


def test_a_15_mib_invalid_event_ends_as_one_capped_dlq_row(
    broker: TansuBroker,
    topic_prefix: str,
    tmp_path: Path,
    chdb_dsn: str,
    ch_client: Any,
    processes: ProcessGroup,
) -> None:
    settings = pipeline_settings(
        broker.bootstrap, topic_prefix, tmp_path / "data", clickhouse_dsn=chdb_dsn
    )
    ensure_topics(broker.bootstrap, settings.layout.specs())
    raw = _huge_invalid_event()
    assert len(raw) > HUGE_EVENT_BYTES
    watcher = TopicWatcher(settings.bootstrap, settings.layout)
    producer = TaggedProducer(settings.bootstrap, settings.layout.events)
    try:
        processes.start("worker", settings)
        with sink_thread(settings, ch_client):
            producer.send(raw, "huge")
            producer.flush()
            wait_drained(watcher, settings, calls=0, dead_letters=1, processes=processes)
    finally:
        watcher.close()
    rows = ch_client.query(
        "SELECT source_offset, index_in_record, payload_size, payload_sha256, payload, reason "
        f"FROM {qualified(DLQ_TABLE, settings.database)} FINAL",
        column_formats={"payload": "bytes"},
    ).result_rows
    assert len(rows) == 1
    offset, index, size, sha256, payload, reason = rows[0]
    ((_, placed_offset),) = producer.placed
    assert (offset, index) == (placed_offset, -1)
    assert (size, sha256) == (len(raw), hashlib.sha256(raw).hexdigest())
    assert len(payload) <= PAYLOAD_CAP_BYTES and payload.endswith(TRUNCATED_MARKER)
    text = payload.decode("utf-8")
    assert "<EMAIL>" in text and "<SECRET>" in text
    assert FAKE_EMAIL not in text and FAKE_KEY not in text
    assert "input_tokens" in reason
