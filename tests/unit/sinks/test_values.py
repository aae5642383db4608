"""The column checks: every value they accept really inserts (chdb), and they name what they refuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

import pytest
from clickhouse_connect.datatypes.registry import get_from_name

from sinks.values import BadValue, SchemaMismatch, checker, describe, find_bad_values

# Every column type llmwatch's migrations declare.
MIGRATION_TYPES: Final = (
    "Array(LowCardinality(String))",
    "Bool",
    "DateTime64(3, 'UTC')",
    "Float64",
    "Int32",
    "Int64",
    "LowCardinality(String)",
    "Map(Int32, UInt64)",
    "Map(LowCardinality(String), String)",
    "Map(LowCardinality(String), UInt64)",
    "Map(String, String)",
    "Nullable(DateTime64(3, 'UTC'))",
    "Nullable(Float64)",
    "Nullable(Int64)",
    "Nullable(UInt16)",
    "Nullable(UInt32)",
    "Nullable(UInt64)",
    "String",
    "UInt16",
    "UInt32",
    "UInt64",
    "UInt8",
)
NOW: Final = datetime.now(UTC)
ACCEPTED: Final[list[tuple[str, Any]]] = [
    ("UInt8", 0),
    ("UInt8", 255),
    ("UInt64", 2**64 - 1),
    ("Int64", -(2**63)),
    ("Int32", True),
    ("Float64", 1e308),
    ("Float64", 2**1000),
    ("Float64", -0.0),
    ("Bool", False),
    ("String", ""),
    ("String", "héllo \u2603"),
    ("String", b"\x00\xff raw bytes"),
    ("LowCardinality(String)", "support-bot"),
    ("DateTime64(3, 'UTC')", int(NOW.timestamp() * 1000)),
    ("DateTime64(3, 'UTC')", NOW.astimezone(timezone(timedelta(hours=5)))),
    ("Nullable(DateTime64(3, 'UTC'))", None),
    ("Nullable(UInt16)", 65_535),
    ("Array(LowCardinality(String))", []),
    ("Array(LowCardinality(String))", ("stop", "length")),
    ("Map(String, String)", {}),
    ("Map(LowCardinality(String), UInt64)", {"input": 2**64 - 1}),
    ("Map(Int32, UInt64)", {-1: 0}),
]
REFUSED: Final[list[tuple[str, Any, str]]] = [
    ("UInt8", 256, "got int 256, expected an int in [0, 255]"),
    ("UInt32", -1, "got int -1, expected an int in [0, 4294967295]"),
    ("Int64", 2**63, "expected an int in"),
    ("UInt32", 1.0, "got float 1.0"),
    ("UInt32", "12", "got str of 2 chars"),
    ("Float64", 2**1100, "expected a float"),
    ("Float64", "1.5", "got str of 3 chars, expected a float"),
    ("Bool", 1, "got int 1, expected a bool"),
    ("String", 7, "got int 7, expected a str or bytes"),
    ("String", "lone \ud800 surrogate", "not UTF-8 encodable at 5"),
    ("LowCardinality(String)", None, "got NoneType None"),
    ("DateTime64(3, 'UTC')", 1.5, "got float 1.5"),
    ("DateTime64(3, 'UTC')", "2026-01-01", "got str of 10 chars"),
    ("DateTime64(3, 'UTC')", NOW.replace(tzinfo=None), "expected an aware datetime"),
    ("Array(LowCardinality(String))", "stop", "got str of 4 chars, expected a list"),
    ("Array(LowCardinality(String))", ["ok", None], "item 1: got NoneType None"),
    ("Map(String, String)", {"k": 1}, "the value of a key: got int 1"),
    ("Map(Int32, UInt64)", {"k": 1}, "a key: got str of 1 chars"),
    ("Map(String, String)", [("k", "v")], "got list of 1 items, expected a dict"),
]


@pytest.fixture()
def table(ch_client: Any) -> Any:
    columns = ", ".join(f"c{i} {t}" for i, t in enumerate(MIGRATION_TYPES))
    ch_client.command("CREATE DATABASE IF NOT EXISTS values_test")
    ch_client.command(f"CREATE TABLE values_test.t (id UInt32, {columns}) ENGINE = Memory")
    return ch_client


def _insert_one(client: Any, type_name: str, value: Any) -> None:
    column = f"c{MIGRATION_TYPES.index(type_name)}"
    client.insert("t", [[1, value]], column_names=["id", column], database="values_test")


@pytest.mark.parametrize(("type_name", "value"), ACCEPTED, ids=lambda v: repr(v)[:30])
def test_an_accepted_value_inserts(table: Any, type_name: str, value: Any) -> None:
    assert checker(get_from_name(type_name), "c")(value) is None
    _insert_one(table, type_name, value)
    assert table.command("SELECT count() FROM values_test.t") == 1


@pytest.mark.parametrize(("type_name", "value", "reason"), REFUSED, ids=lambda v: repr(v)[:30])
def test_a_refused_value_is_named(type_name: str, value: Any, reason: str) -> None:
    found = checker(get_from_name(type_name), "c")(value)
    assert found is not None and reason in found


@pytest.mark.parametrize("type_name", MIGRATION_TYPES)
def test_every_migration_type_has_a_check(type_name: str) -> None:
    assert callable(checker(get_from_name(type_name), "c"))


@pytest.mark.parametrize("type_name", ["UUID", "Date", "Decimal(10, 2)", "Enum8('a' = 1)", "IPv4"])
def test_a_type_no_row_format_writes_is_a_schema_mismatch(type_name: str) -> None:
    with pytest.raises(SchemaMismatch, match=rf"column 'c' has type {type_name.split('(')[0]}"):
        checker(get_from_name(type_name), "c")


def test_find_bad_values_reports_the_first_bad_value_of_each_row() -> None:
    types = [get_from_name("UInt8"), get_from_name("String")]
    rows = [{"a": 1, "b": "x"}, {"a": 300, "b": 5}, {"b": "y"}, {"a": 2, "b": "z"}]
    bad = find_bad_values(rows, ["a", "b"], types)
    assert sorted(bad) == [1, 2]
    assert all(isinstance(exc, BadValue) for exc in bad.values())
    assert str(bad[1]) == "column 'a' (UInt8), row 1: got int 300, expected an int in [0, 255]"
    assert str(bad[2]) == "column 'a' (UInt8), row 2: no column in the row"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("fake.person@example.invalid", "str of 27 chars"),
        (b"\x00\x01", "bytes of 2 bytes"),
        ({"k": "secret-ish"}, "dict of 1 items"),
        (-3, "int -3"),
        (None, "NoneType None"),
    ],
)
def test_describe_never_quotes_text(value: Any, shown: str) -> None:
    assert describe(value) == shown
