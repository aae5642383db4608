"""The Faust worker: ingest raw events, dead-letter the bad ones, forward normalized rows.

Delivery: at-least-once, by construction. The ingest agent reads with manual acks: each raw record's
outputs (normalized calls, rollups, dead letters, its monitor record) go to
``streams.delivery.AckWindow``, which acks the record only after the broker acknowledged every one of
those outputs, in record order. Faust commits only acked offsets, so a committed offset never passes a
record whose outputs might be missing. A retriable send failure (broker down, topic missing) is retried
with backoff for as long as it takes, stalling the partition rather than skipping it; a failure that
retrying cannot fix (a record over the broker's size limit) stops the worker without acking, so the
record is re-read after a restart. The agent body never raises: ``streams.ingest.pipeline`` turns bad
data and bugs into dead letters, and a failure of the in-memory stream state is logged and counted,
never allowed to ack-and-drop a record. Replays give identical rows (``streams.ingest.pipeline`` is
deterministic: event times are checked against the record's Kafka timestamp), which the sink's
ReplacingMergeTree tables collapse.

Ordering: output for one raw record goes to the same key as its input, so per-key order is kept.

The SLO monitor: every record's monitor record goes to the one-partition ``monitor`` topic; the
``monitor`` agent runs only on the instance Kafka gives that partition (``MonitorOwnership``), which
restores the group's saved state before it counts a record, publishes its state when the partition is
revoked, and alone publishes alerts, SLO status and the top-K (``streams.monitor``).

What can block: the agent waits on the broker's acknowledgements (at most ``max_in_flight`` records
ahead) and on retries; nothing else in it waits on I/O. Outputs linger up to ``PRODUCER_LINGER_S``
(5 ms) in the producer so that one request carries many records: Faust's default (no linger, 16 KiB
batches) sent about one request per output and cost the worker more CPU than validation does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import faust
from faust.types import TP as TopicPartition

from streams.analytics.record import RecordAnalytics
from streams.delivery import DEFAULT_MAX_IN_FLIGHT, AckWindow, DeliveryFailed, OutputRecord
from streams.faust_transport import SCHEME as TRANSPORT_SCHEME
from streams.ingest.pipeline import RecordProcessor
from streams.ingest.records import DeadLetter
from streams.ingest.validate import SourcePosition
from streams.monitor import StreamMonitor
from streams.monitor_records import MONITOR_KEY, decode_monitor_record, encode_monitor_record
from streams.slo.config import SloFile
from streams.state import restore_from_kafka
from streams.text.redaction import Redactor
from streams.topics import MAX_RECORD_BYTES, TopicLayout

__all__ = ["WorkerConfig", "create_app"]

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S: Final = 2.0
STATS_LOG_INTERVAL_S: Final = 30.0
LOG_BURST: Final = 20
PRODUCER_REQUEST_TIMEOUT_S: Final = 30.0
PRODUCER_LINGER_S: Final = 0.005
PRODUCER_MAX_BATCH_BYTES: Final = 1024 * 1024


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
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT  # source records whose outputs await broker acks
    # Largest output record; must not exceed the output topics' max.message.bytes.
    max_record_bytes: int = MAX_RECORD_BYTES


@dataclass(slots=True)
class MonitorOwnership:
    """Whether this instance owns the monitor topic's partition, and has restored the state."""

    partition: TopicPartition
    owner: bool = False
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    restoring: asyncio.Future[None] | None = None


class ErrorCount:
    """Counts failures that must not stop the stream; logs the first and then every 1,000th."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.count_ = 0

    def count(self, exc: BaseException) -> None:
        self.count_ += 1
        if self.count_ == 1 or self.count_ % 1_000 == 0:
            log.error(
                "%s failed (%d times so far); the record is still published",
                self.what,
                self.count_,
                exc_info=exc,
            )


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


def _record_ms(timestamp: float | None) -> int:
    """The Kafka record's timestamp in epoch ms (the wall clock only for a record without one)."""
    return int(timestamp * 1000) if timestamp and timestamp > 0 else _now_ms()


