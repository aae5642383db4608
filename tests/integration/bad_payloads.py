"""Raw Kafka record values that break llmwatch's event contract, one kind per way of breaking it.

Each :class:`BadKind` makes a payload for index ``i`` (unique event ids per payload) and says what the
worker must do with it: dead-letter the whole record (``index`` -1, original bytes kept) or only the
one bad event of a batch (``index`` = its position, the batch's valid events still stored), with a
reason containing every fragment of ``reason``. Event times are "now", inside the worker's time bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from producers.wire import encode_batch

__all__ = ["BAD_KINDS", "BAD_TOTAL", "HUGE_TEXT_CHARS", "WHOLE_RECORD", "BadKind"]

WHOLE_RECORD: Final = -1
HUGE_TEXT_CHARS: Final = 5_000_000


def _event(**fields: Any) -> dict[str, Any]:
    """A valid raw event, with ``fields`` changed (None removes a field)."""
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "service": "e2e-raw",
        "start_time": (now - timedelta(seconds=2)).isoformat(),
        "end_time": now.isoformat(),
        "input_tokens": 10,
        "output_tokens": 5,
    }
    event.update(fields)
    return {key: value for key, value in event.items() if value is not None}


def _good(tag: str, n: int) -> list[dict[str, Any]]:
    return [_event(event_id=f"good-{tag}-{k}") for k in range(n)]


def _json(**fields: Any) -> Callable[[int], bytes]:
    return lambda i: orjson.dumps(_event(event_id=f"bad-{i}", **fields))


def _latin1(i: int) -> bytes:
    return orjson.dumps(_event(event_id=f"bad-{i}", service="café")).decode().encode("latin-1")


def _version_2(i: int) -> bytes:
    sent_at = int(datetime.now(UTC).timestamp() * 1000)
    return orjson.dumps({"llmwatch_batch": 2, "sent_at_ms": sent_at, "events": _good(f"v{i}", 2)})


def _one_bad_in_batch(i: int) -> bytes:
    bad = _event(event_id=f"bad-{i}", temperature=99)
    return encode_batch([*_good(f"a{i}", 2), bad, *_good(f"b{i}", 1)])


def _one_bad_in_batch_ids(i: int) -> set[str]:
    return {event["event_id"] for event in [*_good(f"a{i}", 2), *_good(f"b{i}", 1)]}


@dataclass(frozen=True, slots=True)
class BadKind:
    name: str
    payload: Callable[[int], bytes]
    reason: tuple[str, ...]  # fragments the dead letter's reason must contain
    count: int = 9
    # index_in_record of the dead letter; a whole-record dead letter keeps the record's bytes.
    index: int = WHOLE_RECORD
    # Ids of the valid events in the same record: they must still be stored.
    valid_ids: Callable[[int], set[str]] = lambda i: set()


BAD_KINDS: Final = (
    BadKind("not_json", lambda i: b"this is not JSON { %d" % i, ("not valid UTF-8 JSON",)),
    BadKind("wrong_type", _json(input_tokens="lots"), ("input_tokens", "integer", "'lots'")),
    BadKind("missing_service", _json(service=None), ("service", "Field required")),
    BadKind(
        "negative_tokens",
        _json(output_tokens=-5),
        ("output_tokens", "greater than or equal to 0", "-5"),
    ),
    BadKind(
        "text_5mb",
        _json(input_text="x" * HUGE_TEXT_CHARS),
        ("input_text", f"{HUGE_TEXT_CHARS} characters exceeds the limit"),
        count=1,
    ),
    BadKind("latin1_bytes", _latin1, ("not valid UTF-8",)),
    BadKind(
        "end_before_start",
        # An hour before the clock read at import, so before every start_time made later.
        _json(end_time=(datetime.now(UTC) - timedelta(hours=1)).isoformat()),
        ("end_time", "is before start_time"),
    ),
    BadKind("unknown_span_kind", _json(span_kind="robot"), ("span_kind", "'robot'")),
    BadKind("json_array", lambda i: orjson.dumps([_event()]), ("expected a JSON object",)),
    BadKind("empty_value", lambda i: b"", ("empty record value",)),
    BadKind("batch_version_2", _version_2, ("unsupported batch envelope version 2",)),
    BadKind(
        "one_bad_in_batch",
        _one_bad_in_batch,
        ("temperature", "99"),
        index=2,
        valid_ids=_one_bad_in_batch_ids,
    ),
)
BAD_TOTAL: Final = sum(kind.count for kind in BAD_KINDS)
