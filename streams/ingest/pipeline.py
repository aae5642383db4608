"""One raw record in, everything the worker publishes for it out: no Faust, no I/O.

:meth:`RecordProcessor.process` validates, redacts, prices and aggregates one record and returns the
encoded ``calls`` and ``rollups`` records plus its dead letters.

Guarantees:
- It never raises. If anything unexpected fails (a bug, not bad data, which ``streams.ingest.validate``
  already handles), the whole record becomes one dead letter with the error as its reason, so a poison
  record can neither crash nor stall the worker, and nothing is lost.
- Every output record fits the output topics' record limit (``max_record_bytes``): the calls of one
  source record are packed into as few records as fit (Arrow from ``ARROW_MIN_ROWS`` rows on, JSON
  below: ``streams.ingest.call_batches`` reads both), the rollups likewise. A single normalized
  row that cannot fit alone (e.g. an event carrying ~16 MiB of text, whose row is larger than the event)
  is dead-lettered with its size in the reason *before* the rollups are computed, so the rollups count
  exactly the rows that reach ``llm_calls``.
- Deterministic: the output depends on the record's bytes, its position and its Kafka timestamp
  (``record_ms``), and on the configuration (prices, lifecycle catalog), never on the wall clock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from producers.wire import MAX_RECORD_BYTES, encode_batch_raw
from streams.analytics.record import RecordAnalytics
from streams.analytics.rollups import ROLLUPS_KIND, RecordRollups, rollup_tables
from streams.ingest.call_batches import encode_call_batch, rows_to_columns
from streams.ingest.records import DeadLetter
from streams.ingest.validate import DEFAULT_TIME_BOUNDS, SourcePosition, TimeBounds, ingest_record
from streams.table_rows import encode_tables
from streams.text.redaction import Redactor

__all__ = ["ARROW_MIN_ROWS", "OUTPUT_RECORD_MARGIN_BYTES", "RecordOutput", "RecordProcessor"]

log = logging.getLogger(__name__)

WHOLE_RECORD: Final = -1
# Room left under the record limit for the Kafka record's own framing (key, headers, batch header).
OUTPUT_RECORD_MARGIN_BYTES: Final = 4_096
# The Arrow stream around a calls batch (schema message ~7 KiB, batch header, end marker), bounded.
_ENVELOPE_BYTES: Final = 16_384
# A JSON row's size without its text and metadata is under this (its ~40 bounded strings at 6 bytes a
# character when escaped, keys and numbers): only a row whose bound exceeds the limit is measured.
_FIXED_ROW_JSON_BOUND: Final = 64 * 1024
# The JSON calls envelope around the rows (marker, version, brackets): an upper bound.
_JSON_ENVELOPE_BYTES: Final = 96
# Records with this many valid rows or more publish their calls as Arrow (see _pack_calls).
ARROW_MIN_ROWS: Final = 64
_JSON_BYTES_PER_CHAR: Final = 6


@dataclass(frozen=True, slots=True)
class RecordOutput:
    """What one source record becomes. ``calls`` and ``rollups`` are encoded records, each of them
    within the record limit; empty when the record had no valid event."""

    calls: list[bytes] = field(default_factory=list)
    rollups: list[bytes] = field(default_factory=list)
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
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> None:
        if max_record_bytes <= OUTPUT_RECORD_MARGIN_BYTES + _ENVELOPE_BYTES:
            raise ValueError(
                f"max_record_bytes must exceed {OUTPUT_RECORD_MARGIN_BYTES + _ENVELOPE_BYTES}, "
                f"got {max_record_bytes!r}"
            )
        self.analytics = analytics
        self.redactor = redactor
        self.bounds = bounds
        self.record_limit = max_record_bytes - OUTPUT_RECORD_MARGIN_BYTES

    def process(self, value: bytes | None, source: SourcePosition, record_ms: int) -> RecordOutput:
        try:
            return self._process(value, source, record_ms)
        except Exception as exc:  # a bug must not stall the partition: dead-letter the record
            log.exception(
                "internal error on %s/%d@%d", source.topic, source.partition, source.offset
            )
            dead = DeadLetter(
                failed_at=record_ms,
                reason=f"internal worker error: {type(exc).__name__}: {exc}",
                source_topic=source.topic,
                source_partition=source.partition,
                source_offset=source.offset,
                index_in_record=WHOLE_RECORD,
                payload=value or b"",
            )
            return RecordOutput(dead_letters=[dead])

    def _process(self, value: bytes | None, source: SourcePosition, record_ms: int) -> RecordOutput:
        result = ingest_record(
            value,
            source,
            record_ms=record_ms,
            redactor=self.redactor,
            cost_fn=self.analytics.cost_fields,
            bounds=self.bounds,
        )
        dead_letters = list(result.dead_letters)
        rows: list[dict[str, Any]] = []
        indexes: list[int] = []
        row_limit = self.record_limit - _ENVELOPE_BYTES
        for index, row in zip(result.indexes, result.rows, strict=True):
            if _json_bound(row) > row_limit:
                data = orjson.dumps(row)
                if len(data) > row_limit:
                    dead_letters.append(_oversized(row, data, index, row_limit, source, record_ms))
                    continue
            rows.append(row)
            indexes.append(index)
        calls, too_large = _pack_calls(rows, self.record_limit, result.sent_at_ms)
        for position in sorted(too_large, reverse=True):
            row = rows.pop(position)
            data = orjson.dumps(row)
            index = indexes.pop(position)
            dead_letters.append(_oversized(row, data, index, row_limit, source, record_ms))
        if not rows:
            return RecordOutput(dead_letters=dead_letters, redactions=result.redactions)
        rollups = self.analytics.rollups(rows, source)
        return RecordOutput(
            calls=calls,
            rollups=list(_pack_rollups(rollups, self.record_limit)),
            dead_letters=dead_letters,
            rows=rows,
            redactions=result.redactions,
        )


def _json_bound(row: Mapping[str, Any]) -> int:
    """An upper bound of the row's JSON size, from its free-text lengths alone."""
    chars = len(row["input_text"]) + len(row["output_text"])
    for key, value in row["metadata"].items():
        chars += len(key) + len(value)
    return _FIXED_ROW_JSON_BOUND + _JSON_BYTES_PER_CHAR * chars


