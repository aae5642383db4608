"""The Kafka record format: a versioned batch envelope carrying many events, or one bare event.

Why batches: a Faust agent pays a fixed cost per Kafka record (~10k records/s on 2 cores), while parsing
JSON costs little per event, so one record carries many events, as OTLP exporters do.

Record value forms (UTF-8 JSON, encoded with orjson):
- Batch envelope, version 1: ``{"llmwatch_batch": 1, "sent_at_ms": <int>, "events": [<event>, ...]}``
- A single event: a JSON object that is one event (accepted for producers that do not batch).

Guarantees: :func:`split_record` never raises for any input bytes; it returns the events it could
isolate and, for bytes that cannot be read at all, a :class:`RecordError` naming the reason. It does
not validate events against the contract: that is the worker's job (``streams.ingest.validate``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

__all__ = [
    "BATCH_MARKER",
    "BATCH_VERSION",
    "MAX_RECORD_BYTES",
    "RecordError",
    "SplitRecord",
    "encode_batch",
    "split_record",
]

# Largest Kafka record llmwatch produces or accepts (topic max.message.bytes, producer message.max.bytes).
MAX_RECORD_BYTES: Final = 16 * 1024 * 1024
BATCH_MARKER: Final = "llmwatch_batch"
BATCH_VERSION: Final = 1
SUPPORTED_BATCH_VERSIONS: Final = frozenset({BATCH_VERSION})
SENT_AT_FIELD: Final = "sent_at_ms"
EVENTS_FIELD: Final = "events"


@dataclass(frozen=True, slots=True)
class RecordError:
    """A whole record that could not be split into events."""

    reason: str


@dataclass(frozen=True, slots=True)
class SplitRecord:
    """The raw event dicts of one record, and when the producer sent it (epoch ms, if known)."""

    events: list[Any]
    sent_at_ms: int | None
    is_batch: bool


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def encode_batch(events: Sequence[dict[str, Any]], sent_at_ms: int | None = None) -> bytes:
    """Encode already-serialized event dicts as one batch envelope."""
    return orjson.dumps(
        {
            BATCH_MARKER: BATCH_VERSION,
            SENT_AT_FIELD: now_ms() if sent_at_ms is None else sent_at_ms,
            EVENTS_FIELD: list(events),
        }
    )


def encode_batch_raw(event_json: Sequence[bytes], sent_at_ms: int | None = None) -> bytes:
    """Encode events that are already JSON bytes, without parsing them again."""
    sent = now_ms() if sent_at_ms is None else sent_at_ms
    head = b'{"%s":%d,"%s":%d,"%s":[' % (
        BATCH_MARKER.encode(),
        BATCH_VERSION,
        SENT_AT_FIELD.encode(),
        sent,
        EVENTS_FIELD.encode(),
    )
    return head + b",".join(event_json) + b"]}"


def split_record(value: bytes | None) -> SplitRecord | RecordError:
    """Split one record value into raw event objects. Never raises."""
    if value is None or len(value) == 0:
        return RecordError("empty record value")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return RecordError(f"not valid UTF-8 JSON: {exc}")
    if not isinstance(doc, dict):
        return RecordError(f"expected a JSON object, got {type(doc).__name__}")
    if BATCH_MARKER not in doc:
        return SplitRecord(events=[doc], sent_at_ms=None, is_batch=False)
    version = doc.get(BATCH_MARKER)
    if version not in SUPPORTED_BATCH_VERSIONS:
        return RecordError(
            f"unsupported batch envelope version {version!r}; "
            f"supported: {sorted(SUPPORTED_BATCH_VERSIONS)}"
        )
    events = doc.get(EVENTS_FIELD)
    if not isinstance(events, list):
        return RecordError(f"batch field {EVENTS_FIELD!r} must be a list, got {events!r:.80}")
    sent = doc.get(SENT_AT_FIELD)
    sent_at_ms = sent if isinstance(sent, int) and not isinstance(sent, bool) else None
    return SplitRecord(events=events, sent_at_ms=sent_at_ms, is_batch=True)
