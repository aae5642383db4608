from __future__ import annotations

import hashlib
from typing import Any

import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, ProgrammingError

from sinks.migrate import apply_migrations
from sinks.rows import insert_groups, insert_rows, to_columns
from sinks.schema import CALL_COLUMNS, CALLS_TABLE, DLQ_COLUMNS, DLQ_TABLE, qualified
from sinks.values import BadValue, SchemaMismatch
from streams.ingest.call_batches import decode_call_table, encode_call_batch, rows_to_columns
from tests.unit.sinks.factories import call_rows, dead_letter

DB = "rows_test"


@pytest.fixture()
def client(ch_client: Any) -> Any:
    apply_migrations(ch_client, DB)
    return ch_client


def _count(client: Any, table: str = CALLS_TABLE) -> int:
    return int(client.command(f"SELECT count() FROM {qualified(table, DB)} FINAL"))


def test_to_columns_pivots_in_column_order() -> None:
    rows = [{"a": 1, "b": "x", "extra": 0}, {"a": 2, "b": "y", "extra": 0}]
    assert to_columns(rows, ["b", "a"]) == [["x", "y"], [1, 2]]


def test_to_columns_of_no_rows_is_empty_columns() -> None:
    assert to_columns([], ["a", "b"]) == [[], []]


def test_to_columns_names_the_missing_column() -> None:
    with pytest.raises(KeyError, match=r"row #1 has no column\(s\) \['b'\]"):
        to_columns([{"a": 1, "b": 2}, {"a": 3}], ["a", "b"])


def test_insert_rows_writes_every_row(client: Any) -> None:
    assert insert_rows(client, DB, CALLS_TABLE, call_rows(120), CALL_COLUMNS) == 120
    assert _count(client) == 120


def test_dead_letter_payload_bytes_are_kept_exactly(client: Any) -> None:
    payload = b"\x00\xff\xfe not utf-8 \x80"
    insert_rows(client, DB, DLQ_TABLE, [dead_letter(1, payload).to_row()], DLQ_COLUMNS)
    stored = client.query(
        f"SELECT hex(payload), payload_size, payload_sha256 FROM {qualified(DLQ_TABLE, DB)}"
    ).result_rows
    assert stored == [(payload.hex().upper(), len(payload), hashlib.sha256(payload).hexdigest())]


def test_insert_groups_without_bad_data_rejects_nothing(client: Any) -> None:
    groups = [call_rows(10, start=10 * i) for i in range(5)]
    assert insert_groups(client, DB, CALLS_TABLE, groups, CALL_COLUMNS) == []
    assert _count(client) == 50


@pytest.mark.parametrize(
    ("bad_groups", "column", "value"),
    [
        ({0}, "input_tokens", "many"),
        ({3}, "seed", 2**70),
        ({6}, "service", None),
        ({1, 4}, "start_time", 1.5),
        ({2}, "metadata", {"k": 1}),
        ({5}, "input_tokens", -1),
        ({0, 6}, "http_status", 70_000),
        ({3}, "temperature", "hot"),
        ({2}, "event_id", 123),
    ],
)
def test_insert_groups_isolates_the_bad_groups_and_inserts_the_rest(
    client: Any, bad_groups: set[int], column: str, value: Any
) -> None:
    groups = [call_rows(10, start=10 * i) for i in range(7)]
    for index in bad_groups:
        groups[index][5][column] = value
    rejected = insert_groups(client, DB, CALLS_TABLE, groups, CALL_COLUMNS)
    assert {index for index, _ in rejected} == bad_groups
    assert all(isinstance(exc, BadValue) and exc.column == column for _, exc in rejected)
    assert all(f"column {column!r}" in str(exc) and "row 5" in str(exc) for _, exc in rejected)
    assert _count(client) == 10 * (7 - len(bad_groups))


def test_a_bad_text_value_is_named_without_quoting_it(client: Any) -> None:
    groups = [call_rows(2), call_rows(2, start=2)]
    groups[1][0]["input_tokens"] = "contact fake.person@example.invalid"
    [(index, exc)] = insert_groups(client, DB, CALLS_TABLE, groups, CALL_COLUMNS)
    assert index == 1
    assert str(exc) == (
        "column 'input_tokens' (UInt32), row 0: got str of 35 chars, expected an int in "
        "[0, 4294967295]"
    )


