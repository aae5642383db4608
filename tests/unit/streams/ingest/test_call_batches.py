"""The calls topic's Arrow records: the worker's rows round-trip exactly, JSON records still read,
and a bad record raises a ValueError that names the problem."""

from __future__ import annotations

import time

import orjson
import pyarrow as pa
import pytest

from producers.wire import encode_batch
from streams.analytics.record import RecordAnalytics
from streams.ingest.call_batches import (
    CALL_ARROW_SCHEMA,
    decode_call_rows,
    decode_call_table,
    encode_call_batch,
    is_arrow_record,
    rows_to_columns,
)
from streams.ingest.pipeline import ARROW_MIN_ROWS, RecordProcessor
from streams.ingest.records import CALL_FIELDS
from streams.ingest.validate import SourcePosition
from tests.unit.streams.ingest.test_output_limits import _event

SOURCE = SourcePosition("llmwatch.events", 3, 41)


def _rows(n: int) -> list[dict[str, object]]:
    events = [
        {**_event(i), "metadata": {"k": f"v{i}"}, "finish_reasons": ["stop"], "temperature": 0.2}
        for i in range(n)
    ]
    out = RecordProcessor(RecordAnalytics()).process(
        encode_batch(events), SOURCE, time.time_ns() // 1_000_000
    )
    assert not out.dead_letters
    return out.rows


def test_the_workers_rows_round_trip_exactly() -> None:
    rows = _rows(50)
    data = encode_call_batch(rows_to_columns(rows))
    assert is_arrow_record(data)
    assert decode_call_rows(data) == rows
    table = decode_call_table(data)
    assert table.schema.equals(CALL_ARROW_SCHEMA) and table.num_rows == 50


@pytest.mark.parametrize(("events", "arrow"), [(ARROW_MIN_ROWS - 1, False), (ARROW_MIN_ROWS, True)])
def test_the_worker_publishes_arrow_calls_for_large_records(events: int, arrow: bool) -> None:
    out = RecordProcessor(RecordAnalytics()).process(
        encode_batch([_event(i) for i in range(events)]), SOURCE, time.time_ns() // 1_000_000
    )
    (record,) = out.calls
    assert is_arrow_record(record) is arrow and decode_call_rows(record) == out.rows


def test_json_records_from_before_the_upgrade_still_read() -> None:
    rows = _rows(3)
    assert decode_call_rows(encode_batch(rows)) == rows
    assert decode_call_rows(orjson.dumps(rows[0])) == rows[:1]
    assert decode_call_table(encode_batch(rows)).to_pylist()[0]["event_id"] == rows[0]["event_id"]


def test_a_truncated_arrow_record_is_named() -> None:
    data = encode_call_batch(rows_to_columns(_rows(2)))
    with pytest.raises(ValueError, match="not a readable Arrow calls record"):
        decode_call_table(data[: len(data) // 2])


def test_an_arrow_record_with_other_columns_is_named() -> None:
    table = pa.table({"event_id": ["a"], "surprise": [1]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    with pytest.raises(
        ValueError, match=r"wrong columns: missing .*'cost_usd'.* extra \['surprise'\]"
    ):
        decode_call_table(sink.getvalue().to_pybytes())


def test_a_value_that_does_not_fit_its_column_is_named() -> None:
    columns = rows_to_columns(_rows(1))
    columns["input_tokens"] = [-5]
    with pytest.raises(ValueError, match="call column 'input_tokens' does not fit uint32"):
        encode_call_batch(columns)


def test_a_row_without_a_column_is_named() -> None:
    row = dict(_rows(1)[0])
    del row["cost_usd"]
    with pytest.raises(KeyError, match="cost_usd"):
        rows_to_columns([row])
    assert len(CALL_FIELDS) == len(CALL_ARROW_SCHEMA)
