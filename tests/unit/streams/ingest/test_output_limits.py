"""Every output record of the worker fits the record limit; a row too large alone is dead-lettered
before the rollups are computed, so the rollups count exactly the rows that reach llm_calls."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from producers.events import MAX_METADATA_VALUE_CHARS
from producers.wire import encode_batch
from streams.analytics.record import RecordAnalytics
from streams.analytics.rollups import ROLLUP_TABLE, decode_rollups
from streams.ingest.call_batches import decode_call_rows
from streams.ingest.pipeline import OUTPUT_RECORD_MARGIN_BYTES, RecordProcessor
from streams.ingest.records import decode_dead_letter
from streams.ingest.validate import SourcePosition

SOURCE = SourcePosition("llmwatch.events", 1, 77)
LIMIT = 64 * 1024


def _event(i: int, pad_chars: int = 0) -> dict[str, object]:
    """An event whose row carries about ``pad_chars`` characters of metadata (rows hold no text)."""
    now = datetime.now(UTC)
    chunk = MAX_METADATA_VALUE_CHARS
    metadata = {
        f"pad{j}": "x" * min(chunk, pad_chars - j * chunk) for j in range(-(-pad_chars // chunk))
    }
    return {
        "start_time": (now - timedelta(seconds=i % 120)).isoformat(),
        "end_time": (now - timedelta(seconds=i % 120) + timedelta(milliseconds=300)).isoformat(),
        "service": f"svc-{i % 3}",
        "provider_name": "openai",
        "request_model": "gpt-4o-mini",
        "input_tokens": 10,
        "output_tokens": 5,
        "user_id": f"u{i}",
        "metadata": metadata,
    }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_calls_of_one_record_are_split_into_records_under_the_limit() -> None:
    events = [_event(i, 2_000) for i in range(200)]  # ~400 KB of rows, limit 64 KiB
    out = RecordProcessor(RecordAnalytics(), max_record_bytes=LIMIT).process(
        encode_batch(events), SOURCE, _now_ms()
    )
    assert len(out.calls) > 5
    assert all(len(record) <= LIMIT - OUTPUT_RECORD_MARGIN_BYTES for record in out.calls)
    ids = [row["event_id"] for record in out.calls for row in decode_call_rows(record)]
    assert sorted(ids) == sorted(row["event_id"] for row in out.rows) and len(ids) == 200
    requests = sum(
        row["requests"] for record in out.rollups for row in decode_rollups(record)[ROLLUP_TABLE]
    )
    assert requests == 200 and not out.dead_letters


def test_a_row_too_large_alone_is_dead_lettered_and_left_out_of_the_rollups() -> None:
    events = [_event(0), _event(1, LIMIT + 10), _event(2)]
    out = RecordProcessor(RecordAnalytics(), max_record_bytes=LIMIT).process(
        encode_batch(events), SOURCE, _now_ms()
    )
    (dead,) = out.dead_letters
    assert dead.index_in_record == 1
    assert "row, over the" in dead.reason and "max_record_bytes" in dead.reason
    assert decode_dead_letter(dead.to_json()).source_offset == SOURCE.offset
    assert len(out.rows) == 2
    rollup_rows = [r for rec in out.rollups for r in decode_rollups(rec)[ROLLUP_TABLE]]
    assert sum(r["requests"] for r in rollup_rows) == 2


def test_a_bare_event_too_large_alone_is_addressed_as_the_whole_record() -> None:
    record = orjson.dumps(_event(0, LIMIT + 1))
    out = RecordProcessor(RecordAnalytics(), max_record_bytes=LIMIT).process(
        record, SOURCE, _now_ms()
    )
    (dead,) = out.dead_letters
    assert dead.index_in_record == -1 and out.calls == [] and out.rollups == []


def test_many_rollup_rows_are_split_under_the_limit() -> None:
    # Distinct services and minutes make many rollup groups; a small limit forces a split.
    events = [
        {**_event(i), "service": f"svc-{i}", "user_id": f"user-{i}-" + "u" * 40} for i in range(400)
    ]
    limit = 32 * 1024
    out = RecordProcessor(RecordAnalytics(), max_record_bytes=limit).process(
        encode_batch(events), SOURCE, _now_ms()
    )
    assert len(out.rollups) > 1
    assert all(len(record) <= limit - OUTPUT_RECORD_MARGIN_BYTES for record in out.rollups)
    total = sum(r["requests"] for rec in out.rollups for r in decode_rollups(rec)[ROLLUP_TABLE])
    assert total == 400


def test_a_limit_too_small_for_any_record_is_refused() -> None:
    with pytest.raises(ValueError, match=r"max_record_bytes must exceed .* got 100"):
        RecordProcessor(RecordAnalytics(), max_record_bytes=100)
