"""Shared pieces of the batch-validation equivalence tests: events, the reference path, the checks."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from producers.events import (
    MAX_METADATA_ENTRIES,
    MAX_TEXT_CHARS,
    LlmCallEvent,
)
from producers.wire import RecordError, split_record
from streams.ingest.batch_validate import validate_events
from streams.ingest.records import CALL_FIELDS, DeadLetter
from streams.ingest.validate import (
    DEFAULT_TIME_BOUNDS,
    NO_COST,
    WHOLE_RECORD,
    IngestResult,
    SourcePosition,
    TimeBounds,
    _dead,
    _redacted_meta,
    _validate,
    ingest_record,
)
from streams.storage import CALLS_TTL_DAYS
from streams.text.redaction import Redactor

SOURCE: Final = SourcePosition("llmwatch.events", 3, 77)
FAKE_EMAIL: Final = "jane.doe@example.com"
# Row columns that keep None (numbers); every other None becomes "" in a row.
_NULLABLE_COLUMNS: Final = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "seed",
        "time_to_first_token_ms",
        "http_status",
        "ratelimit_remaining_requests",
        "ratelimit_remaining_tokens",
        "reported_cost_usd",
        "cost_usd",
        "calculated_cost_usd",
    }
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _event(record_ms: int, **fields: Any) -> dict[str, Any]:
    """A valid raw event ending a minute before ``record_ms``; ``fields`` changed (None removes)."""
    end = _at(record_ms) - timedelta(minutes=1)
    event: dict[str, Any] = {
        "start_time": (end - timedelta(seconds=2)).isoformat(),
        "end_time": end.isoformat(),
        "service": "svc",
        "provider_name": "openai",
        "request_model": "gpt-4o-mini",
        "input_tokens": 10,
        "output_tokens": 5,
    }
    event.update(fields)
    return {key: value for key, value in event.items() if value is not None}


# --- the reference: the per-event loop ingest_record ran before the batch path --------------------


def _reference_row(event: LlmCallEvent, sent_at_ms: int | None, metadata: dict[str, str]) -> Any:
    """The row built independently of to_call_row: attribute access, column by column."""
    derived: dict[str, Any] = {
        "start_time": int(event.start_time.timestamp() * 1000),
        "end_time": int(event.end_time.timestamp() * 1000),
        "duration_ms": event.duration_ms,
        "span_kind": str(event.span_kind),
        "status": str(event.status),
        "finish_reasons": list(event.finish_reasons),
        "cost_usd": NO_COST.cost_usd,
        "calculated_cost_usd": NO_COST.calculated_cost_usd,
        "cost_source": NO_COST.cost_source,
        "input_text": "",
        "output_text": "",
        "metadata": metadata,
        "source_partition": SOURCE.partition,
        "source_offset": SOURCE.offset,
    }
    derived["sent_at"] = derived["end_time"] if sent_at_ms is None else sent_at_ms
    row = {}
    for column in CALL_FIELDS:
        value = derived[column] if column in derived else getattr(event, column)
        row[column] = "" if value is None and column not in _NULLABLE_COLUMNS else value
    return row


def _reference_ingest(
    value: bytes, record_ms: int, redactor: Redactor | None, bounds: TimeBounds
) -> IngestResult:
    result = IngestResult()
    split = split_record(value)
    if isinstance(split, RecordError):
        result.dead_letters.append(_dead(SOURCE, record_ms, WHOLE_RECORD, split.reason, value))
        return result
    result.sent_at_ms = split.sent_at_ms
    single = not split.is_batch
    for index, raw in enumerate(split.events):
        address = WHOLE_RECORD if single else index
        outcome = _validate(raw, address, SOURCE, record_ms, bounds)
        if isinstance(outcome, str):
            payload = value if single else orjson.dumps(raw)
            result.dead_letters.append(_dead(SOURCE, record_ms, address, outcome, payload))
            continue
        metadata = _redacted_meta(outcome.metadata, redactor, result.redactions)
        result.events.append(outcome)
        result.rows.append(_reference_row(outcome, split.sent_at_ms, metadata))
        result.indexes.append(address)
    return result


def _letters(dead_letters: list[DeadLetter]) -> list[bytes]:
    return [letter.to_json() for letter in dead_letters]


def _assert_paths_agree(
    value: bytes,
    record_ms: int,
    redactor: Redactor | None = None,
    bounds: TimeBounds = DEFAULT_TIME_BOUNDS,
) -> IngestResult:
    """ingest_record (the batch path) and the per-event reference give identical outputs."""
    expected = _reference_ingest(value, record_ms, redactor, bounds)
    got = ingest_record(value, SOURCE, record_ms=record_ms, redactor=redactor, bounds=bounds)
    assert [letter.reason for letter in got.dead_letters] == [
        letter.reason for letter in expected.dead_letters
    ]
    assert _letters(got.dead_letters) == _letters(expected.dead_letters)
    assert got.indexes == expected.indexes
    assert got.events == expected.events
    assert [orjson.dumps(row) for row in got.rows] == [orjson.dumps(row) for row in expected.rows]
    assert got.rows == expected.rows
    assert (got.sent_at_ms, got.redactions) == (expected.sent_at_ms, expected.redactions)
    return got


def _assert_events_agree(raws: list[Any], record_ms: int, whole_record: bool = False) -> None:
    """validate_events gives, position by position, what _validate gives."""
    out = validate_events(raws, SOURCE, record_ms, whole_record=whole_record)
    got: dict[int, LlmCallEvent | str] = dict(zip(out.positions, out.events, strict=True))
    got.update(out.rejected)
    assert out.positions == sorted(out.positions)
    assert sorted(got) == list(range(len(raws)))
    for i, raw in enumerate(raws):
        address = WHOLE_RECORD if whole_record else i
        assert got[i] == _validate(raw, address, SOURCE, record_ms, DEFAULT_TIME_BOUNDS), i


# --- every rejection case the other tests use ------------------------------------------------------


def _contract_cases(record_ms: int) -> list[dict[str, Any]]:
    """tests/unit/producers/test_events.py's impossible values, and test_validate's bad event."""
    start = _at(record_ms) - timedelta(hours=1)
    changes: list[dict[str, Any]] = [
        {"input_tokens": -1},
        {"input_tokens": -4},
        {"output_tokens": -5},
        {"end_time": (start - timedelta(hours=2)).isoformat()},
        {"span_kind": "robot"},
        {"input_text": "x" * (MAX_TEXT_CHARS + 1)},
        {"output_text": "y" * (MAX_TEXT_CHARS + 1)},
        {"input_tokens": 10, "cache_read_input_tokens": 50},
        {"output_tokens": 3, "reasoning_output_tokens": 4},
        {"time_to_first_token_ms": 5000.0},
        {"http_status": 999},
        {"provider_name": "Open AI"},
        {"temperature": -0.5},
        {"service": ""},
        {"start_time": "yesterday"},
        {"service": None},
        {"service": 5, "start_time": 1, "end_time": 0},
        {"input_tokens": "lots"},
        {"temperature": 99},
        {"temperature": FAKE_EMAIL, "metadata": {"contact": FAKE_EMAIL, "n": 3}},
        {"metadata": {f"k{i}": i for i in range(MAX_METADATA_ENTRIES + 1)}},
        {"metadata": {"long": "1" * 5_000, "n": 1}},
        {"operation_name": "chat\n"},
        {"start_time": "0001-01-01T00:30:00+01:00", "end_time": "0001-01-01T00:30:00+01:00"},
    ]
    return [_event(record_ms, **fields) for fields in changes]


def _bounds_cases(record_ms: int) -> list[dict[str, Any]]:
    """test_time_bounds' out-of-range events, and each bound to the millisecond."""
    now = _at(record_ms)
    max_age = timedelta(days=CALLS_TTL_DAYS)
    ahead = timedelta(milliseconds=DEFAULT_TIME_BOUNDS.max_future_ms)
    ms = timedelta(milliseconds=1)
    spans = [
        (now - timedelta(seconds=1), now + timedelta(days=400)),
        (now + timedelta(minutes=6), now + timedelta(minutes=6, seconds=1)),
        (now - max_age - timedelta(seconds=1), now - max_age),
        (now - max_age + timedelta(minutes=1), now + ahead - timedelta(seconds=1)),
        (now - timedelta(days=60), now - timedelta(days=60) + timedelta(seconds=2)),
    ]
    for step in (-2, -1, 0, 1, 2):
        spans.append((now - max_age + step * ms, now))
        spans.append((now, now + ahead + step * ms))
        spans.append((now - max_age + step * ms / 2, now + ahead + step * ms / 2))
    return [
        _event(record_ms, start_time=start.isoformat(), end_time=end.isoformat())
        for start, end in spans
    ]