def _broker_url(bootstrap: str) -> str:
    return ";".join(f"{TRANSPORT_SCHEME}://{server.strip()}" for server in bootstrap.split(","))


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
        "producer_linger": PRODUCER_LINGER_S,
        "producer_max_batch_size": PRODUCER_MAX_BATCH_BYTES,
        # A send waits for the broker at most this long before it fails and the window retries it.
        "producer_request_timeout": PRODUCER_REQUEST_TIMEOUT_S,
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
    state_topic = raw_topic(layout.state, partitions=1)
    monitor_topic = raw_topic(layout.monitor, partitions=1)
    analytics = analytics or RecordAnalytics()
    processor = RecordProcessor(
        analytics,
        Redactor() if config.redact_text else None,
        max_record_bytes=config.max_record_bytes,
    )
    monitor_errors = ErrorCount("the stream monitor (SLO windows, top-K)")
    monitor = StreamMonitor(
        analytics,
        slos,
        instance=f"{socket.gethostname()}:{os.getpid()}",
        started_ms=_now_ms(),
        clock=_now_ms,
    )
    dead_letter_log = DeadLetterLog()
    app.llmwatch_monitor = monitor  # type: ignore[attr-defined]

    outputs_by_topic = {
        layout.calls: calls_topic,
        layout.rollups: rollups_topic,
        layout.dlq: dlq_topic,
        layout.monitor: monitor_topic,
    }
    ownership = MonitorOwnership(TopicPartition(layout.monitor, 0))
    app.llmwatch_ownership = ownership  # type: ignore[attr-defined]

    async def send(output: OutputRecord) -> Awaitable[Any]:
        topic = outputs_by_topic[output.topic]
        return await topic.send(key=output.key, value=output.value)

    def outputs_of(event: faust.EventT[bytes]) -> list[OutputRecord]:
        """Process one record and return its outputs. Never raises: the stream state is optional,
        the outputs are not, so a failure in the monitor is logged and counted, never fatal."""
        message = event.message
        source = SourcePosition(message.topic, message.partition, message.offset)
        flagged_before = dict(analytics.flagged_models)
        out = processor.process(event.value, source, _record_ms(message.timestamp))
        monitored: list[OutputRecord] = []
        try:
            monitor.counters.count(len(out.rows), len(out.dead_letters), out.redactions)
            for dead in out.dead_letters:
                dead_letter_log.log(dead)
            if out.rows:
                flagged = {
                    key: calls - flagged_before.get(key, 0)
                    for key, calls in analytics.flagged_models.items()
                    if calls != flagged_before.get(key, 0)
                }
                value = encode_monitor_record(out.rows, source, flagged)
                monitored.append(OutputRecord(layout.monitor, MONITOR_KEY, value))
        except Exception as exc:
            monitor_errors.count(exc)
        key = message.key
        return [
            *(OutputRecord(layout.calls, key, value) for value in out.calls),
            *(OutputRecord(layout.rollups, key, value) for value in out.rollups),
            *(OutputRecord(layout.dlq, key, dead.to_json()) for dead in out.dead_letters),
            *monitored,
        ]

    windows: list[AckWindow[faust.EventT[bytes]]] = []

    @app.agent(events_topic, name="ingest")
    async def ingest(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        # Acks are manual: a record is acked by the window once the broker holds all its outputs.
        manual = stream.noack()  # type: ignore[attr-defined]
        window: AckWindow[faust.EventT[bytes]] = AckWindow(
            send, manual.ack, max_in_flight=config.max_in_flight
        )
        windows.append(window)
        try:
            async for event in manual.events():
                try:
                    await window.submit(event, outputs_of(event))
                except DeliveryFailed as exc:
                    log.critical("stopping the worker, offsets stay uncommitted: %s", exc)
                    await app.crash(exc)
                    await asyncio.Event().wait()  # never take (or ack) another record
                yield None
        finally:
            windows.remove(window)

    @app.agent(monitor_topic, name="monitor")
    async def monitor_agent(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        """The monitor over every instance's rows: only the owner of the one partition runs it."""
        async for value in stream:
            await ownership.ready.wait()  # the saved state is restored first
            try:
                monitor.observe_record(decode_monitor_record(value))
            except Exception as exc:  # a bad record or a bug: counted, never stops the stream
                monitor_errors.count(exc)
            yield None

    async def restore_monitor() -> None:
        """Take over the monitor: forget, then load the state the last owner saved."""
        loop = asyncio.get_running_loop()

        def restore() -> None:
            monitor.reset()
            restore_from_kafka(monitor, config.bootstrap, layout.state, config.app_id)

        try:
            await loop.run_in_executor(None, restore)
        except Exception as exc:  # start empty rather than never monitor
            log.error("could not restore the monitor state, starting empty: %s", exc)
        ownership.ready.set()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: set[Any], **_: Any) -> None:
        if ownership.partition in assigned and not ownership.owner:
            ownership.owner = True
            log.info("this instance owns %s: it runs the SLO monitor", layout.monitor)
            ownership.restoring = asyncio.ensure_future(restore_monitor())

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
        if ownership.partition in revoked and ownership.owner:
            if ownership.ready.is_set():  # hand over everything counted so far
                await publish_state(force=True)
            ownership.owner = False
            ownership.ready.clear()
            if ownership.restoring is not None:
                ownership.restoring.cancel()

    async def publish_state(force: bool = False) -> None:
        state = monitor.state_record(config.app_id, _now_ms(), force=force)
        if state is not None:
            await state_topic.send(key=config.app_id.encode(), value=state, force=True)

    @app.timer(interval=config.commit_interval_s)
    async def ack_settled() -> None:
        """Ack records whose outputs are all acknowledged while no new record arrives."""
        for window in list(windows):
            await window.ack_settled()

    @app.timer(interval=config.alert_interval_s)
    async def evaluate_alerts() -> None:
        if not ownership.ready.is_set():
            return
        for key, record in monitor.alerts(_now_ms()):
            await alerts_topic.send(key=key.encode(), value=record, force=True)
        # After the transitions: a restart restores the alerts they opened (streams.state).
        await publish_state()

    @app.timer(interval=config.snapshot_interval_s)
    async def publish_snapshots() -> None:
        now = _now_ms()
        owner = ownership.ready.is_set()
        status = monitor.status(now) if owner else None
        if status is not None:
            await alerts_topic.send(key=b"status", value=status, force=True)
        # The owner's top-K covers every partition; the others publish their counters only.
        owned = range(layout.partitions) if owner else ()
        await metrics_topic.send(key=b"worker", value=monitor.snapshot(now, owned), force=True)

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
