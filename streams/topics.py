"""Kafka topic names, partition counts and retention: configured here and nowhere else.

Every process (SDK, worker, sink, CLI) derives topic names from one :class:`TopicLayout`, built from the
``prefix`` setting. ``TopicLayout.specs()`` is what ``llmwatch topics create`` and the worker declare, so
the partition counts always match (librdkafka's mock cluster and Faust both fail on a mismatch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from producers.wire import MAX_RECORD_BYTES

__all__ = [
    "DEFAULT_PARTITIONS",
    "DEFAULT_PREFIX",
    "DEFAULT_RETENTION_HOURS",
    "DEFAULT_TEXT_RETENTION_HOURS",
    "MAX_RECORD_BYTES",
    "TopicLayout",
    "TopicSpec",
    "faust_internal_specs",
]

DEFAULT_PREFIX: Final = "llmwatch"
DEFAULT_PARTITIONS: Final = 4
DEFAULT_RETENTION_HOURS: Final = 72
# The texts topic holds prompt and output text: kept for a day, enough to ride out an analysis outage.
DEFAULT_TEXT_RETENTION_HOURS: Final = 24
_MS_PER_HOUR: Final = 3_600_000
LOG_APPEND_TIME: Final = "LogAppendTime"
# The state topic rolls a segment every hour so that Kafka compacts it to the latest record per key.
STATE_SEGMENT_MS: Final = _MS_PER_HOUR


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    max_message_bytes: int = MAX_RECORD_BYTES
    cleanup_policy: str = "delete"  # "compact": keep the latest record per key (retention unused)
    segment_ms: int | None = None
    # "LogAppendTime": the broker stamps each record, so a producer's clock cannot set it.
    timestamp_type: str | None = None

    def config(self) -> dict[str, str]:
        config = {
            "retention.ms": str(self.retention_ms),
            "max.message.bytes": str(self.max_message_bytes),
            "cleanup.policy": self.cleanup_policy,
        }
        if self.segment_ms is not None:
            config["segment.ms"] = str(self.segment_ms)
        if self.timestamp_type is not None:
            config["message.timestamp.type"] = self.timestamp_type
        return config


def faust_internal_specs(app_id: str) -> list[TopicSpec]:
    """Topics Faust creates for itself (no tables: only the leader assignor's). A broker without
    CreateTopics (librdkafka's mock cluster) must have them made in advance."""
    return [TopicSpec(f"{app_id}-__assignor-__leader", 1, DEFAULT_RETENTION_HOURS * _MS_PER_HOUR)]


@dataclass(frozen=True, slots=True)
class TopicLayout:
    """The pipeline's topics.

    - ``events``: raw events from the SDK (batch envelopes or single events). Read by the worker.
    - ``calls``: validated, normalized events, one batch per record. Read by the sink.
    - ``dlq``: dead letters (invalid records or events) with the reason and source position.
    - ``rollups``: per-partition analytics states (cost, sketches, rates). Read by the sink.
    - ``alerts``: firing and resolved SLO alert events, and SLO status snapshots. Read by the sink.
    - ``metrics``: the worker's pipeline metrics and top-K user snapshots. Read by the sink.
    - ``state``: the worker's restart state (``streams.state``), one key per worker app id, compacted.
      Read only by the worker, when it starts to own the monitor topic.
    - ``monitor``: per source record, what the SLO monitor reads of its rows (``streams.monitor_records``).
      One partition, so exactly one worker of the group reads it: SLO budgets and the top-K see all
      instances' traffic.
    - ``texts``: captured prompt and output text (``producers.texts``), the only topic that carries
      text from apps, with its own short retention (``text_retention_hours``), and human feedback
      (``producers.feedback``, keyed like its trace). Read by the text-analysis consumer
      (``llmwatch analyze``).
    - ``guardrails``: the text-analysis consumer's findings and per-minute rollups. Read by the sink.
    - ``judge_requests``: sampled calls with the text the judge needs (``streams.evaluation.items``);
      carries text, so it has the texts topic's short retention. Read by ``llmwatch judge``.
    - ``scores``: judge, metric and human scores (``llm_scores`` rows). Read by the sink.
    - ``prompts``: the prompt registry (``producers.prompts.records``): versions and label moves, one
      partition so that moves have one order, compacted with a key per version and per label revision,
      so it keeps every move (the audit trail). Read by the SDK, the CLI, the canary analysis, the sink.
    - ``canary``: the canary analysis's verdicts and their metrics (``streams.prompts.records``). Read
      by the sink.
    - ``drift``: the drift monitor's results, one record per closed window (``streams.drift.records``).
      Read by the sink.
    """

    prefix: str = DEFAULT_PREFIX
    partitions: int = DEFAULT_PARTITIONS
    retention_hours: int = DEFAULT_RETENTION_HOURS
    text_retention_hours: int = DEFAULT_TEXT_RETENTION_HOURS

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {self.partitions!r}")
        if self.retention_hours < 1:
            raise ValueError(f"retention_hours must be >= 1, got {self.retention_hours!r}")
        if self.text_retention_hours < 1:
            raise ValueError(
                f"text_retention_hours must be >= 1, got {self.text_retention_hours!r}"
            )
        if not self.prefix or any(c.isspace() for c in self.prefix):
            raise ValueError(f"topic prefix must be non-empty without spaces, got {self.prefix!r}")

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def calls(self) -> str:
        return f"{self.prefix}.calls"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq"

    @property
    def rollups(self) -> str:
        return f"{self.prefix}.rollups"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def metrics(self) -> str:
        return f"{self.prefix}.metrics"

    @property
    def state(self) -> str:
        return f"{self.prefix}.state"

    @property
    def monitor(self) -> str:
        return f"{self.prefix}.monitor"

    @property
    def texts(self) -> str:
        return f"{self.prefix}.texts"

    @property
    def guardrails(self) -> str:
        return f"{self.prefix}.guardrails"

    @property
    def judge_requests(self) -> str:
        return f"{self.prefix}.judge-requests"

    @property
    def scores(self) -> str:
        return f"{self.prefix}.scores"

    @property
    def prompts(self) -> str:
        return f"{self.prefix}.prompts"

    @property
    def canary(self) -> str:
        return f"{self.prefix}.canary"

    @property
    def drift(self) -> str:
        return f"{self.prefix}.drift"

    def specs(self) -> list[TopicSpec]:
        retention = self.retention_hours * _MS_PER_HOUR
        # The DLQ keeps records 7x longer: someone has to look at them.
        return [
            # The worker bounds event times against the record timestamp: let the broker set it.
            TopicSpec(self.events, self.partitions, retention, timestamp_type=LOG_APPEND_TIME),
            TopicSpec(self.calls, self.partitions, retention),
            TopicSpec(self.dlq, self.partitions, retention * 7),
            TopicSpec(self.rollups, self.partitions, retention),
            TopicSpec(self.alerts, 1, retention * 7),
            TopicSpec(self.metrics, 1, retention),
            TopicSpec(
                self.state, 1, retention, cleanup_policy="compact", segment_ms=STATE_SEGMENT_MS
            ),
            # One partition: Kafka gives it to exactly one worker, which runs the SLO monitor.
            TopicSpec(self.monitor, 1, retention),
            TopicSpec(self.texts, self.partitions, self.text_retention_hours * _MS_PER_HOUR),
            TopicSpec(self.guardrails, self.partitions, retention),
            TopicSpec(
                self.judge_requests, self.partitions, self.text_retention_hours * _MS_PER_HOUR
            ),
            TopicSpec(self.scores, self.partitions, retention),
            TopicSpec(
                self.prompts, 1, retention, cleanup_policy="compact", segment_ms=STATE_SEGMENT_MS
            ),
            TopicSpec(self.canary, 1, retention * 7),
            TopicSpec(self.drift, 1, retention * 7),
        ]
