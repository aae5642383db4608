"""Validate one raw Kafka record and turn it into normalized call rows and dead letters.

This is the worker's per-record logic, kept free of Faust so it can be tested and benchmarked alone.

Guarantees:
- :func:`ingest_record` never raises for any bytes. Every event in the record ends up in exactly one of
  ``IngestResult.events`` (valid) or ``IngestResult.dead_letters`` (invalid, with a reason naming the
  field and the bad value). A record that cannot be split at all becomes one dead letter holding the
  record's bytes; a bad event inside a batch becomes a dead letter alone, holding that event's JSON.
  Dead-letter payloads and reasons are stored redacted and capped (``streams.ingest.deadletter``).
- No prompt or output text reaches a row: text that arrives on the events topic (the SDK never sends
  it there; it uses the texts topic, ``producers.texts``) is dropped, and only the text-analysis consumer
  stores text, analysed and redacted. Every metadata value is redacted (``streams.text.redaction``)
  before it is placed in a row.
- Rows have exactly the keys of ``streams.ingest.records.CALL_FIELDS``.
- Python's cyclic GC is paused while one record is split, validated and its rows built (nothing a
  collection could free is made meanwhile), and re-enabled after, also on error; it stays off if it was off.
- A record's events are validated in one pydantic-core call (``streams.ingest.batch_validate``); the
  per-event :func:`_validate` stays the reference, gives every dead letter its reason, and the batch path
  is tested to decide every event exactly as it does.
- Deterministic: ids an event lacks (``event_id``, ``trace_id``, ``span_id``) are derived from its
  position, not drawn at random, and the outcome depends only on the record's bytes, its position and
  its Kafka timestamp (``record_ms``), never on the worker's wall clock, so a replay gives the same
  rows and dead letters.
  Event times are bounded against ``record_ms``: ``start_time`` no older than the rows' retention
  (``streams.storage.CALLS_TTL_DAYS``), ``end_time`` (and so ``start_time``) at most
  :data:`DEFAULT_MAX_EVENT_FUTURE_MS` ahead. One event stamped in the year 2100 is dead-lettered with
  that reason; it never reaches a row, a rollup or the stream's alerting state.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from pydantic import ValidationError

from producers.events import LlmCallEvent
from producers.wire import RecordError, split_record
from streams.clock import DEFAULT_MAX_FUTURE_MS
from streams.ingest.records import CALL_FIELDS, DeadLetter
from streams.storage import CALLS_TTL_DAYS, DAY_MS
from streams.text.redaction import Redactor

__all__ = [
    "CostFields",
    "IngestResult",
    "SourcePosition",
    "TimeBounds",
    "describe_validation_error",
    "ingest_record",
    "to_call_row",
]

WHOLE_RECORD: Final = -1
# Events outside this range of event times are dead-lettered, not stored: older ones would be expired by
# the llm_calls row TTL on insert (silently), and ones far in the future come from a broken clock.
DEFAULT_MAX_EVENT_AGE_MS: Final = CALLS_TTL_DAYS * DAY_MS
# The same allowance the stream state's clock guard uses: what ingest keeps, the SLO windows count.
DEFAULT_MAX_EVENT_FUTURE_MS: Final = DEFAULT_MAX_FUTURE_MS
_MAX_REASON_VALUE_CHARS: Final = 80
_REASON_REDACTOR: Final = Redactor()
# Ids the contract fills at random when absent; ingest derives them from the source position instead.
_DERIVED_IDS: Final = ("event_id", "trace_id", "span_id")


@dataclass(frozen=True, slots=True)
class SourcePosition:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class CostFields:
    """The cost columns of a row (filled by the cost analytics; NULL when the price is unknown)."""

    cost_usd: float | None = None
    calculated_cost_usd: float | None = None
    cost_source: str = ""


NO_COST: Final = CostFields()

# Computes the cost columns of one valid event; injected by the worker.
CostFn = Callable[[LlmCallEvent], CostFields]


@dataclass(slots=True)
class IngestResult:
    events: list[LlmCallEvent] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)  # each row's event index in the record
    dead_letters: list[DeadLetter] = field(default_factory=list)
    sent_at_ms: int | None = None
    redactions: dict[str, int] = field(default_factory=dict)


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``field: message (got value)``."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "event"
        # Redacted before it is cut, so a cut cannot leave the recognisable prefix of a secret.
        value = _REASON_REDACTOR.redact(repr(err.get("input"))).text
        if len(value) > _MAX_REASON_VALUE_CHARS:
            value = value[:_MAX_REASON_VALUE_CHARS] + "..."
        message = err["msg"]
        if err["type"] in {"value_error", "assertion_error"} or not err["loc"]:
            parts.append(f"{where}: {message}")
        else:
            parts.append(f"{where}: {message} (got {value})")
    return "; ".join(parts)


def _ms(event_time: Any) -> int:
    return int(event_time.timestamp() * 1000)


def _meta(metadata: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in metadata.items():
        if isinstance(value, str):
            out[key] = value
        elif value is None:
            out[key] = ""
        else:
            out[key] = orjson.dumps(value).decode()
    return out


def to_call_row(
    event: LlmCallEvent,
    source: SourcePosition,
    *,
    sent_at_ms: int | None,
    cost: CostFields = NO_COST,
    input_text: str = "",
    output_text: str = "",
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The normalized row for one valid event (keys: ``CALL_FIELDS``).

    ``input_text``, ``output_text`` and ``metadata`` are given as stored (redacted); ``metadata``
    defaults to the event's own, as strings.
    """
    # Read from the model's __dict__ (its field values): a third of attribute access's cost, per field.
    f = event.__dict__
    start, end = f["start_time"], f["end_time"]
    end_ms = _ms(end)
    row = {
        "event_id": f["event_id"],
        "schema_version": f["schema_version"],
        "start_time": _ms(start),
        "end_time": end_ms,
        "duration_ms": (end - start).total_seconds() * 1000.0,  # LlmCallEvent.duration_ms
        "sent_at": sent_at_ms if sent_at_ms is not None else end_ms,
        "service": f["service"],
        "environment": f["environment"],
        "user_id": f["user_id"] or "",
        "tenant_id": f["tenant_id"] or "",
        "session_id": f["session_id"] or "",
        "trace_id": f["trace_id"],
        "span_id": f["span_id"],
        "parent_span_id": f["parent_span_id"] or "",
        "span_kind": str(f["span_kind"]),
        "operation_name": f["operation_name"],
        "provider_name": f["provider_name"] or "",
        "request_model": f["request_model"] or "",
        "response_model": f["response_model"] or "",
        "response_id": f["response_id"] or "",
        "server_address": f["server_address"] or "",
        "agent_name": f["agent_name"] or "",
        "tool_name": f["tool_name"] or "",
        "prompt_name": f["prompt_name"] or "",
        "prompt_version": f["prompt_version"] or "",
        "variant": f["variant"] or "",
        "temperature": f["temperature"],
        "top_p": f["top_p"],
        "max_tokens": f["max_tokens"],
        "seed": f["seed"],
        "stream": f["stream"],
        "input_tokens": f["input_tokens"],
        "output_tokens": f["output_tokens"],
        "cache_read_input_tokens": f["cache_read_input_tokens"],
        "cache_creation_input_tokens": f["cache_creation_input_tokens"],
        "reasoning_output_tokens": f["reasoning_output_tokens"],
        "finish_reasons": list(f["finish_reasons"]),
        "time_to_first_token_ms": f["time_to_first_token_ms"],
        "status": str(f["status"]),
        "error_type": f["error_type"] or "",
        "http_status": f["http_status"],
        "ratelimit_remaining_requests": f["ratelimit_remaining_requests"],
        "ratelimit_remaining_tokens": f["ratelimit_remaining_tokens"],
        "cost_usd": cost.cost_usd,
        "calculated_cost_usd": cost.calculated_cost_usd,
        "reported_cost_usd": f["reported_cost_usd"],
        "cost_source": cost.cost_source,
        "input_text": input_text,
        "output_text": output_text,
        "metadata": _meta(f["metadata"]) if metadata is None else dict(metadata),
        "source_partition": source.partition,
        "source_offset": source.offset,
    }
    assert len(row) == len(CALL_FIELDS)
    return row


