"""The drift process (``llmwatch drift``): normalized calls in, ``llm_drift`` rows and drift alerts out.

It reads the calls topic by assignment (no consumer group): at start it seeks every partition to the
time the trailing reference needs (``(reference_windows + 2) * window``) and rebuilds its windows from
there, so a restart loses nothing and rewrites only windows already stored (the table collapses them).
Each closed window becomes one ``drift`` record; each flagged (scope, feature) also raises an alert on
the alerts topic (``llm_alerts``, rule ``drift``) naming the scope, the feature and what moved.

Delivery: outputs are flushed (acknowledged) before the next poll; a failed send is retried until it
succeeds or the process stops. What can block: the poll (``poll_timeout_s``) and the flush
(``flush_timeout_s`` per attempt). A record that cannot be read is skipped and counted (the sink
dead-letters it).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from confluent_kafka import (
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from producers.wire import RecordError, split_record
from streams.clock import Clock, wall_clock_ms
from streams.drift.monitor import DriftConfig, ShapeDriftMonitor
from streams.drift.records import encode_drift
from streams.heartbeat import touch_heartbeat
from streams.kafka_settings import acked_producer_settings
from streams.outputs import Output, send_until_acked
from streams.slo.alerts import AlertEvent, point_alert
from streams.topics import MAX_RECORD_BYTES, TopicLayout

__all__ = ["DriftConsumer", "DriftConsumerConfig", "drift_alert"]

log = logging.getLogger(__name__)

METADATA_TIMEOUT_S: Final = 10.0
ALERT_RULE: Final = "drift"


@dataclass(frozen=True, slots=True)
class DriftConsumerConfig:
    bootstrap: str
    layout: TopicLayout
    drift: DriftConfig = field(default_factory=DriftConfig)
    poll_timeout_s: float = 0.5
    batch_max_records: int = 500
    flush_timeout_s: float = 10.0
    heartbeat_path: Path | None = None
    consumer_overrides: dict[str, Any] = field(default_factory=dict)


def drift_alert(row: dict[str, Any]) -> AlertEvent:
    """The alert of one flagged drift row (one per scope, feature and window)."""
    scope = "/".join(str(row[k]) for k in ("service", "model", "span_kind") if row[k])
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
            f"(PSI {float(row['effect']):.2f}, q {float(row['q_value']):.2g}): {row['top_shift']}"
        ),
        runbook=(
            "Open the Drift dashboard for the scope. A shift in output tokens or latency with an "
            "unchanged model id often means the provider updated the model; check the prompt "
            "versions deployed in the window too."
        ),
    )


class DriftConsumer:
    def __init__(self, config: DriftConsumerConfig, *, clock: Clock = wall_clock_ms) -> None:
        self.config = config
        self.monitor = ShapeDriftMonitor(config.drift)
        self._clock = clock
        self.counts: dict[str, int] = {"records": 0, "bad_records": 0, "rows": 0, "alerts": 0}

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
                for message in consumer.consume(
                    self.config.batch_max_records, self.config.poll_timeout_s
                ):
                    self._take(message)
                rows = self.monitor.close_due(self._clock())
                if rows:
                    self._publish(producer, rows, stop)
        finally:
            producer.flush(5.0)
            consumer.close()
            log.info("drift monitor stopped: %s (late calls %d)", self.counts, self.monitor.late)

    def _assign(self, consumer: Consumer) -> None:
        drift = self.config.drift
        start_ms = self._clock() - (drift.reference_windows + 2) * drift.window_ms
        topic = self.config.layout.calls
        metadata = consumer.list_topics(timeout=METADATA_TIMEOUT_S).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise KafkaException(f"topic {topic!r} not found: run `llmwatch topics create`")
        wanted = [TopicPartition(topic, p, start_ms) for p in metadata.partitions]
        found = consumer.offsets_for_times(wanted, timeout=METADATA_TIMEOUT_S)
        for tp in found:
            if tp.offset >= 0:
                self.monitor.expect(tp.partition)
        consumer.assign(
            [
                tp if tp.offset >= 0 else TopicPartition(tp.topic, tp.partition, OFFSET_END)
                for tp in found
            ]
        )
        log.info("drift: reading %s from %d ms", topic, start_ms)

    def _take(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise KafkaException(error)
            if error.code() == KafkaError._PARTITION_EOF:
                self.monitor.idle(message.partition() or 0)
            else:
                log.warning("drift consumer error: %s", error)
            return
        self.counts["records"] += 1
        split = split_record(message.value())
        if isinstance(split, RecordError):
            self.counts["bad_records"] += 1
            return
        partition = message.partition() or 0
        for row in split.events:
            if isinstance(row, dict):
                self.monitor.add(row, partition)

    def _publish(
        self, producer: Producer, rows: list[dict[str, Any]], stop: threading.Event
    ) -> None:
        layout = self.config.layout
        outputs: list[Output] = [(layout.drift, None, encode_drift(rows))]
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
