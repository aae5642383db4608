"""Turn row dicts into column-oriented inserts, and find the rows ClickHouse cannot take.

Rows arrive as dicts (``streams.ingest.records`` formats); ``clickhouse-connect`` inserts fastest from columns
(``column_oriented=True``), so :func:`to_columns` pivots them with one list comprehension per column
(200,000-400,000 rows/s for the 52 call columns on one core; the insert itself dominates: conversion
plus a chdb insert of 10,000 call rows measured ~86,000 rows/s on a loaded 2-core machine).

Errors are split in two kinds, because the sink treats them differently:
- a *bad value* (:class:`sinks.values.BadValue`): a value that cannot go into its column (wrong type,
  out of range, None in a non-Nullable column, a missing column in the row). Retrying cannot help, so
  :func:`insert_groups` returns the groups (Kafka records) holding one, and the sink dead-letters them
  while inserting everything else;
- anything else propagates, so the caller retries the batch or stops: the server unreachable, an
  unknown table or column, a column of a type no row format writes (:class:`SchemaMismatch`), a
  constraint, and any failure that no value explains (a driver or llmwatch bug). Exception types do
  not decide this: the driver raises ``ValueError``, ``TypeError``, ``AttributeError`` and
  ``struct.error`` for bad values and for its own bugs alike. Only a value that fails the column
  check of :mod:`sinks.values` makes its group a dead letter.

The happy path is one insert. Only after a failed insert are the rows checked against the table's
live column types (one ``DESCRIBE``); the groups without a bad value are then inserted in one more
insert, whose failure propagates.

An insert is atomic for batches below ClickHouse's ``max_insert_block_size`` (~1M rows), which the
sink's batches are. Rows inserted before an error elsewhere in a bisection are inserted again on retry;
the tables are ReplacingMergeTrees, so that only costs a merge.

What can block: each insert, for as long as ClickHouse takes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from sinks.values import BadValue, SchemaMismatch, column_types, find_bad_values
from streams.ingest.call_batches import table_rows

__all__ = [
    "BadValue",
    "RejectedGroup",
    "SchemaMismatch",
    "insert_groups",
    "insert_rows",
    "to_columns",
]

Row = Mapping[str, Any]
# (index of the group in the input, the bad value that rejects it)
RejectedGroup = tuple[int, BadValue]


def to_columns(rows: Sequence[Row], columns: Sequence[str]) -> list[list[Any]]:
    """One list per column, in ``columns`` order; a row without a column raises KeyError naming it."""
    try:
        return [[row[name] for row in rows] for name in columns]
    except KeyError as exc:
        missing = next(i for i, row in enumerate(rows) if not all(c in row for c in columns))
        absent = [c for c in columns if c not in rows[missing]]
        raise KeyError(f"row #{missing} has no column(s) {absent}") from exc


def insert_rows(
    client: Client, database: str, table: str, rows: Sequence[Row], columns: Sequence[str]
) -> int:
    """Insert ``rows`` (dicts with at least ``columns``) in one column-oriented insert."""
    if not rows:
        return 0
    client.insert(
        table,
        to_columns(rows, columns),
        column_names=list(columns),
        database=database,
        column_oriented=True,
    )
    return len(rows)


def insert_groups(
    client: Client,
    database: str,
    table: str,
    groups: Sequence[Sequence[Row] | pa.Table],
    columns: Sequence[str],
) -> list[RejectedGroup]:
    """Insert every group's rows; return the groups rejected for a bad value, with it.

    Groups are dict rows or Arrow tables (the worker's columnar calls). The Arrow groups go in one
    Arrow insert, the dict groups in one column insert. After a failure of either: the groups with a
    bad value are set aside and the others inserted in one insert (Arrow groups are checked as dict
    rows then). A failure that no bad value explains is raised unchanged; an unknown table or column,
    or a :class:`SchemaMismatch`, is raised from the column lookup.
    """
    tables = [i for i, group in enumerate(groups) if isinstance(group, pa.Table)]
    if tables:
        try:
            arrow = pa.concat_tables([groups[i] for i in tables]).select(list(columns))
            client.insert_arrow(table, arrow, database=database)
        except Exception:  # classified by the values, with the row groups below
            as_rows = {i: table_rows(groups[i]) for i in tables}
            return _insert_row_groups(
                client, database, table, [as_rows.get(i, g) for i, g in enumerate(groups)], columns
            )
        if len(tables) == len(groups):
            return []
        kept = [i for i in range(len(groups)) if i not in set(tables)]
        rejected = _insert_row_groups(client, database, table, [groups[i] for i in kept], columns)
        return [(kept[index], bad) for index, bad in rejected]
    return _insert_row_groups(client, database, table, groups, columns)


def _insert_row_groups(
    client: Client,
    database: str,
    table: str,
    groups: Sequence[Sequence[Row] | pa.Table],
    columns: Sequence[str],
) -> list[RejectedGroup]:
    row_groups = [table_rows(g) if isinstance(g, pa.Table) else g for g in groups]
    try:
        insert_rows(
            client, database, table, [row for group in row_groups for row in group], columns
        )
        return []
    except Exception as exc:  # classified below by the values, not by the exception type
        failure = exc
    rejected = _rejected_groups(client, database, table, row_groups, columns)
    if not rejected:
        raise failure
    bad = {index for index, _ in rejected}
    kept = [row for index, group in enumerate(row_groups) if index not in bad for row in group]
    insert_rows(client, database, table, kept, columns)
    return rejected


def _rejected_groups(
    client: Client,
    database: str,
    table: str,
    groups: Sequence[Sequence[Row]],
    columns: Sequence[str],
) -> list[RejectedGroup]:
    types = column_types(client, database, table, columns)
    rejected = []
    for index, group in enumerate(groups):
        bad = find_bad_values(group, columns, types)
        if bad:
            rejected.append((index, bad[min(bad)]))
    return rejected