def _dead(
    source: SourcePosition, record_ms: int, index: int, reason: str, payload: bytes
) -> DeadLetter:
    return DeadLetter(
        failed_at=record_ms,
        reason=reason,
        source_topic=source.topic,
        source_partition=source.partition,
        source_offset=source.offset,
        index_in_record=index,
        payload=payload,
    )


def _redacted_meta(
    metadata: Mapping[str, Any], redactor: Redactor | None, counts: dict[str, int]
) -> dict[str, str]:
    if not metadata:
        return {}
    values = _meta(metadata)
    return values if redactor is None else redactor.redact_mapping(values, counts)


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """The event times accepted around a reference time: the Kafka record's timestamp (epoch ms).

    ``start_time`` may be at most ``max_age_ms`` older, ``end_time`` at most ``max_future_ms`` newer
    (``end_time >= start_time`` is part of the contract, so both ends of the event are bounded).
    """

    max_age_ms: int = DEFAULT_MAX_EVENT_AGE_MS
    max_future_ms: int = DEFAULT_MAX_EVENT_FUTURE_MS

    def __post_init__(self) -> None:
        if self.max_age_ms <= 0 or self.max_future_ms < 0:
            raise ValueError(
                "need max_age_ms > 0 and max_future_ms >= 0, "
                f"got {self.max_age_ms!r} and {self.max_future_ms!r}"
            )

    def reason(self, event: LlmCallEvent, record_ms: int) -> str | None:
        """Why ``event`` is out of bounds for a record stamped ``record_ms``, or None."""
        start, end = _ms(event.start_time), _ms(event.end_time)
        if start < record_ms - self.max_age_ms:
            return (
                f"start_time {event.start_time.isoformat()} is more than "
                f"{self.max_age_ms / DAY_MS:g} days older than its Kafka record "
                f"({_iso(record_ms)}): it would expire from storage on insert"
            )
        if end > record_ms + self.max_future_ms:
            return (
                f"end_time {event.end_time.isoformat()} is more than "
                f"{self.max_future_ms / 60_000:g} minutes after its Kafka record "
                f"({_iso(record_ms)}): clock skew?"
            )
        return None


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


