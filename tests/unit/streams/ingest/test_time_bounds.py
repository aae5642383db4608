"""Event times are bounded against the Kafka record's timestamp, at both ends of the event.

One event stamped in the year 2100 (or before the rows' retention) is dead-lettered with a reason that
names the field, and the same record always gives the same outcome, whatever the worker's clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from producers.wire import encode_batch
from streams.analytics.record import RecordAnalytics
from streams.ingest.pipeline import RecordProcessor
from streams.ingest.validate import DEFAULT_TIME_BOUNDS, SourcePosition, TimeBounds, ingest_record
from streams.storage import CALLS_TTL_DAYS

SOURCE = SourcePosition("llmwatch.events", 0, 9)


def _record_ms() -> int:
    """A record stamped a minute ago: tests never depend on the calendar."""
    return (time.time_ns() // 1_000_000) - 60_000


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _event(start: datetime, end: datetime) -> dict[str, object]:
    return {
        "start_time": start.isoformat(),
        "end_time": end.isoformat(),
        "service": "svc",
        "provider_name": "openai",
        "request_model": "gpt-4o-mini",
        "input_tokens": 10,
        "output_tokens": 5,
    }


# The adversarial value itself (a broken producer clock), not a test clock.
YEAR_2100 = datetime.fromisoformat("2100-01-01T00:00:00+00:00")


@pytest.mark.parametrize(
    ("start_offset", "end", "field", "phrase"),
    [
        (timedelta(seconds=-1), YEAR_2100, "end_time", "minutes after its Kafka record"),
        (timedelta(minutes=6), None, "end_time", "minutes after its Kafka record"),
        (timedelta(days=-CALLS_TTL_DAYS, seconds=-1), None, "start_time", "days older than"),
    ],
    ids=["ends-in-2100", "starts-6-min-ahead", "older-than-row-ttl"],
)
def test_out_of_range_events_are_dead_lettered_with_the_field_named(
    start_offset: timedelta, end: datetime | None, field: str, phrase: str
) -> None:
    record_ms = _record_ms()
    start = _at(record_ms) + start_offset
    bad = _event(start, end or start + timedelta(seconds=1))
    good = _event(_at(record_ms), _at(record_ms) + timedelta(seconds=1))
    result = ingest_record(encode_batch([good, bad]), SOURCE, record_ms=record_ms)
    assert len(result.rows) == 1
    (dead,) = result.dead_letters
    assert dead.index_in_record == 1
    assert dead.reason.startswith(field) and phrase in dead.reason


def test_an_event_just_inside_both_bounds_is_kept() -> None:
    record_ms = _record_ms()
    start = _at(record_ms) - timedelta(days=CALLS_TTL_DAYS) + timedelta(minutes=1)
    end = _at(record_ms) + timedelta(milliseconds=DEFAULT_TIME_BOUNDS.max_future_ms - 1_000)
    result = ingest_record(orjson.dumps(_event(start, end)), SOURCE, record_ms=record_ms)
    assert len(result.rows) == 1 and result.dead_letters == []


def test_the_late_cut_off_is_the_row_retention_not_the_text_retention() -> None:
    assert DEFAULT_TIME_BOUNDS.max_age_ms == CALLS_TTL_DAYS * 86_400_000
    record_ms = _record_ms()
    start = _at(record_ms) - timedelta(days=60)  # past the 30-day text TTL, within the 90-day rows
    result = ingest_record(
        orjson.dumps(_event(start, start + timedelta(seconds=2))), SOURCE, record_ms=record_ms
    )
    assert len(result.rows) == 1


def test_the_outcome_depends_on_the_record_timestamp_not_on_when_it_is_processed() -> None:
    """The same record processed now and 'two days later' gives identical outputs."""
    record_ms = _record_ms()
    start = _at(record_ms) - timedelta(days=CALLS_TTL_DAYS) + timedelta(hours=1)
    events = [_event(start, start + timedelta(seconds=1)), _event(_at(record_ms), YEAR_2100)]
    record = encode_batch(events, sent_at_ms=record_ms)
    processor = RecordProcessor(RecordAnalytics())
    first = processor.process(record, SOURCE, record_ms)
    # Nothing in the processor reads the wall clock: a later run sees the same record timestamp.
    again = RecordProcessor(RecordAnalytics()).process(record, SOURCE, record_ms)
    assert first.calls == again.calls and first.rollups == again.rollups
    assert [d.to_json() for d in first.dead_letters] == [d.to_json() for d in again.dead_letters]
    assert len(first.rows) == 1 and len(first.dead_letters) == 1


@pytest.mark.parametrize(("age", "ahead"), [(0, 1), (1, -1)])
def test_time_bounds_reject_nonsense_settings(age: int, ahead: int) -> None:
    with pytest.raises(ValueError, match="got"):
        TimeBounds(max_age_ms=age, max_future_ms=ahead)
