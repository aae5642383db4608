"""Per-record ingest: every event lands in exactly one of rows or dead letters, with a reason."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from producers.events import LlmCallEvent
from producers.wire import encode_batch
from streams.ingest.records import CALL_FIELDS, DLQ_FIELDS, decode_dead_letter
from streams.ingest.validate import CostFields, SourcePosition, ingest_record
from streams.text.redaction import Redactor

SOURCE = SourcePosition("llmwatch.events", 2, 41)
NOW = 1_767_226_200_000  # 2026-01-01T00:10:00Z, just after the events


def good(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "start_time": "2026-01-01T00:00:00Z",
        "end_time": "2026-01-01T00:00:01.500Z",
        "service": "svc",
        "provider_name": "openai",
        "request_model": "gpt-4o-mini",
        "input_tokens": 10,
        "output_tokens": 5,
    }
    event.update(fields)
    return event


def test_batch_with_one_bad_event_dead_letters_it_alone() -> None:
    events = [good(), good(input_tokens=-4), good()]
    result = ingest_record(encode_batch(events, sent_at_ms=7), SOURCE, record_ms=NOW)
    assert len(result.rows) == 2 and len(result.dead_letters) == 1
    dead = result.dead_letters[0]
    assert dead.index_in_record == 1
    assert "input_tokens" in dead.reason and "-4" in dead.reason
    assert orjson.loads(dead.payload) == events[1]
    assert (dead.source_topic, dead.source_partition, dead.source_offset) == (
        "llmwatch.events",
        2,
        41,
    )
    assert result.sent_at_ms == 7


@pytest.mark.parametrize(
    ("value", "reason_part"),
    [
        (b"not json at all", "not valid UTF-8 JSON"),
        ("caf\u00e9".encode("latin-1"), "not valid UTF-8 JSON"),
        (b'{"service": 5, "start_time": 1, "end_time": 0}', "service"),
        (b'{"start_time": "2026-01-01T00:00:00Z", "end_time": "2026-01-01T00:00:01Z"}', "service"),
        (b'{"llmwatch_batch": 1, "events": [1]}', "must be a JSON object"),
    ],
)
def test_unreadable_or_invalid_records_keep_original_bytes(value: bytes, reason_part: str) -> None:
    result = ingest_record(value, SOURCE, record_ms=NOW)
    assert result.rows == []
    assert len(result.dead_letters) == 1
    dead = result.dead_letters[0]
    assert reason_part in dead.reason
    if b"llmwatch_batch" not in value:
        assert dead.payload == value and dead.index_in_record == -1


def test_rows_have_exactly_the_call_fields_and_epoch_ms_times() -> None:
    result = ingest_record(
        orjson.dumps(good(metadata={"n": 3, "ok": True, "x": None})), SOURCE, record_ms=NOW
    )
    (row,) = result.rows
    assert tuple(row) == CALL_FIELDS
    assert row["start_time"] == 1_767_225_600_000
    assert row["end_time"] - row["start_time"] == 1500
    assert row["sent_at"] == row["end_time"]  # bare event: no envelope timestamp
    assert row["metadata"] == {"n": "3", "ok": "true", "x": ""}
    assert row["user_id"] == "" and row["cost_usd"] is None
    assert (row["source_partition"], row["source_offset"]) == (2, 41)


def test_cost_function_fills_cost_columns() -> None:
    def cost(event: LlmCallEvent) -> CostFields:
        return CostFields(cost_usd=0.25, calculated_cost_usd=0.25, cost_source="genai-prices")

    (row,) = ingest_record(orjson.dumps(good()), SOURCE, record_ms=NOW, cost_fn=cost).rows
    assert (row["cost_usd"], row["cost_source"]) == (0.25, "genai-prices")


def test_text_on_the_events_topic_never_reaches_a_row() -> None:
    # The SDK sends text only on the texts topic; text a raw producer puts in an event is dropped.
    value = orjson.dumps(good(input_text="mail me at ann@example.com", output_text="ok"))
    result = ingest_record(value, SOURCE, record_ms=NOW, redactor=Redactor())
    (row,) = result.rows
    assert (row["input_text"], row["output_text"]) == ("", "")
    assert b"ann@example.com" not in orjson.dumps(row)


def test_dead_letter_json_round_trip() -> None:
    (dead,) = ingest_record(b"\x00\x01garbage", SOURCE, record_ms=NOW).dead_letters
    decoded = decode_dead_letter(dead.to_json())
    assert decoded == dead
    doc = orjson.loads(dead.to_json())
    assert base64.b64decode(doc["payload"]) == b"\x00\x01garbage"
    assert doc["dead_letter_id"] == "llmwatch.events/2/41/-1"
    assert tuple(dead.to_row()) == DLQ_FIELDS


def test_decode_dead_letter_rejects_other_records() -> None:
    with pytest.raises(ValueError, match="not a dead-letter record"):
        decode_dead_letter(b'{"service": "x"}')
