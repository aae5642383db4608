"""The drift process (``llmwatch drift``): normalized calls and captured texts in, ``llm_drift`` rows,
``llm_drift_topics`` rows and drift alerts out.

It reads the calls topic (shape drift, ``streams.drift.monitor``) and, when given an encoder, the texts
topic (embedding drift, ``streams.drift.embedding_monitor``) by assignment (no consumer group): at start
it seeks every partition to the time the trailing reference needs (``(reference_windows + 2) * window``)
and rebuilds its windows from there, so a restart loses nothing and rewrites only windows already stored
(the tables collapse them). Heavy per-text work stays here, apart from the metrics path: the texts of a
poll that enter a window's sample are embedded in one batch. Each closed window becomes one ``drift``
record; each flagged (scope, feature) also raises an alert on the alerts topic (``llm_alerts``, rule
``drift``) naming the scope, the feature and what moved.

Privacy: texts are embedded and dropped. Only texts captured with ``store`` may be kept, redacted by
``redact``, as examples of novel traffic; otherwise an example is an event id.

Delivery: outputs are flushed (acknowledged) before the next poll; a failed send is retried until it
succeeds or the process stops. What can block: the poll (``poll_timeout_s``) and the flush
(``flush_timeout_s`` per attempt). A record that cannot be read is skipped and counted (the sink
dead-letters it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
from confluent_kafka import (
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from pydantic import ValidationError

from producers.texts import TextRecord
from producers.wire import RecordError, split_record
from streams.clock import Clock, wall_clock_ms
from streams.drift.baseline import load_baseline, manifest_mtime
from streams.drift.embedding_monitor import EmbeddingDriftConfig, EmbeddingDriftMonitor, Pending
from streams.drift.monitor import DriftConfig, ShapeDriftMonitor
from streams.drift.records import encode_drift
from streams.heartbeat import touch_heartbeat
from streams.ingest.call_batches import decode_call_rows, is_arrow_record
from streams.kafka_settings import acked_producer_settings
from streams.outputs import Output, send_until_acked
from streams.slo.alerts import AlertEvent, point_alert
from streams.topics import MAX_RECORD_BYTES, TopicLayout

__all__ = ["DriftConsumer", "DriftConsumerConfig", "TextEncoder", "drift_alert"]

log = logging.getLogger(__name__)

METADATA_TIMEOUT_S: Final = 10.0
EXAMPLE_CHARS: Final = 300  # of a stored (redacted) example of novel traffic
ALERT_RULE: Final = "drift"
EFFECT_NAMES: Final = {
    "embedding": "centroid distance",
    "topics": "topic PSI",
    "novel": "novel share +",
}


class TextEncoder(Protocol):
    def encode(self, texts: Sequence[str], batch_size: int = ...) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class DriftConsumerConfig:
    bootstrap: str
    layout: TopicLayout
    drift: DriftConfig = field(default_factory=DriftConfig)
    embedding: EmbeddingDriftConfig | None = None  # None: no embedding drift (no texts read)
    # A pinned baseline (streams.drift.baseline), checked each loop; one embedded by another encoder
    # backend than ``encoder_name`` is refused (their vectors are not comparable).
    baseline_dir: Path | None = None
    encoder_name: str = ""
    poll_timeout_s: float = 0.5
    batch_max_records: int = 500
    flush_timeout_s: float = 10.0
    heartbeat_path: Path | None = None
    consumer_overrides: dict[str, Any] = field(default_factory=dict)


def drift_alert(row: dict[str, Any]) -> AlertEvent:
    """The alert of one flagged drift row (one per scope, feature and window)."""
    scope = "/".join(str(row[k]) for k in ("service", "model", "span_kind", "direction") if row[k])
    return point_alert(
        alert_id=f"drift/{scope}/{row['feature']}/{row['window_start']}",
        slo=f"drift:{scope}",
        rule=ALERT_RULE,
        severity="ticket",
        at_ms=int(row["evaluated_at"]),
        factor=float(row["effect"]),
        reference_n=int(row["reference_n"]),
        current_n=int(row["current_n"]),
        selector={"service": str(row["service"]), "model": str(row["model"])},
        description=(
            f"{row['feature']} of {scope} drifted against its {row['reference_kind']} reference "
            f"({EFFECT_NAMES.get(str(row['feature']), 'PSI')} {float(row['effect']):.2f}, "
            f"q {float(row['q_value']):.2g})"
            + (f": {row['top_shift']}" if row["top_shift"] else "")
        ),
        runbook=(
            "Open the Drift dashboard for the scope. A shift in output tokens or latency with an "
            "unchanged model id often means the provider updated the model; topics or novel traffic "
            "mean users ask new things or retrieval changed (see the novel examples); check the "
            "prompt versions deployed in the window too. A deliberate change: pin a new baseline "
            "with `llmwatch drift baseline set`."
        ),
    )


class DriftConsumer:
    def __init__(
        self,
        config: DriftConsumerConfig,
        *,
        clock: Clock = wall_clock_ms,
        encoder: TextEncoder | None = None,
        redact: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        if config.embedding is not None and encoder is None:
            raise ValueError("embedding drift needs an encoder (streams.text.embeddings)")
        self.config = config
        self.monitor = ShapeDriftMonitor(config.drift)
        self.texts = None if config.embedding is None else EmbeddingDriftMonitor(config.embedding)
        self._encoder = encoder
        self._redact = redact
        self._clock = clock
        self._baseline_mtime: float | None = None
        self.counts: dict[str, int] = {
            "records": 0,
            "bad_records": 0,
            "texts_embedded": 0,
            "rows": 0,
            "alerts": 0,
        }

    def run(self, stop: threading.Event) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.config.bootstrap,
                "group.id": "llmwatch-drift-unused",  # assign() only: nothing is committed
                "enable.auto.commit": False,
                "enable.partition.eof": True,  # an idle partition holds the watermark no longer
                **self.config.consumer_overrides,
            }
        )
        producer = Producer(acked_producer_settings(self.config.bootstrap, MAX_RECORD_BYTES))
        try:
            self._assign(consumer)
            while not stop.is_set():
                touch_heartbeat(self.config.heartbeat_path)
                self._check_baseline()
                pending: list[Pending] = []
                for message in consumer.consume(
                    self.config.batch_max_records, self.config.poll_timeout_s
                ):
                    pending += self._take(message)
                self._embed(pending)
                now = self._clock()
                rows = self.monitor.close_due(now)
                topics: list[dict[str, Any]] = []
                if self.texts is not None:
                    text_rows, topics = self.texts.close_due(now)
                    rows += text_rows
                if rows or topics:
                    self._publish(producer, rows, topics, stop)
        finally:
            producer.flush(5.0)
            consumer.close()
            log.info("drift monitor stopped: %s (late calls %d)", self.counts, self.monitor.late)

    def _check_baseline(self) -> None:
        """Pin the baseline when ``baseline.json`` appeared or changed; unpin when it went away."""
        folder = self.config.baseline_dir
        if folder is None:
            return
        mtime = manifest_mtime(folder)
        if mtime == self._baseline_mtime:
            return
        self._baseline_mtime = mtime
        capacity = self.texts.config.capacity if self.texts is not None else 2
        try:
            baseline = None if mtime is None else load_baseline(folder, capacity)
        except ValueError as exc:
            log.error("drift: %s; keeping the current reference", exc)
            return
        wanted = self.config.encoder_name
        if baseline is not None and baseline.texts and baseline.encoder != wanted:
            log.error(
                "drift: the baseline in %s was embedded with encoder %r, this monitor uses %r: "
                "vectors of different encoders are not comparable; set the baseline again with "
                "LLMWATCH_DRIFT_ENCODER=%s. Keeping the current reference",
                folder, baseline.encoder, wanted, wanted,
            )  # fmt: skip
            return
        span = (0, 0) if baseline is None else (baseline.start_ms, baseline.end_ms)
        self.monitor.pinned = None if baseline is None else baseline.shape
        self.monitor.pinned_span = span
        if self.texts is not None:
            if baseline is None:
                self.texts.unpin()
            else:
                self.texts.pin(baseline.texts, span)
        log.warning(
            "drift: %s", "trailing reference (baseline cleared)" if baseline is None
            else f"pinned baseline {span[0]}..{span[1]} ms from {folder}",
        )  # fmt: skip

    def _assign(self, consumer: Consumer) -> None:
        layout = self.config.layout
        plan: list[tuple[str, int, ShapeDriftMonitor | EmbeddingDriftMonitor]] = [
            (layout.calls, self._look_back(self.config.drift), self.monitor)
        ]
        if self.texts is not None:
            plan.append((layout.texts, self._look_back(self.texts.config), self.texts))
        assignment = []
        topics = consumer.list_topics(timeout=METADATA_TIMEOUT_S).topics
        for topic, start_ms, monitor in plan:
            metadata = topics.get(topic)
            if metadata is None or metadata.error is not None:
                raise KafkaException(f"topic {topic!r} not found: run `llmwatch topics create`")
            wanted = [TopicPartition(topic, p, start_ms) for p in metadata.partitions]
            for tp in consumer.offsets_for_times(wanted, timeout=METADATA_TIMEOUT_S):
                if tp.offset >= 0:
                    monitor.expect(tp.partition)
                    assignment.append(tp)
                else:
                    assignment.append(TopicPartition(tp.topic, tp.partition, OFFSET_END))
            log.info("drift: reading %s from %d ms", topic, start_ms)
        consumer.assign(assignment)

    def _look_back(self, config: DriftConfig | EmbeddingDriftConfig) -> int:
        return self._clock() - (config.reference_windows + 2) * config.window_ms

    def _take(self, message: Message) -> list[Pending]:
        texts = self.texts is not None and message.topic() == self.config.layout.texts
        monitor: ShapeDriftMonitor | EmbeddingDriftMonitor | None = (
            self.texts if texts else self.monitor
        )
        partition = message.partition() or 0
        error = message.error()
        if error is not None:
            if error.fatal():
                raise KafkaException(error)
            if error.code() == KafkaError._PARTITION_EOF and monitor is not None:
                monitor.idle(partition)
            else:
                log.warning("drift consumer error: %s", error)
            return []
        self.counts["records"] += 1
        value = message.value()
        if is_arrow_record(value):  # the worker's columnar calls
            try:
                events: list[Any] = decode_call_rows(value)
            except ValueError:
                self.counts["bad_records"] += 1
                return []
        else:
            split = split_record(value)
            if isinstance(split, RecordError):
                self.counts["bad_records"] += 1
                return []
            events = split.events
        pending: list[Pending] = []
        for row in events:
            if not isinstance(row, dict):
                continue
            if self.texts is None or not texts:
                self.monitor.add(row, partition)
                continue
            try:
                record = TextRecord.model_validate(row)
            except ValidationError:
                self.counts["bad_records"] += 1  # the text-analysis consumer dead-letters it
                continue
            pending += self.texts.offer(record, partition)
        return pending

    def _embed(self, pending: list[Pending]) -> None:
        if not pending or self.texts is None or self._encoder is None:
            return
        vectors = self._encoder.encode([p.text for p in pending])
        examples: list[str | None] | None = None
        if self._redact is not None and any(p.stored for p in pending):
            stored = [i for i, p in enumerate(pending) if p.stored]
            redacted = self._redact([pending[i].text for i in stored])
            examples = [None] * len(pending)
            for index, text in zip(stored, redacted, strict=True):
                examples[index] = text[:EXAMPLE_CHARS]
        self.texts.accept(pending, vectors, examples)
        self.counts["texts_embedded"] += len(pending)

    def _publish(
        self,
        producer: Producer,
        rows: list[dict[str, Any]],
        topics: list[dict[str, Any]],
        stop: threading.Event,
    ) -> None:
        layout = self.config.layout
        outputs: list[Output] = [(layout.drift, None, encode_drift(rows, topics))]
        for row in rows:
            if row["flagged"]:
                alert = drift_alert(row)
                log.warning("drift alert: %s", alert.description)
                outputs.append((layout.alerts, alert.slo.encode(), alert.to_json()))
                self.counts["alerts"] += 1
        self.counts["rows"] += len(rows)
        send_until_acked(
            producer, outputs, flush_timeout_s=self.config.flush_timeout_s, stop=stop, what="drift"
        )