def _oversized(
    row: Mapping[str, Any],
    data: bytes,
    index: int,
    row_limit: int,
    source: SourcePosition,
    record_ms: int,
) -> DeadLetter:
    return DeadLetter(
        failed_at=record_ms,
        reason=(
            f"event {row['event_id']!r} normalizes to a {len(data)}-byte row, over the "
            f"{row_limit}-byte limit of one calls record (max_record_bytes): too much captured text?"
        ),
        source_topic=source.topic,
        source_partition=source.partition,
        source_offset=source.offset,
        index_in_record=index,
        payload=data,
    )


def _pack_calls(
    rows: Sequence[Mapping[str, Any]], limit: int, sent_at_ms: int | None
) -> tuple[list[bytes], list[int]]:
    """The calls records of a record's rows: Arrow from :data:`ARROW_MIN_ROWS` rows on, JSON below.

    Arrow costs ~350 µs per record whatever its size (one conversion per column) and ~3 µs a row;
    JSON ~2 µs a row. Small records (an SDK at a few thousand events/s sends ~10-30 events per
    record) therefore go as JSON, which every reader also takes; large ones as Arrow, which the sink
    inserts without building a Python row per call."""
    if len(rows) >= ARROW_MIN_ROWS:
        return _pack_arrow(rows, limit)
    return list(_pack_json(rows, limit, sent_at_ms)), []


def _pack_json(
    rows: Sequence[Mapping[str, Any]], limit: int, sent_at_ms: int | None
) -> Iterator[bytes]:
    """JSON calls envelopes of consecutive rows, each at most ``limit`` bytes (every row fits alone:
    the caller dead-lettered the rows over the limit)."""
    encoded = [orjson.dumps(row) for row in rows]
    start, size = 0, _JSON_ENVELOPE_BYTES
    for i, data in enumerate(encoded):
        if i > start and size + len(data) + 1 > limit:
            yield encode_batch_raw(encoded[start:i], sent_at_ms=sent_at_ms)
            start, size = i, _JSON_ENVELOPE_BYTES
        size += len(data) + 1
    yield encode_batch_raw(encoded[start:], sent_at_ms=sent_at_ms)


def _pack_arrow(rows: Sequence[Mapping[str, Any]], limit: int) -> tuple[list[bytes], list[int]]:
    """Arrow calls records of consecutive rows, each at most ``limit`` bytes, and the indexes of rows
    too large for a record alone. All rows go in one record, or halves until every part fits (a row
    whose JSON fits the limit nearly always fits alone as Arrow, which carries no keys or escapes)."""
    records: list[bytes] = []
    too_large: list[int] = []
    pending = [(0, len(rows))]
    while pending:
        start, stop = pending.pop()
        data = encode_call_batch(rows_to_columns(rows[start:stop]))
        if len(data) <= limit:
            records.append(data)
        elif stop - start == 1:
            too_large.append(start)
        else:
            middle = (start + stop) // 2
            pending.extend(((middle, stop), (start, middle)))
    return records, too_large


def _pack_rollups(rollups: RecordRollups, limit: int) -> Iterator[bytes]:
    """One rollups record, or several when one would exceed ``limit`` (rows split in halves)."""
    pending = [rollup_tables(rollups)]
    while pending:
        tables = pending.pop()
        data = encode_tables(ROLLUPS_KIND, tables)
        if len(data) <= limit:
            yield data
            continue
        name, rows = max(tables.items(), key=lambda item: len(item[1]))
        if len(tables) > 1:
            pending.extend({t: r} for t, r in tables.items() if r)
        elif len(rows) > 1:
            half = len(rows) // 2
            pending.extend(({name: rows[:half]}, {name: rows[half:]}))
        else:
            raise ValueError(f"one {name} rollup row is {len(data)} bytes, over {limit}")
