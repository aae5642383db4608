"""The text-analysis consumer (``llmwatch analyze``): texts topic in, guardrail rows and alerts out.

Its own consumer group (:data:`DEFAULT_GROUP`), so a slow detector delays only guardrail results, never
the metrics path or the dashboards' freshness. It scales by partitions of the texts topic, like the
worker: run one process per core or machine, each gets a share of the partitions.

Loop: poll up to ``batch_max_records`` records, decode their text records (a record or text record
that cannot be read becomes a dead letter that keeps only its size and hash, never its text), analyse
every text of the poll in one batch per detector (``streams.text.analyzer``), publish one ``guardrails``
record per source record (``streams.text.records``; the stored texts of ``store`` captures only), feed
the guardrail SLOs, wait for the broker to acknowledge everything, then commit the offsets.

Guarantees:
- At-least-once: offsets are committed only after every output of the poll was acknowledged; a send
  that fails is retried (with backoff) until it succeeds or the process stops, and then nothing of the
  poll is committed, so a restart re-reads it. Replays give the same rows, which the tables collapse.
- Privacy: texts captured with ``analyze`` are analysed and dropped; ``store`` texts are stored with
  their PII spans replaced by ``<TYPE>``; findings carry offsets and types, never matched text.
- Evaluation (``streams.evaluation.tap``, when given): sampled calls become judge requests and feedback
  records human scores, published with the poll's other outputs (same at-least-once guarantee); the
  sampler's counters go to the metrics topic as ``llm_pipeline_metrics`` rows of process ``analyze``
  every ``alert_interval_s`` and at stop, and a budget that starts biting is logged.
- Guardrail SLOs (``sli.type: guardrail``) are evaluated here, on the analysed calls, with the same
  burn-rate engine as the worker's (``streams.slo.burnrate``), each source record once; alerts and status
  go to the alerts topic. Their windows and firing alerts are saved to the state topic and restored at
  start (``streams.text.slo_state``), so an incident that spans a restart keeps its alert id.

What can block: the detectors (CPU-bound, seconds per large poll) and the final acknowledgement wait,
bounded by ``flush_timeout_s`` per attempt.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from pydantic import ValidationError

from producers.feedback import FeedbackRecord, is_feedback_record
from producers.texts import TextRecord
from producers.wire import RecordError, split_record
from streams.clock import Clock, wall_clock_ms
from streams.evaluation.tap import EvaluationTap
from streams.heartbeat import touch_heartbeat
from streams.ingest.records import DeadLetter
from streams.ingest.validate import SourcePosition
from streams.kafka_settings import acked_producer_settings, group_consumer_settings
from streams.periodic import PIPELINE_METRICS_TABLE, encode_snapshot, metric_rows
from streams.slo.alerts import encode_status
from streams.slo.config import GUARDRAIL_FLAGS, SloFile
from streams.state import restore_from_kafka
from streams.text.records import (
    Finding,
    TextAnalysis,
    encode_guardrails,
    findings_of,
    guardrail_tables,
)
from streams.text.slo_state import GuardrailSlos, state_key
from streams.topics import MAX_RECORD_BYTES, TopicLayout

__all__ = ["DEFAULT_GROUP", "AnalyzerConfig", "TextConsumer", "decode_texts", "slo_row"]

log = logging.getLogger(__name__)

DEFAULT_GROUP: Final = "llmwatch-analyze"
# The process name of the analyzer's rows in llm_pipeline_metrics.
PROCESS: Final = "analyze"
# A texts record holds up to 500 calls' texts; at the encoder's ~15 texts/s four records take minutes.
DEFAULT_BATCH_MAX_RECORDS: Final = 4
# librdkafka leaves the group if consume() is not called for this long: a poll's analysis must fit.
MAX_POLL_INTERVAL_MS: Final = 900_000
POLL_TIMEOUT_S: Final = 0.5
FLUSH_TIMEOUT_S: Final = 30.0
RETRY_BACKOFF_S: Final = (0.5, 1.0, 2.0, 5.0)
ALERT_INTERVAL_S: Final = 10.0
# A text dead letter keeps no payload: text must not be stored before it is analysed.
NO_PAYLOAD: Final = b""

Analyze = Callable[[Sequence[TextRecord]], list[TextAnalysis]]
# (topic, key, value) of one record to publish.
Output = tuple[str, bytes | None, bytes]


@dataclass(frozen=True, slots=True)
class AnalyzerConfig:
    bootstrap: str
    layout: TopicLayout
    group_id: str = DEFAULT_GROUP
    batch_max_records: int = DEFAULT_BATCH_MAX_RECORDS
    session_timeout_ms: int = 45_000
    max_record_bytes: int = MAX_RECORD_BYTES
    heartbeat_path: Path | None = None
    alert_interval_s: float = ALERT_INTERVAL_S
    # Restore the guardrail SLOs' windows and firing alerts from the state topic at start.
    restore_state: bool = True
    consumer_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.batch_max_records < 1:
            raise ValueError(f"batch_max_records must be >= 1, got {self.batch_max_records!r}")
        if not self.group_id:
            raise ValueError(f"group_id must be non-empty, got {self.group_id!r}")


@dataclass(slots=True)
class _Decoded:
    position: SourcePosition
    records: list[TextRecord]
    dead: list[DeadLetter]
    feedback: list[FeedbackRecord] = field(default_factory=list)


def decode_texts(value: bytes | None, position: SourcePosition, now_ms: int) -> _Decoded:
    """The text records and feedback records of one source record, and dead letters (without text)
    for what is unreadable."""
    decoded = _Decoded(position, [], [])

    def dead(index: int, reason: str, size: int) -> None:
        decoded.dead.append(
            DeadLetter(
                failed_at=now_ms,
                reason=f"{reason} (text record of {size} bytes, not kept: text is never stored "
                "unanalysed)",
                source_topic=position.topic,
                source_partition=position.partition,
                source_offset=position.offset,
                index_in_record=index,
                payload=NO_PAYLOAD,
            )
        )

    split = split_record(value)
    if isinstance(split, RecordError):
        dead(-1, f"unreadable texts record: {split.reason}", len(value or b""))
        return decoded
    for index, doc in enumerate(split.events):
        feedback = is_feedback_record(doc)
        try:
            if feedback:
                decoded.feedback.append(FeedbackRecord.model_validate(doc))
            else:
                decoded.records.append(TextRecord.model_validate(doc))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "record"
            kind = "feedback record" if feedback else "text record"
            dead(index, f"invalid {kind}: {where}: {first['msg']}", len(repr(doc)))
    return decoded


def slo_row(analysis: TextAnalysis, findings: list[Finding] | None = None) -> dict[str, Any]:
    """The row a guardrail SLO counts for one analysed call (the burn-rate engine's row shape)."""
    record = analysis.record
    ms = record.start_ms
    found = findings_of(analysis) if findings is None else findings
    return {
        "start_time": ms,
        "end_time": ms,
        "service": record.service,
        "environment": record.environment,
        "provider_name": record.provider_name or "",
        "tenant_id": record.tenant_id or "",
        "span_kind": str(record.span_kind),
        "request_model": record.request_model or "",
        "response_model": record.response_model or "",
        GUARDRAIL_FLAGS: frozenset(str(f.category) for f in found),
    }


class TextConsumer:
    """One process's share of the texts topic."""

    def __init__(
        self,
        config: AnalyzerConfig,
        analyze: Analyze,
        slos: SloFile | None = None,
        *,
        clock: Clock = wall_clock_ms,
        evaluation: EvaluationTap | None = None,
    ) -> None:
        self.config = config
        self._analyze = analyze
        self.evaluation = evaluation
        self._clock = clock
        self.slos = None if slos is None else GuardrailSlos(slos, clock=clock)
        self._next_alerts = 0.0
        self._failed: list[str] = []
        self._instance = f"{socket.gethostname()}-{os.getpid()}"
        self._started_ms = clock()
        self._biting: list[str] = []
        self.counts: dict[str, int] = {
            "records": 0,
            "texts": 0,
            "findings": 0,
            "dead_letters": 0,
            "polls": 0,
        }

    def _consumer_settings(self) -> dict[str, Any]:
        config = self.config
        return {
            **group_consumer_settings(config.bootstrap, config.group_id, config.session_timeout_ms),
            # Analysis of one poll can take minutes with the encoder (see DEFAULT_BATCH_MAX_RECORDS).
            "max.poll.interval.ms": MAX_POLL_INTERVAL_MS,
            **self.config.consumer_overrides,
        }

    def _producer(self) -> Producer:
        return Producer(
            acked_producer_settings(self.config.bootstrap, self.config.max_record_bytes)
        )

    def run(self, stop: threading.Event) -> None:
        """Consume, analyse, publish and commit until ``stop`` is set."""
        if self.config.heartbeat_path is not None:
            self.config.heartbeat_path.parent.mkdir(parents=True, exist_ok=True)
        if self.slos is not None and self.config.restore_state:
            # Before any record: the guardrail SLO windows and firing alerts of the previous run.
            restore_from_kafka(
                self.slos, self.config.bootstrap, self.config.layout.state, self._state_key
            )
        consumer = Consumer(self._consumer_settings())
        producer = self._producer()
        consumer.subscribe([self.config.layout.texts])
        log.info("analysing %s as group %s", self.config.layout.texts, self.config.group_id)
        try:
            while not stop.is_set():
                self._beat()
                messages = consumer.consume(self.config.batch_max_records, POLL_TIMEOUT_S)
                good = [m for m in messages if not _skip(m)]
                if good:
                    self.process(good, producer, stop)
                    if stop.is_set() and self._failed:
                        break  # unacknowledged outputs: leave the offsets for a restart
                    _commit(consumer, good)
                self._publish_alerts(producer)
        finally:
            self._publish_evaluation(producer, self._clock())  # the final counters
            producer.flush(5.0)
            consumer.close()
            log.info("text analysis stopped: %s", self.counts)

    def process(
        self, messages: Sequence[Message], producer: Producer, stop: threading.Event
    ) -> None:
        """Analyse one poll's records and publish their outputs until the broker has them all."""
        now = self._clock()
        decoded = [decode_texts(m.value(), _position(m), now) for m in messages]
        outputs: list[Output] = []
        for part in decoded:
            # One source record at a time (up to 500 calls), beating in between: a long poll stays
            # visible to the health check.
            mine = self._analyze(part.records) if part.records else []
            self._beat()
            found = [findings_of(a) for a in mine]  # once per call: rows, SLOs and counts share it
            outputs += self._outputs(part, mine, found)
            if self.evaluation is not None:
                outputs += self.evaluation.outputs(mine, found, part.feedback)
            if self.slos is not None:
                self.slos.observe(
                    part.position, (slo_row(a, f) for a, f in zip(mine, found, strict=True))
                )
            self.counts["texts"] += len(mine)
            self.counts["findings"] += sum(map(len, found))
            self.counts["dead_letters"] += len(part.dead)
        self.counts["records"] += len(messages)
        self.counts["polls"] += 1
        self._send_until_acked(producer, outputs, stop)

    def _outputs(
        self, part: _Decoded, analyses: list[TextAnalysis], found: list[list[Finding]]
    ) -> list[Output]:
        layout = self.config.layout
        out: list[Output] = [(layout.dlq, None, d.to_json()) for d in part.dead]
        if not analyses:
            return out
        value = encode_guardrails(guardrail_tables(analyses, part.position, found))
        if len(value) <= self.config.max_record_bytes:
            return [*out, (layout.guardrails, None, value)]
        # Too large together (long stored texts): one record per analysed call instead.
        for analysis, its in zip(analyses, found, strict=True):
            one = encode_guardrails(guardrail_tables([analysis], part.position, [its]))
            out.append((layout.guardrails, analysis.record.event_id.encode(), one))
        return out

    def _send_until_acked(
        self,
        producer: Producer,
        outputs: list[Output],
        stop: threading.Event,
    ) -> None:
        pending = outputs
        attempt = 0
        while True:
            self._failed = []
            for topic, key, value in pending:
                self._produce(producer, topic, key, value)
            left = producer.flush(FLUSH_TIMEOUT_S)
            if left == 0 and not self._failed:
                return
            failed = set(self._failed)
            pending = [o for o in pending if _ident(o) in failed] if left == 0 else pending
            pause = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
            attempt += 1
            log.warning(
                "guardrail outputs not acknowledged (%d); retrying in %.1f s", len(pending), pause
            )
            if stop.wait(pause):
                self._failed = [_ident(o) for o in pending]
                return

    def _produce(self, producer: Producer, topic: str, key: bytes | None, value: bytes) -> None:
        ident = _ident((topic, key, value))

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                log.warning("guardrail output to %s failed: %s", topic, err)
                self._failed.append(ident)

        while True:
            try:
                producer.produce(topic, value, key=key, on_delivery=on_delivery)
                return
            except BufferError:
                producer.poll(0.1)

    @property
    def _state_key(self) -> str:
        return state_key(self.config.group_id)

    def _publish_alerts(self, producer: Producer) -> None:
        if time.monotonic() < self._next_alerts:
            return
        self._next_alerts = time.monotonic() + self.config.alert_interval_s
        now = self._clock()
        self._publish_evaluation(producer, now)
        if self.slos is None:
            return
        alerts = self.config.layout.alerts
        for alert in self.slos.evaluate(now):
            producer.produce(alerts, alert.to_json(), key=alert.slo.encode())
        producer.produce(alerts, encode_status(self.slos.status_rows(now)))
        state = self.slos.state_record(self._state_key, now)
        if state is not None:
            producer.produce(self.config.layout.state, state, key=self._state_key.encode())
        producer.poll(0)

    def _publish_evaluation(self, producer: Producer, now: int) -> None:
        """The evaluation tap's counters as pipeline metrics, and a warning per budget that bites."""
        if self.evaluation is None:
            return
        rows = metric_rows(
            PROCESS, self._instance, self._started_ms, now, self.evaluation.metrics()
        )
        producer.produce(
            self.config.layout.metrics, encode_snapshot({PIPELINE_METRICS_TABLE: rows})
        )
        sampler = self.evaluation.sampler
        biting = sampler.biting() if sampler is not None else []
        if biting and biting != self._biting:
            log.warning("judge sampling budgets cap calls: %s", ", ".join(biting))
        self._biting = biting

    def _beat(self) -> None:
        touch_heartbeat(self.config.heartbeat_path)


def _ident(output: Output) -> str:
    topic, key, value = output
    return f"{topic}/{key!r}/{hash(value)}"


def _position(message: Message) -> SourcePosition:
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise KafkaException(f"record without a position: {topic!r}[{partition!r}]@{offset!r}")
    return SourcePosition(topic, partition, offset)


def _skip(message: Message) -> bool:
    error = message.error()
    if error is None:
        return False
    if error.fatal():
        raise KafkaException(error)
    if error.code() != KafkaError._PARTITION_EOF:
        log.warning("consumer error: %s", error)
    return True


def _commit(consumer: Consumer, messages: Sequence[Message]) -> None:
    latest: dict[tuple[str, int], int] = {}
    for m in messages:
        position = _position(m)
        key = (position.topic, position.partition)
        latest[key] = max(latest.get(key, -1), position.offset + 1)
    offsets = [TopicPartition(t, p, o) for (t, p), o in latest.items()]
    for tp in consumer.commit(offsets=offsets, asynchronous=False) or ():
        if tp.error is not None:
            raise KafkaException(tp.error)
