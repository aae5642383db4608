"""Record formats the worker publishes for the sinks: normalized call rows and dead letters.

Normalized calls (topic ``calls``): a batch envelope (``producers.wire``) whose events are flat dicts
with exactly the keys in :data:`CALL_FIELDS`, ready for a column insert:
- timestamps are epoch milliseconds (int), UTC;
- absent strings are ``""`` (ClickHouse LowCardinality columns are not Nullable), absent numbers ``None``;
- ``metadata`` is ``dict[str, str]``; ``finish_reasons`` is ``list[str]``;
- ``source_partition`` / ``source_offset`` locate the raw record the event came from (lineage).

Dead letters (topic ``dlq``): one JSON object per record, see :class:`DeadLetter`. The payload is stored
redacted and capped at 256 KiB (``streams.ingest.deadletter``), base64 in the record, with the length and
sha256 of the original bytes; the reason is redacted too. A dead letter therefore always fits its record
and its row, and holds no text the redactor would have removed from a stored call.

Nothing here does I/O.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from typing import Any, Final

import orjson

from streams.ingest.deadletter import store_payload, store_reason

__all__ = [
    "CALL_FIELDS",
    "DLQ_FIELDS",
    "DeadLetter",
    "decode_dead_letter",
]

CALL_FIELDS: Final[tuple[str, ...]] = (
    "event_id",
    "schema_version",
    "start_time",
    "end_time",
    "duration_ms",
    "sent_at",
    "service",
    "environment",
    "user_id",
    "tenant_id",
    "session_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "span_kind",
    "operation_name",
    "provider_name",
    "request_model",
    "response_model",
    "response_id",
    "server_address",
    "agent_name",
    "tool_name",
    "prompt_name",
    "prompt_version",
    "variant",
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "stream",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_output_tokens",
    "finish_reasons",
    "time_to_first_token_ms",
    "status",
    "error_type",
    "http_status",
    "ratelimit_remaining_requests",
    "ratelimit_remaining_tokens",
    "cost_usd",
    "calculated_cost_usd",
    "reported_cost_usd",
    "cost_source",
    "input_text",
    "output_text",
    "metadata",
    "source_partition",
    "source_offset",
)

DLQ_FIELDS: Final[tuple[str, ...]] = (
    "dead_letter_id",
    "failed_at",
    "reason",
    "source_topic",
    "source_partition",
    "source_offset",
    "index_in_record",
    "payload_size",
    "payload_sha256",
    "payload",
)


_UNKNOWN_SIZE: Final = -1


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record, or one event inside a batch record, that failed validation.

    ``index_in_record`` is -1 when the whole record failed, else the event's index in the batch.
    ``dead_letter_id`` is deterministic (source position + index), so a replayed dead letter is
    deduplicated downstream like any event.

    Construction stores the payload and the reason (``streams.ingest.deadletter``): ``payload`` is
    given the raw bytes and holds their redacted, capped form afterwards; ``payload_size`` and
    ``payload_sha256`` are then those of the raw bytes. Both are given only when reading a dead letter
    back from its record (the payload is already stored then, and storing it again leaves it as is).
    """

    failed_at: int  # epoch ms
    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    index_in_record: int
    payload: bytes
    payload_size: int = _UNKNOWN_SIZE
    payload_sha256: str = ""

    def __post_init__(self) -> None:
        stored = store_payload(self.payload)
        object.__setattr__(self, "payload", stored.payload)
        object.__setattr__(self, "reason", store_reason(self.reason))
        if self.payload_size == _UNKNOWN_SIZE or not self.payload_sha256:
            object.__setattr__(self, "payload_size", stored.original_size)
            object.__setattr__(self, "payload_sha256", stored.original_sha256)

    @property
    def dead_letter_id(self) -> str:
        return (
            f"{self.source_topic}/{self.source_partition}/{self.source_offset}/"
            f"{self.index_in_record}"
        )

    def to_json(self) -> bytes:
        doc = asdict(self)
        doc["payload"] = base64.b64encode(self.payload).decode("ascii")
        doc["dead_letter_id"] = self.dead_letter_id
        return orjson.dumps(doc)

    def to_row(self) -> dict[str, Any]:
        """A dict with exactly the keys of :data:`DLQ_FIELDS` (payload as stored bytes)."""
        return {
            "dead_letter_id": self.dead_letter_id,
            "failed_at": self.failed_at,
            "reason": self.reason,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "index_in_record": self.index_in_record,
            "payload_size": self.payload_size,
            "payload_sha256": self.payload_sha256,
            "payload": self.payload,
        }


def decode_dead_letter(value: bytes) -> DeadLetter:
    """Parse a DLQ record; raises ValueError naming what is wrong."""
    try:
        doc = orjson.loads(value)
        return DeadLetter(
            failed_at=int(doc["failed_at"]),
            reason=str(doc["reason"]),
            source_topic=str(doc["source_topic"]),
            source_partition=int(doc["source_partition"]),
            source_offset=int(doc["source_offset"]),
            index_in_record=int(doc["index_in_record"]),
            payload=base64.b64decode(doc["payload"]),
            payload_size=int(doc.get("payload_size", _UNKNOWN_SIZE)),
            payload_sha256=str(doc.get("payload_sha256", "")),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a dead-letter record ({exc}): {value[:120]!r}") from exc
