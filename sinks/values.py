"""Which Python values a ClickHouse column takes: the sink's test of "bad data" versus a bug.

:func:`find_bad_values` checks rows against the columns' live types (``DESCRIBE`` through the
driver's insert context) and returns, per row, the first value that cannot go into its column, as a
:class:`BadValue` naming the column, its type, the row and what was found instead.

Guarantees:
- Strict, so that a value it accepts serializes with clickhouse-connect (tests insert accepted edge
  values on chdb): integers in the column's range (``bool`` counts as an int), ``float`` or
  float-sized ``int`` for floats, ``bool`` for ``Bool``, ``str`` (UTF-8 encodable) or ``bytes`` for
  strings, ``int`` (epoch in the column's unit, in range) or aware ``datetime`` for date-times,
  ``list``/``tuple`` for arrays, ``dict`` for maps, and ``None`` only in ``Nullable`` columns.
- A row without one of the columns is a bad value (``no column ...``).
- A column of a type llmwatch's migrations never declare (anything not listed above) raises
  :class:`SchemaMismatch` (a ``ProgrammingError``, like an unknown column): the table is not the one
  the rows were written for, which no dead letter can fix.
- Messages never quote text: a string is described by its type and length, so a dead-letter reason
  carries no captured prompt or PII. Numbers and ``None`` are quoted (``got -1``).

Nothing here blocks except :func:`column_types`, one ``DESCRIBE TABLE`` query.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ProgrammingError

__all__ = ["BadValue", "SchemaMismatch", "checker", "column_types", "describe", "find_bad_values"]

Row = Mapping[str, Any]
# None when the value fits, else why not ("got str of 4 chars, expected an int in [0, 255]").
Check = Callable[[Any], str | None]

_INT_BITS: Final = {8, 16, 32, 64}
_INT_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    **{f"UInt{bits}": (0, 2**bits - 1) for bits in _INT_BITS},
    **{f"Int{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in _INT_BITS},
}
_TIME_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    "DateTime": _INT_BOUNDS["UInt32"],
    "DateTime64": _INT_BOUNDS["Int64"],
}
_SHOWN_CHARS: Final = 60


class BadValue(ValueError):
    """A value that cannot go into its column; retrying cannot help, so its record is dead-lettered."""

    def __init__(self, column: str, type_name: str, row: int, reason: str) -> None:
        super().__init__(f"column {column!r} ({type_name}), row {row}: {reason}")
        self.column = column
        self.row = row


class SchemaMismatch(ProgrammingError):
    """The table has a column of a type no llmwatch row format is written for."""


def describe(value: Any) -> str:
    """``value`` for an error message, without quoting text (see the module docstring)."""
    if isinstance(value, str | bytes | bytearray):
        return f"{type(value).__name__} of {len(value)} {'chars' if isinstance(value, str) else 'bytes'}"
    if isinstance(value, Mapping | list | tuple):
        return f"{type(value).__name__} of {len(value)} items"
    return f"{type(value).__name__} {repr(value)[:_SHOWN_CHARS]}"


def _integer(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, int) and low <= value <= high:
            return None
        return f"got {describe(value)}, expected an int in [{low}, {high}]"

    return check


def _float(value: Any) -> str | None:
    if isinstance(value, float):
        return None
    if isinstance(value, int):
        try:
            float(value)
            return None
        except OverflowError:
            pass
    return f"got {describe(value)}, expected a float"


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"got {describe(value)}, expected a bool"


def _string(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        return None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return None
        except UnicodeEncodeError as exc:
            return f"got {describe(value)} that is not UTF-8 encodable at {exc.start}"
    return f"got {describe(value)}, expected a str or bytes"


def _time(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return None
        return f"got {describe(value)}, expected an aware datetime or an epoch int in range"

    return check


def _array(element: Check) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, list | tuple):
            return f"got {describe(value)}, expected a list"
        for index, item in enumerate(value):
            if (reason := element(item)) is not None:
                return f"item {index}: {reason}"
        return None

    return check


def _map(key: Check, item: Check) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, Mapping):
            return f"got {describe(value)}, expected a dict"
        for k, v in value.items():
            if (reason := key(k)) is not None:
                return f"a key: {reason}"
            if (reason := item(v)) is not None:
                return f"the value of a key: {reason}"
        return None

    return check


def _nullable(inner: Check) -> Check:
    return lambda value: None if value is None else inner(value)


def checker(ch_type: Any, column: str) -> Check:
    """The check of one column type (a clickhouse-connect ``ClickHouseType``)."""
    base: str = ch_type.base_type
    check: Check
    if base in _INT_BOUNDS:
        check = _integer(*_INT_BOUNDS[base])
    elif base in ("Float32", "Float64"):
        check = _float
    elif base == "Bool":
        check = _bool
    elif base == "String":
        check = _string
    elif base in _TIME_BOUNDS:
        check = _time(*_TIME_BOUNDS[base])
    elif base == "Array":
        check = _array(checker(ch_type.element_type, column))
    elif base == "Map":
        check = _map(checker(ch_type.key_type, column), checker(ch_type.value_type, column))
    else:
        raise SchemaMismatch(
            f"column {column!r} has type {ch_type.name}, which no llmwatch row format writes"
        )
    return _nullable(check) if ch_type.nullable else check


def column_types(client: Client, database: str, table: str, columns: Sequence[str]) -> list[Any]:
    """The live ClickHouse types of ``columns``; an unknown table or column raises the driver's error."""
    context = client.create_insert_context(table, list(columns), database)
    return list(context.column_types)


def find_bad_values(
    rows: Sequence[Row], columns: Sequence[str], types: Sequence[Any]
) -> dict[int, BadValue]:
    """Row index -> the first bad value of that row (rows without one are left out)."""
    checks = [(name, t.name, checker(t, name)) for name, t in zip(columns, types, strict=True)]
    bad: dict[int, BadValue] = {}
    for index, row in enumerate(rows):
        for name, type_name, check in checks:
            if name not in row:
                bad[index] = BadValue(name, type_name, index, "no column in the row")
                break
            if (reason := check(row[name])) is not None:
                bad[index] = BadValue(name, type_name, index, reason)
                break
    return bad
