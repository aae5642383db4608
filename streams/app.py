"""The Faust worker: ingest raw events, dead-letter the bad ones, forward normalized rows.

Delivery: at-least-once. Every record the ingest agent publishes (normalized batch, dead letters) is
*attached* to the offset of the raw record it came from; Faust publishes attachments and waits for
their acknowledgement before it commits that offset. A crash before the commit re-processes the
record, and the sink deduplicates the replay by event id (ReplacingMergeTree) and dead-letter id.

Ordering: output for one raw record goes to the same key as its input, so per-key order is kept.

What can block: nothing in the agent waits on I/O except Faust's own sends; a bad record never raises
(``streams.ingest`` turns it into dead letters), so one poison message cannot stall a partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import faust

from streams.analytics import RecordAnalytics
from streams.ingest import SourcePosition
from streams.pipeline import RecordProcessor
from streams.records import DeadLetter
from streams.redaction import Redactor
from streams.topics import MAX_RECORD_BYTES, TopicLayout

__all__ = ["IngestCounters", "WorkerConfig", "create_app"]

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S: Final = 2.0
STATS_LOG_INTERVAL_S: Final = 30.0
LOG_BURST: Final = 20


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    bootstrap: str
    layout: TopicLayout
    data_dir: Path
    app_id: str = "llmwatch-worker"
    store: str = "memory://"
    session_timeout_s: float = 6.0
    commit_interval_s: float = 0.5
    web_port: int | None = None
    topic_allow_declare: bool = True
    redact_text: bool = True
    heartbeat_path: Path | None = None


class DeadLetterLog:
    """Logs dead letters at WARNING, at most LOG_BURST per STATS_LOG_INTERVAL_S, then counts them."""

    def __init__(self) -> None:
        self._window_start = 0.0
        self._logged = 0
        self._suppressed = 0

    def log(self, dead: DeadLetter) -> None:
        now = time.monotonic()
        if now - self._window_start > STATS_LOG_INTERVAL_S:
            if self._suppressed:
                log.warning("%d more dead letters were not logged", self._suppressed)
            self._window_start, self._logged, self._suppressed = now, 0, 0
        if self._logged >= LOG_BURST:
            self._suppressed += 1
            return
        self._logged += 1
        log.warning(
            "dead letter from %s/%d@%d #%d: %s",
            dead.source_topic,
            dead.source_partition,
            dead.source_offset,
            dead.index_in_record,
            dead.reason,
        )


@dataclass(slots=True)
class IngestCounters:
    records: int = 0
    events_valid: int = 0
    dead_letters: int = 0
    redactions: dict[str, int] = field(default_factory=dict)


def _broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap.split(","))


def _faust_settings(config: WorkerConfig) -> dict[str, Any]:
    web: dict[str, Any] = {"web_enabled": False}
    if config.web_port is not None:
        web = {"web_enabled": True, "web_bind": "127.0.0.1", "web_port": config.web_port}
    return {
        "broker": _broker_url(config.bootstrap),
        "store": config.store,
        "datadir": str(config.data_dir),
        "topic_partitions": config.layout.partitions,
        "topic_replication_factor": 1,
        "topic_allow_declare": config.topic_allow_declare,
        "broker_session_timeout": config.session_timeout_s,
        "broker_heartbeat_interval": max(config.session_timeout_s / 3.0, 0.5),
        "broker_commit_interval": config.commit_interval_s,
        "consumer_auto_offset_reset": "earliest",
        "consumer_max_fetch_size": MAX_RECORD_BYTES,
        "producer_max_request_size": MAX_RECORD_BYTES,
        "producer_compression_type": "lz4",
        "autodiscover": False,
        "web_in_thread": False,
        **web,
    }


def create_app(config: WorkerConfig, analytics: RecordAnalytics | None = None) -> faust.App:
    """Build the worker's Faust app (not started)."""
    app = faust.App(config.app_id, **_faust_settings(config))
    layout = config.layout

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            partitions=layout.partitions,
            value_type=bytes,
            value_serializer="raw",
            key_serializer="raw",
        )

    events_topic = raw_topic(layout.events)
    calls_topic = raw_topic(layout.calls)
    dlq_topic = raw_topic(layout.dlq)
    rollups_topic = raw_topic(layout.rollups)
    processor = RecordProcessor(
        analytics or RecordAnalytics(), Redactor() if config.redact_text else None
    )
    dead_letter_log = DeadLetterLog()
    counters = IngestCounters()
    app.llmwatch_counters = counters  # type: ignore[attr-defined]

    @app.agent(events_topic, name="ingest")
    async def ingest(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            message = event.message
            source = SourcePosition(message.topic, message.partition, message.offset)
            out = processor.process(event.value, source, time.time_ns() // 1_000_000)
            counters.records += 1
            counters.events_valid += len(out.rows)
            counters.dead_letters += len(out.dead_letters)
            for kind, n in out.redactions.items():
                counters.redactions[kind] = counters.redactions.get(kind, 0) + n
            if out.calls is not None:
                await calls_topic.send(key=message.key, value=out.calls)
            if out.rollups is not None:
                await rollups_topic.send(key=message.key, value=out.rollups)
            for dead in out.dead_letters:
                dead_letter_log.log(dead)
                await dlq_topic.send(key=message.key, value=dead.to_json())
            yield None

    if config.heartbeat_path is not None:
        heartbeat = config.heartbeat_path

        @app.timer(interval=HEARTBEAT_INTERVAL_S)
        async def beat() -> None:
            heartbeat.parent.mkdir(parents=True, exist_ok=True)
            heartbeat.touch()

    @app.timer(interval=STATS_LOG_INTERVAL_S)
    async def report() -> None:
        log.info(
            "ingest: records=%d valid_events=%d dead_letters=%d redactions=%s",
            counters.records,
            counters.events_valid,
            counters.dead_letters,
            counters.redactions,
        )

    return app
