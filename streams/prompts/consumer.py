"""The canary analysis process (``llmwatch canary``): registry, calls, guardrail and score records in;
verdicts, rollbacks and alerts out.

It reads with ``assign`` (no consumer group, no committed offsets): the analysis is a function of the
records since each analysed label move, so at start, and whenever a new canary appears, it seeks the
data topics to the earliest analysed move's time (``offsets_for_times``) and rebuilds the arms from
there. A restart therefore loses nothing and repeats only looks already written, which the tables
collapse (keyed by name, label, revision, look). One process analyses all canaries: the work is a few
additions per call of an analysed version, and a JSON decode of every record of the three data topics.

Outputs and delivery: each look's verdict goes to the ``canary`` topic; a rollback goes to the
``prompts`` topic and is applied to the analyzer's own registry state at once, so the same move is never
rolled back twice; the alert goes to the ``alerts`` topic (``llm_alerts``). A rollback and its alert are
flushed (acknowledged by the broker) before the next poll; a failed send is retried until it succeeds
or the process stops.

What can block: the poll (up to ``poll_timeout_s``) and the flush of outputs (``flush_timeout_s`` per
attempt). A record that cannot be read is skipped and counted (the sink dead-letters it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from producers.prompts.records import decode_registry_record
from streams.clock import Clock, wall_clock_ms
from streams.evaluation.items import decode_scores
from streams.heartbeat import touch_heartbeat
from streams.ingest.call_batches import decode_call_rows
from streams.kafka_settings import acked_producer_settings
from streams.outputs import Output, send_until_acked
from streams.prompts.analyzer import CanaryAnalyzer, Decision
from streams.prompts.policy import LabelPolicy
from streams.storage import GUARDRAIL_ROLLUP_TABLE
from streams.text.records import decode_guardrails
from streams.topics import MAX_RECORD_BYTES, TopicLayout

__all__ = ["CanaryConfig", "CanaryConsumer"]

log = logging.getLogger(__name__)

# Rows may start a little before their record's broker timestamp: seek this much earlier.
SEEK_SLACK_MS: Final = 5 * 60_000
METADATA_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class CanaryConfig:
    bootstrap: str
    layout: TopicLayout
    policy: LabelPolicy
    poll_timeout_s: float = 0.5
    batch_max_records: int = 500
    flush_timeout_s: float = 10.0
    heartbeat_path: Path | None = None
    consumer_overrides: dict[str, Any] = field(default_factory=dict)


class CanaryConsumer:
    def __init__(self, config: CanaryConfig, *, clock: Clock = wall_clock_ms) -> None:
        self.config = config
        self.analyzer = CanaryAnalyzer(config.policy, clock_ms=clock)
        self.counts: dict[str, int] = {
            "records": 0, "bad_records": 0, "looks": 0, "rollbacks": 0, "alerts": 0, "seeks": 0,
        }  # fmt: skip
        self._seeked_from: int | None = None
        self._registry_pos = OFFSET_BEGINNING

    @property
    def _data_topics(self) -> list[str]:
        layout = self.config.layout
        return [layout.calls, layout.guardrails, layout.scores]

    def run(self, stop: threading.Event) -> None:
        """Analyse until ``stop`` is set."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.config.bootstrap,
                "group.id": "llmwatch-canary-unused",  # assign() only: nothing is committed
                "enable.auto.commit": False,
                "enable.partition.eof": False,
                **self.config.consumer_overrides,
            }
        )
        producer = Producer(acked_producer_settings(self.config.bootstrap, MAX_RECORD_BYTES))
        try:
            self._assign(consumer, None)
            while not stop.is_set():
                self._beat()
                messages = consumer.consume(
                    self.config.batch_max_records, self.config.poll_timeout_s
                )
                for message in messages:
                    self._take(message)
                wanted = self._start_ms()
                if wanted is not None and (self._seeked_from is None or wanted < self._seeked_from):
                    self._assign(consumer, wanted)
                    continue
                decisions = self.analyzer.due()
                if decisions:
                    self._publish(producer, decisions, stop)
        finally:
            producer.flush(5.0)
            consumer.close()
            log.info("canary analysis stopped: %s", self.counts)

    def _start_ms(self) -> int | None:
        times = [run.move.moved_at_ms for run in self.analyzer.runs.values() if not run.done]
        return min(times) - SEEK_SLACK_MS if times else None

    def _assign(self, consumer: Consumer, from_ms: int | None) -> None:
        """Registry from where it was; data topics from ``from_ms`` (rebuilding the arms) or their end."""
        layout = self.config.layout
        assignment = [TopicPartition(layout.prompts, 0, self._registry_pos)]
        metadata = consumer.list_topics(timeout=METADATA_TIMEOUT_S)
        data = []
        for topic in self._data_topics:
            found = metadata.topics.get(topic)
            if found is None or found.error is not None:
                raise KafkaException(f"topic {topic!r} not found: run `llmwatch topics create`")
            for partition in found.partitions:
                offset = OFFSET_END if from_ms is None else from_ms
                data.append(TopicPartition(topic, partition, offset))
        if from_ms is not None:
            data = consumer.offsets_for_times(data, timeout=METADATA_TIMEOUT_S)
            self.analyzer.reset_arms()
            self.counts["seeks"] += 1
            log.info("canary: reading calls, guardrails and scores from %d ms", from_ms)
        self._seeked_from = from_ms
        consumer.assign(assignment + [_end_if_unknown(tp) for tp in data])

    def _take(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise KafkaException(error)
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("canary consumer error: %s", error)
            return
        self.counts["records"] += 1
        topic, value = message.topic(), message.value()
        layout = self.config.layout
        try:
            if topic == layout.prompts:
                offset = message.offset()
                self._registry_pos = (offset + 1) if offset is not None else self._registry_pos
                self.analyzer.apply_registry(decode_registry_record(value or b""))
            elif topic == layout.calls:
                for row in decode_call_rows(value):
                    self.analyzer.add_call(row)
            elif topic == layout.guardrails:
                for row in decode_guardrails(value).get(GUARDRAIL_ROLLUP_TABLE, []):
                    self.analyzer.add_guardrail_rollup(row)
            elif topic == layout.scores:
                for row in decode_scores(value):
                    self.analyzer.add_score(row)
        except ValueError as exc:
            self.counts["bad_records"] += 1
            log.debug("canary: skipping a record of %s: %s", topic, exc)

    def _publish(
        self, producer: Producer, decisions: Sequence[Decision], stop: threading.Event
    ) -> None:
        layout = self.config.layout
        outputs: list[Output] = []
        for decision in decisions:
            verdict = decision.verdict
            self.counts["looks"] += 1
            log.info(
                "canary %s@%s r%d look %d: %s (score %.0f; failed: %s; action %s)",
                verdict.name, verdict.label, verdict.revision, verdict.result.look,
                verdict.result.outcome.value, verdict.result.score,
                ", ".join(verdict.result.failed_metrics) or "none", verdict.action,
            )  # fmt: skip
            outputs.append((layout.canary, verdict.key(), verdict.to_json()))
            if decision.rollback is not None:
                self.counts["rollbacks"] += 1
                self.analyzer.apply_registry(decision.rollback)
                outputs.append(
                    (layout.prompts, decision.rollback.key(), decision.rollback.to_json())
                )
            if decision.alert is not None:
                self.counts["alerts"] += 1
                log.warning("canary alert: %s", decision.alert.description)
                alert = decision.alert
                outputs.append((layout.alerts, alert.slo.encode(), alert.to_json()))
        send_until_acked(
            producer, outputs, flush_timeout_s=self.config.flush_timeout_s, stop=stop, what="canary"
        )

    def _beat(self) -> None:
        touch_heartbeat(self.config.heartbeat_path)


def _end_if_unknown(tp: TopicPartition) -> TopicPartition:
    # offsets_for_times gives -1 for a partition with nothing at or after the time: read new records.
    if tp.offset < 0:
        return TopicPartition(tp.topic, tp.partition, OFFSET_END)
    return tp
