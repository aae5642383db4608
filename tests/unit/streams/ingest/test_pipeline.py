"""The worker's per-record processing: outputs for good records, one dead letter for a bug."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson

from producers.wire import encode_batch
from streams.analytics.record import RecordAnalytics
from streams.analytics.rollups import ROLLUP_TABLE, decode_rollups
from streams.ingest.call_batches import decode_call_rows
from streams.ingest.pipeline import RecordProcessor
from streams.ingest.records import decode_dead_letter
from streams.ingest.validate import SourcePosition

SOURCE = SourcePosition("llmwatch.events", 0, 12)


def _event(**fields: object) -> dict[str, object]:
    now = datetime.now(UTC)
    event: dict[str, object] = {
        "start_time": now.isoformat(),
        "end_time": (now + timedelta(milliseconds=800)).isoformat(),
        "service": "svc",
        "provider_name": "openai",
        "request_model": "gpt-4o-mini",
        "input_tokens": 100,
        "output_tokens": 20,
    }
    event.update(fields)
    return event


def test_good_record_yields_calls_rollups_and_dead_letters() -> None:
    processor = RecordProcessor(RecordAnalytics())
    record = encode_batch([_event(), _event(output_tokens=-1)])
    out = processor.process(record, SOURCE, time.time_ns() // 1_000_000)
    (calls_record,) = out.calls
    (rollups_record,) = out.rollups
    calls = decode_call_rows(calls_record)
    assert len(calls) == 1 and calls[0]["cost_usd"] > 0
    assert calls == out.rows
    assert decode_rollups(rollups_record)[ROLLUP_TABLE][0]["requests"] == 1
    assert [d.index_in_record for d in out.dead_letters] == [1]


def test_an_internal_error_dead_letters_the_whole_record() -> None:
    class Broken(RecordAnalytics):
        def rollups(self, rows, source):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    record = encode_batch([_event()])
    out = RecordProcessor(Broken()).process(record, SOURCE, time.time_ns() // 1_000_000)
    assert out.calls == [] and out.rollups == []
    (dead,) = out.dead_letters
    assert dead.reason == "internal worker error: RuntimeError: boom"
    assert decode_dead_letter(dead.to_json()).payload == record
    assert orjson.loads(dead.payload)["llmwatch_batch"] == 1