DEFAULT_TIME_BOUNDS: Final = TimeBounds()


def _with_derived_ids(raw: dict[str, Any], source: SourcePosition, index: int) -> dict[str, Any]:
    """Fill missing ids from the event's position, so a replay gives the same ids (the contract's
    defaults are random; ``event_id`` is the llm_calls deduplication key)."""
    if all(name in raw for name in _DERIVED_IDS):
        return raw
    seed = f"{source.topic}/{source.partition}/{source.offset}/{index}".encode()
    digest = hashlib.sha256(seed).hexdigest()
    derived = {"event_id": digest[:32], "trace_id": digest[32:64], "span_id": digest[:16]}
    return {**{name: derived[name] for name in _DERIVED_IDS if name not in raw}, **raw}


def _validate(
    raw: Any, index: int, source: SourcePosition, record_ms: int, bounds: TimeBounds
) -> LlmCallEvent | str:
    """The valid event, or why it is not one (the caller builds the dead letter once)."""
    if not isinstance(raw, dict):
        return f"event #{index} must be a JSON object, got {type(raw).__name__}: {raw!r:.80}"
    try:
        event = LlmCallEvent.model_validate(_with_derived_ids(raw, source, index))
    except ValidationError as exc:
        return describe_validation_error(exc)
    return bounds.reason(event, record_ms) or event


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cyclic GC held off for one record: every object a record's validation makes lives until
    the record is done, so a collection in between frees nothing, yet at ~10k new containers per 500
    events it ran ~10 young and some full collections per record (~8 us/event of 22 in the bench)."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def ingest_record(
    value: bytes | None,
    source: SourcePosition,
    *,
    record_ms: int,
    redactor: Redactor | None = None,
    cost_fn: CostFn | None = None,
    bounds: TimeBounds = DEFAULT_TIME_BOUNDS,
) -> IngestResult:
    """Validate and normalize every event in one record. Never raises."""
    with _gc_paused():
        return _ingest(value, source, record_ms, redactor, cost_fn, bounds)


def _ingest(
    value: bytes | None,
    source: SourcePosition,
    record_ms: int,
    redactor: Redactor | None,
    cost_fn: CostFn | None,
    bounds: TimeBounds,
) -> IngestResult:
    result = IngestResult()
    split = split_record(value)
    if isinstance(split, RecordError):
        result.dead_letters.append(
            _dead(source, record_ms, WHOLE_RECORD, split.reason, value or b"")
        )
        return result
    result.sent_at_ms = split.sent_at_ms
    # A single bare event is addressed as the whole record; events in a batch by their index.
    single = not split.is_batch
    # Imported here: batch_validate builds on this module's per-event reference (_validate).
    from streams.ingest.batch_validate import validate_events

    outcome = validate_events(split.events, source, record_ms, bounds, whole_record=single)
    for position, reason in outcome.rejected.items():
        # A bare event keeps the exact original bytes, not a re-serialization.
        payload = (value or b"") if single else orjson.dumps(split.events[position])
        address = WHOLE_RECORD if single else position
        result.dead_letters.append(_dead(source, record_ms, address, reason, payload))
    for position, event in zip(outcome.positions, outcome.events, strict=True):
        cost = cost_fn(event) if cost_fn is not None else NO_COST
        row = to_call_row(
            event,
            source,
            sent_at_ms=split.sent_at_ms,
            cost=cost,
            metadata=_redacted_meta(event.__dict__["metadata"], redactor, result.redactions),
        )
        result.events.append(event)
        result.rows.append(row)
        result.indexes.append(WHOLE_RECORD if single else position)
    return result
