"""One raw record in, everything the worker publishes for it out: no Faust, no I/O.

:meth:`RecordProcessor.process` validates, redacts, prices and aggregates one record and returns the
encoded ``calls`` and ``rollups`` records plus its dead letters. Guarantee: it never raises. If anything
unexpected fails (a bug, not bad data, which ``streams.ingest`` already handles), the whole record becomes
one dead letter with the error as its reason, so a poison record can neither crash nor stall the worker,
and nothing is lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Final

from producers.wire import encode_batch
from streams.analytics import RecordAnalytics
from streams.ingest import DEFAULT_TIME_BOUNDS, SourcePosition, TimeBounds, ingest_record
from streams.records import DeadLetter
from streams.redaction import Redactor
from streams.rollups import encode_rollups

__all__ = ["RecordOutput", "RecordProcessor"]

log = logging.getLogger(__name__)

WHOLE_RECORD: Final = -1


@dataclass(frozen=True, slots=True)
class RecordOutput:
    calls: bytes | None = None
    rollups: bytes | None = None
    dead_letters: list[DeadLetter] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    redactions: dict[str, int] = field(default_factory=dict)


class RecordProcessor:
    """Turns raw ``events`` records into ``calls``, ``rollups`` and ``dlq`` records."""

    def __init__(
        self,
        analytics: RecordAnalytics,
        redactor: Redactor | None = None,
        bounds: TimeBounds = DEFAULT_TIME_BOUNDS,
    ) -> None:
        self.analytics = analytics
        self.redactor = redactor
        self.bounds = bounds

    def process(self, value: bytes | None, source: SourcePosition, now_ms: int) -> RecordOutput:
        try:
            return self._process(value, source, now_ms)
        except Exception as exc:  # a bug must not stall the partition: dead-letter the record
            log.exception(
                "internal error on %s/%d@%d", source.topic, source.partition, source.offset
            )
            dead = DeadLetter(
                failed_at=now_ms,
                reason=f"internal worker error: {type(exc).__name__}: {exc}",
                source_topic=source.topic,
                source_partition=source.partition,
                source_offset=source.offset,
                index_in_record=WHOLE_RECORD,
                payload=value or b"",
            )
            return RecordOutput(dead_letters=[dead])

    def _process(self, value: bytes | None, source: SourcePosition, now_ms: int) -> RecordOutput:
        result = ingest_record(
            value,
            source,
            now_ms=now_ms,
            redactor=self.redactor,
            cost_fn=self.analytics.cost_fields,
            bounds=self.bounds,
        )
        if not result.rows:
            return RecordOutput(dead_letters=result.dead_letters, redactions=result.redactions)
        rollups = self.analytics.rollups(result.rows, source)
        return RecordOutput(
            calls=encode_batch(result.rows, sent_at_ms=result.sent_at_ms),
            rollups=encode_rollups(rollups),
            dead_letters=result.dead_letters,
            rows=result.rows,
            redactions=result.redactions,
        )
