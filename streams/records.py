"""Record formats the worker publishes for the sinks: normalized call rows and dead letters.

Normalized calls (topic ``calls``): a batch envelope (``producers.wire``) whose events are flat dicts
with exactly the keys in :data:`CALL_FIELDS`, ready for a column insert:
- timestamps are epoch milliseconds (int), UTC;
- absent strings are ``""`` (ClickHouse LowCardinality columns are not Nullable), absent numbers ``None``;
- ``metadata`` is ``dict[str, str]``; ``finish_reasons`` is ``list[str]``;
- ``source_partition`` / ``source_offset`` locate the raw record the event came from (lineage).

Dead letters (topic ``dlq``): one JSON object per record, see :class:`DeadLetter`. The original bytes are
kept whole (base64) up to the topic's record limit, with their length and sha256.

Nothing here does I/O.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Final

import orjson

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


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record, or one event inside a batch record, that failed validation.

    ``index_in_record`` is -1 when the whole record failed, else the event's index in the batch.
    ``dead_letter_id`` is deterministic (source position + index), so a replayed dead letter is
    deduplicated downstream like any event.
    """

    failed_at: int  # epoch ms
    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    index_in_record: int
    payload: bytes

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
        doc["payload_size"] = len(self.payload)
        doc["payload_sha256"] = hashlib.sha256(self.payload).hexdigest()
        return orjson.dumps(doc)

    def to_row(self) -> dict[str, Any]:
        """A dict with exactly the keys of :data:`DLQ_FIELDS` (payload as bytes)."""
        return {
            "dead_letter_id": self.dead_letter_id,
            "failed_at": self.failed_at,
            "reason": self.reason,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "index_in_record": self.index_in_record,
            "payload_size": len(self.payload),
            "payload_sha256": hashlib.sha256(self.payload).hexdigest(),
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
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a dead-letter record ({exc}): {value[:120]!r}") from exc
