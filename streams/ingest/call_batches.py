"""The ``calls`` topic's columnar records: one Arrow IPC stream (one record batch) per Kafka record.

The worker writes normalized calls as Arrow columns (:func:`encode_call_batch`), so neither it nor the
sink builds a Python object per row: the sink hands the decoded table to ClickHouse's Arrow insert.
The schema (:data:`CALL_ARROW_SCHEMA`) is the column list of ``llm_calls`` (:data:`CALL_FIELDS`, the
one source of truth) with the Arrow type of each column's ClickHouse type; times are
``timestamp[ms, UTC]`` (rows carry epoch milliseconds).

Readers accept both forms a ``calls`` record has ever had: an Arrow stream (it starts with the IPC
continuation marker ``0xFFFFFFFF``) or the older JSON batch envelope / bare row (``producers.wire``),
so records written before an upgrade are still read. :func:`decode_call_table` gives a table,
:func:`decode_call_rows` dict rows exactly as ``streams.ingest.validate.to_call_row`` builds them
(epoch-ms ints, ``metadata`` a dict), for consumers that work per row.

Errors: a record that is neither form, or an Arrow stream whose columns are not the schema's, raises
``ValueError`` naming what is wrong; the sink dead-letters such a record. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import pyarrow as pa

from producers.wire import RecordError, split_record
from streams.ingest.records import CALL_FIELDS

__all__ = [
    "ARROW_MAGIC",
    "CALL_ARROW_SCHEMA",
    "TIME_FIELDS",
    "decode_call_rows",
    "decode_call_table",
    "encode_call_batch",
    "is_arrow_record",
    "rows_to_columns",
    "table_rows",
]

ARROW_MAGIC: Final = b"\xff\xff\xff\xff"
TIME_FIELDS: Final = ("start_time", "end_time", "sent_at")
_FLOAT_FIELDS: Final = (
    "duration_ms",
    "temperature",
    "top_p",
    "time_to_first_token_ms",
    "cost_usd",
    "calculated_cost_usd",
    "reported_cost_usd",
)
_UINT32_FIELDS: Final = (
    "max_tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_output_tokens",
)
_TYPES: Final[dict[str, pa.DataType]] = {
    **dict.fromkeys(TIME_FIELDS, pa.timestamp("ms", tz="UTC")),
    **dict.fromkeys(_FLOAT_FIELDS, pa.float64()),
    **dict.fromkeys(_UINT32_FIELDS, pa.uint32()),
    "schema_version": pa.uint8(),
    "seed": pa.int64(),
    "stream": pa.bool_(),
    "http_status": pa.uint16(),
    "ratelimit_remaining_requests": pa.uint64(),
    "ratelimit_remaining_tokens": pa.uint64(),
    "finish_reasons": pa.list_(pa.string()),
    "metadata": pa.map_(pa.string(), pa.string()),
    "source_partition": pa.int32(),
    "source_offset": pa.int64(),
}
CALL_ARROW_SCHEMA: Final = pa.schema(
    [(name, _TYPES.get(name, pa.string())) for name in CALL_FIELDS]
)


def rows_to_columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Pivot dict rows (with every :data:`CALL_FIELDS` key) into one list per column."""
    try:
        return {name: [row[name] for row in rows] for name in CALL_FIELDS}
    except KeyError as exc:
        raise KeyError(f"a call row has no column {exc.args[0]!r}") from exc


def encode_call_batch(columns: Mapping[str, Sequence[Any]]) -> bytes:
    """One Arrow IPC stream holding ``columns`` (every :data:`CALL_FIELDS` name; ``metadata`` as
    dicts) as one record batch. Raises ``ValueError`` naming a column whose values do not fit its type
    (the worker only passes validated rows, so that is a bug, which its pipeline dead-letters)."""
    arrays = []
    for field in CALL_ARROW_SCHEMA:
        values = columns[field.name]
        if field.name == "metadata":
            values = [list(m.items()) for m in values]
        try:
            arrays.append(pa.array(values, type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise ValueError(
                f"call column {field.name!r} does not fit {field.type}: {exc}"
            ) from exc
    batch = pa.record_batch(arrays, schema=CALL_ARROW_SCHEMA)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, CALL_ARROW_SCHEMA) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def is_arrow_record(value: bytes | None) -> bool:
    return value is not None and value[:4] == ARROW_MAGIC


def decode_call_table(value: bytes | None) -> pa.Table:
    """The calls of one record as a table of :data:`CALL_ARROW_SCHEMA` (JSON records converted)."""
    if not is_arrow_record(value):
        return _rows_to_table(decode_call_rows(value))
    assert value is not None
    try:
        table = pa.ipc.open_stream(value).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"not a readable Arrow calls record ({len(value)} bytes): {exc}") from exc
    if table.schema.names != list(CALL_FIELDS):
        missing = sorted(set(CALL_FIELDS) - set(table.schema.names))
        extra = sorted(set(table.schema.names) - set(CALL_FIELDS))
        raise ValueError(
            f"Arrow calls record has the wrong columns: missing {missing}, extra {extra}"
        )
    if not table.schema.equals(CALL_ARROW_SCHEMA):
        try:
            table = table.cast(CALL_ARROW_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"Arrow calls record has columns of the wrong types: {exc}") from exc
    return table


def decode_call_rows(value: bytes | None) -> list[dict[str, Any]]:
    """The normalized call rows of one ``calls`` record, as dicts (see the module docstring)."""
    if is_arrow_record(value):
        return table_rows(decode_call_table(value))
    split = split_record(value)
    if isinstance(split, RecordError):
        raise ValueError(split.reason)
    rows: list[dict[str, Any]] = split.events
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(
                f"row #{index} must be a JSON object, got {type(row).__name__}: {row!r:.80}"
            )
    return rows


def _rows_to_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    data = encode_call_batch(rows_to_columns(rows))
    return pa.ipc.open_stream(data).read_all()


def table_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Dict rows of a calls table, as ``to_call_row`` builds them (epoch-ms times, metadata dicts)."""
    columns: dict[str, list[Any]] = {}
    for name in table.column_names:
        column = table.column(name)
        if name in TIME_FIELDS:
            column = column.cast(pa.int64())
        values = column.to_pylist()
        if name == "metadata":
            values = [dict(items) if items is not None else {} for items in values]
        columns[name] = values
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