def test_a_column_type_no_row_format_writes_is_raised_not_dead_lettered(client: Any) -> None:
    # The table changed under the sink: the driver fails on every row's valid '' response_id
    # (a TypeError, which used to dead-letter the whole batch).
    client.command(f"ALTER TABLE {qualified(CALLS_TABLE, DB)} MODIFY COLUMN response_id Date")
    groups = [call_rows(3), call_rows(3, start=3)]
    with pytest.raises(SchemaMismatch, match=r"column 'response_id' has type Date"):
        insert_groups(client, DB, CALLS_TABLE, groups, CALL_COLUMNS)
    assert _count(client) == 0


def test_a_column_missing_in_the_table_is_raised_not_dead_lettered(client: Any) -> None:
    client.command(f"ALTER TABLE {qualified(CALLS_TABLE, DB)} DROP COLUMN seed")
    groups = [call_rows(3), call_rows(3, start=3)]
    groups[1][0]["input_tokens"] = "many"  # a bad value too: the schema error still wins
    with pytest.raises(ProgrammingError, match="seed"):
        insert_groups(client, DB, CALLS_TABLE, groups, CALL_COLUMNS)
    assert _count(client) == 0


def test_a_failure_no_value_explains_is_raised_unchanged(client: Any) -> None:
    # The server refuses valid rows (here a constraint; in general any server or driver fault).
    client.command(
        f"ALTER TABLE {qualified(CALLS_TABLE, DB)} ADD CONSTRAINT few CHECK input_tokens < 100"
    )
    with pytest.raises(DatabaseError, match="few"):
        insert_groups(client, DB, CALLS_TABLE, [call_rows(3)], CALL_COLUMNS)
    assert _count(client) == 0


def test_insert_groups_rejects_a_group_with_a_missing_column(client: Any) -> None:
    groups = [call_rows(4, start=10 * i) for i in range(3)]
    del groups[1][2]["service"]
    [(index, exc)] = insert_groups(client, DB, CALLS_TABLE, groups, CALL_COLUMNS)
    assert index == 1
    assert isinstance(exc, BadValue)
    assert str(exc) == "column 'service' (LowCardinality(String)), row 2: no column in the row"
    assert _count(client) == 8


def test_insert_groups_propagates_infrastructure_errors(client: Any) -> None:
    client.command(f"DROP TABLE {qualified(CALLS_TABLE, DB)}")
    with pytest.raises(DatabaseError, match="UNKNOWN_TABLE"):
        insert_groups(client, DB, CALLS_TABLE, [call_rows(3)], CALL_COLUMNS)


def _arrow(rows: list[dict[str, Any]]) -> pa.Table:
    return decode_call_table(encode_call_batch(rows_to_columns(rows)))


def test_arrow_groups_go_in_with_the_dict_groups(client: Any) -> None:
    groups: list[Any] = [_arrow(call_rows(10, start=0)), call_rows(10, start=10)]
    groups.append(_arrow(call_rows(10, start=20)))
    assert insert_groups(client, DB, CALLS_TABLE, groups, CALL_COLUMNS) == []
    assert _count(client) == 30
    stored = client.query(
        f"SELECT sum(input_tokens), toUnixTimestamp64Milli(min(start_time)) "
        f"FROM {qualified(CALLS_TABLE, DB)} FINAL"
    ).result_rows[0]
    rows = [row for start in (0, 10, 20) for row in call_rows(10, start=start)]
    assert stored == (sum(r["input_tokens"] for r in rows), min(r["start_time"] for r in rows))


def test_an_arrow_group_missing_a_column_is_rejected_alone(client: Any) -> None:
    bad = _arrow(call_rows(5, start=100)).drop_columns(["service"])
    groups: list[Any] = [_arrow(call_rows(5, start=0)), bad, call_rows(5, start=5)]
    rejected = insert_groups(client, DB, CALLS_TABLE, groups, CALL_COLUMNS)
    assert [index for index, _ in rejected] == [1]
    assert "service" in str(rejected[0][1])
    assert _count(client) == 10
