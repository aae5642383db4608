"""Turn what an app passes to ``emit`` into one event's JSON bytes and its key bucket.

Runs on the SDK's background thread (``producers.sdk.send_loop``), never on the app's thread: ``emit``
only queues the event. Pure: no I/O, no locks.

Guarantees:
- :func:`encode_event` never raises: anything it cannot encode comes back as :class:`Rejected` with
  the reason.
- Dicts are not validated (the worker validates and dead-letters invalid events, so nothing is lost
  silently). They are copied, never mutated; a missing ``event_id`` is generated (so replays
  deduplicate downstream), and missing ``service`` / ``environment`` take the publisher's defaults.
- Text capture is opt-in (``producers.events.TextCapture``; the event's own ``text_capture`` wins over
  the publisher's): ``input_text`` / ``output_text`` never travel in the event. With ``analyze`` or
  ``store`` they move to a text record for the texts topic (``producers.texts``), cut to
  ``producers.events.MAX_TEXT_CHARS``; with ``off`` they are dropped. A text record too large for one
  Kafka record is not sent (the event is).
- The payload is a right-sized copy: orjson (3.12+) returns bytes whose allocation is rounded up (a
  200-byte event pins 4 KiB, a 1 MB one 8 MiB), which would make the SDK's byte limit
  (``producers.sdk.batching.held_bytes``) undercount queued memory up to 20x. The copy costs ~0.2 us.
- An event whose JSON exceeds what fits in one Kafka record (:data:`MAX_EVENT_BYTES`: the record limit
  less librdkafka's framing, the key and the batch envelope) is rejected here, so the SDK's thread
  counts it as ``dropped_invalid`` instead of accepting it and losing it later to librdkafka's size
  check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from producers.events import LlmCallEvent, TextCapture, new_event_id
from producers.sdk.batching import ENVELOPE_OVERHEAD_BYTES, bucket_for
from producers.sdk.config import MAX_RECORD_VALUE_BYTES
from producers.texts import capture_of, split_text_record

__all__ = [
    "MAX_EVENT_BYTES",
    "Encoded",
    "EventDefaults",
    "Rejected",
    "encode_event",
]

MAX_EVENT_BYTES: Final = MAX_RECORD_VALUE_BYTES - ENVELOPE_OVERHEAD_BYTES
_ORJSON_OPTIONS: Final = orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True, slots=True)
class EventDefaults:
    service: str
    environment: str
    text_capture: TextCapture


@dataclass(frozen=True, slots=True)
class Encoded:
    payload: bytes
    bucket: int
    text: bytes | None = None  # the text record, for the texts topic


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str


def encode_event(event: object, defaults: EventDefaults) -> Encoded | Rejected:
    """Encode one event (an ``LlmCallEvent`` or a mapping). Never raises."""
    try:
        if isinstance(event, LlmCallEvent):
            return _encode_model(event, defaults)
        if isinstance(event, Mapping):
            return _encode_mapping(event, defaults)
        return Rejected(f"expected an LlmCallEvent or a mapping, got {type(event).__name__}")
    except Exception as exc:  # orjson.JSONEncodeError, errors raised by a foreign Mapping, ...
        return Rejected(f"{type(exc).__name__}: {exc}")


def _encode_model(event: LlmCallEvent, defaults: EventDefaults) -> Encoded | Rejected:
    if any(t is not None for t in (event.input_text, event.output_text, event.reference_text)):
        # The text goes to its own record (or nowhere): split it off on the wire dict.
        return _encode_mapping(event.to_wire(), defaults)
    return _sized(event.to_json(), event.trace_id)


def _encode_mapping(event: Mapping[Any, Any], defaults: EventDefaults) -> Encoded | Rejected:
    data = dict(event)
    if "event_id" not in data:
        data["event_id"] = new_event_id()
    data.setdefault("service", defaults.service)
    data.setdefault("environment", defaults.environment)
    text = split_text_record(data, capture_of(data, defaults.text_capture))
    routing = data.get("trace_id") or data["event_id"]
    return _sized(orjson.dumps(data, option=_ORJSON_OPTIONS), str(routing), text)


def _sized(payload: bytes, routing_id: str, text: bytes | None = None) -> Encoded | Rejected:
    if len(payload) > MAX_EVENT_BYTES:
        return Rejected(
            f"event of {len(payload)} bytes exceeds the record limit of {MAX_EVENT_BYTES} bytes"
        )
    if text is not None and len(text) > MAX_EVENT_BYTES:
        text = None  # the event's metrics still go; text that cannot fit one record is not sent
    # bytes(memoryview(...)) copies into an exact-size allocation (see the module docstring).
    return Encoded(
        payload=bytes(memoryview(payload)),
        bucket=bucket_for(routing_id),
        text=None if text is None else bytes(memoryview(text)),
    )
