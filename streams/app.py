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
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import faust

from streams.analytics import RecordAnalytics
from streams.ingest import SourcePosition
from streams.monitor import StreamMonitor
from streams.pipeline import RecordProcessor
from streams.records import DeadLetter
from streams.redaction import Redactor
from streams.slo import SloFile
from streams.topics import MAX_RECORD_BYTES, TopicLayout

__all__ = ["WorkerConfig", "create_app"]

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
    compression: str | None = "lz4"  # of the worker's output records; None on loopback
    alert_interval_s: float = 10.0
    snapshot_interval_s: float = 60.0


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


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


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
        "producer_compression_type": config.compression,
        "autodiscover": False,
        "web_in_thread": False,
        **web,
    }


def create_app(
    config: WorkerConfig,
    analytics: RecordAnalytics | None = None,
    slos: SloFile | None = None,
) -> faust.App:
    """Build the worker's Faust app (not started)."""
    app = faust.App(config.app_id, **_faust_settings(config))
    layout = config.layout

    def raw_topic(name: str, partitions: int = layout.partitions) -> faust.TopicT:
        return app.topic(
            name,
            partitions=partitions,
            value_type=bytes,
            value_serializer="raw",
            key_serializer="raw",
        )

    events_topic = raw_topic(layout.events)
    calls_topic = raw_topic(layout.calls)
    dlq_topic = raw_topic(layout.dlq)
    rollups_topic = raw_topic(layout.rollups)
    alerts_topic = raw_topic(layout.alerts, partitions=1)
    metrics_topic = raw_topic(layout.metrics, partitions=1)
    analytics = analytics or RecordAnalytics()
    processor = RecordProcessor(analytics, Redactor() if config.redact_text else None)
    monitor = StreamMonitor(
        analytics, slos, instance=f"{socket.gethostname()}:{os.getpid()}", started_ms=_now_ms()
    )
    dead_letter_log = DeadLetterLog()
    app.llmwatch_monitor = monitor  # type: ignore[attr-defined]

    @app.agent(events_topic, name="ingest")
    async def ingest(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            message = event.message
            source = SourcePosition(message.topic, message.partition, message.offset)
            out = processor.process(event.value, source, _now_ms())
            monitor.counters.count(len(out.rows), len(out.dead_letters), out.redactions)
            monitor.observe(out.rows)
            if out.calls is not None:
                await calls_topic.send(key=message.key, value=out.calls)
            if out.rollups is not None:
                await rollups_topic.send(key=message.key, value=out.rollups)
            for dead in out.dead_letters:
                dead_letter_log.log(dead)
                await dlq_topic.send(key=message.key, value=dead.to_json())
            yield None

    @app.timer(interval=config.alert_interval_s)
    async def evaluate_alerts() -> None:
        for key, record in monitor.alerts(_now_ms()):
            await alerts_topic.send(key=key.encode(), value=record, force=True)

    @app.timer(interval=config.snapshot_interval_s)
    async def publish_snapshots() -> None:
        now = _now_ms()
        status = monitor.status(now)
        if status is not None:
            await alerts_topic.send(key=b"status", value=status, force=True)
        await metrics_topic.send(key=b"worker", value=monitor.snapshot(now), force=True)

    if config.heartbeat_path is not None:
        heartbeat = config.heartbeat_path

        @app.timer(interval=HEARTBEAT_INTERVAL_S)
        async def beat() -> None:
            heartbeat.parent.mkdir(parents=True, exist_ok=True)
            heartbeat.touch()

    @app.timer(interval=STATS_LOG_INTERVAL_S)
    async def report() -> None:
        c = monitor.counters
        log.info(
            "ingest: records=%d valid_events=%d dead_letters=%d redactions=%s",
            c.records,
            c.events_valid,
            c.dead_letters,
            c.redactions,
        )

    return app
