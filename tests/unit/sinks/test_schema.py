"""The tables are what sinks.schema and the migration comments claim (read back from ClickHouse)."""

from __future__ import annotations

import time
from datetime import UTC
from typing import Any

import pytest

from sinks.migrate import apply_migrations
from sinks.rows import insert_rows
from sinks.schema import (
    CALL_COLUMNS,
    CALLS_ORDER_BY,
    CALLS_TABLE,
    CALLS_TTL_DAYS,
    DLQ_COLUMNS,
    DLQ_ORDER_BY,
    DLQ_TABLE,
    DLQ_TTL_DAYS,
    INGESTED_AT,
    TEXT_COLUMNS,
    TEXT_TTL_DAYS,
    qualified,
)
from streams.ingest.validate import CostFields
from tests.clock import Clock
from tests.unit.sinks.factories import call_rows, dead_letter

DB = "schema_test"
DAY_MS = 86_400_000


@pytest.fixture()
def client(ch_client: Any) -> Any:
    apply_migrations(ch_client, DB)
    return ch_client


def _table(client: Any, table: str) -> dict[str, str]:
    result = client.query(
        "SELECT engine, engine_full, sorting_key, partition_key FROM system.tables "
        "WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": DB, "t": table},
    )
    return dict(zip(result.column_names, result.result_rows[0], strict=True))


def _column_types(client: Any, table: str) -> dict[str, str]:
    result = client.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}",
        parameters={"db": DB, "t": table},
    )
    return dict(result.result_rows)


def test_llm_calls_engine_key_partition_and_row_ttl(client: Any) -> None:
    table = _table(client, CALLS_TABLE)
    assert table["engine"] == "ReplacingMergeTree"
    assert table["engine_full"].startswith("ReplacingMergeTree(ingested_at)")
    assert table["sorting_key"] == ", ".join(CALLS_ORDER_BY)
    assert CALLS_ORDER_BY[-1] == "event_id"
    assert table["partition_key"] == "toDate(start_time)"
    assert f"TTL toDateTime(start_time) + toIntervalDay({CALLS_TTL_DAYS})" in table["engine_full"]


@pytest.mark.parametrize("column", TEXT_COLUMNS)
def test_text_columns_have_the_column_ttl(client: Any, column: str) -> None:
    ddl = client.command(f"SHOW CREATE TABLE {qualified(CALLS_TABLE, DB)}")
    assert f"`{column}` String TTL toDateTime(start_time) + toIntervalDay({TEXT_TTL_DAYS})" in ddl


def test_llm_dlq_engine_key_and_ttl(client: Any) -> None:
    table = _table(client, DLQ_TABLE)
    assert table["engine_full"].startswith("ReplacingMergeTree(ingested_at)")
    assert table["sorting_key"] == ", ".join(DLQ_ORDER_BY)
    assert f"TTL toDateTime(failed_at) + toIntervalDay({DLQ_TTL_DAYS})" in table["engine_full"]


@pytest.mark.parametrize(
    ("table", "columns"), [(CALLS_TABLE, CALL_COLUMNS), (DLQ_TABLE, DLQ_COLUMNS)]
)
def test_tables_have_every_row_field_plus_ingested_at(
    client: Any, table: str, columns: tuple[str, ...]
) -> None:
    assert list(_column_types(client, table)) == [*columns, INGESTED_AT]


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("start_time", "DateTime64(3, 'UTC')"),
        ("ingested_at", "DateTime64(3, 'UTC')"),
        ("service", "LowCardinality(String)"),
        ("environment", "LowCardinality(String)"),
        ("provider_name", "LowCardinality(String)"),
        ("request_model", "LowCardinality(String)"),
        ("prompt_version", "LowCardinality(String)"),
        ("cost_source", "LowCardinality(String)"),
        ("cost_usd", "Nullable(Float64)"),
        ("temperature", "Nullable(Float64)"),
        ("time_to_first_token_ms", "Nullable(Float64)"),
        ("http_status", "Nullable(UInt16)"),
        ("input_tokens", "UInt32"),
        ("metadata", "Map(String, String)"),
        ("finish_reasons", "Array(LowCardinality(String))"),
    ],
)
def test_llm_calls_column_types(client: Any, column: str, expected: str) -> None:
    assert _column_types(client, CALLS_TABLE)[column] == expected


def test_unknown_cost_stays_null_and_free_stays_zero(client: Any) -> None:
    unknown = call_rows(1, start=0, cost=CostFields(None, None, ""))
    free = call_rows(1, start=1, cost=CostFields(0.0, 0.0, "calc"))
    insert_rows(client, DB, CALLS_TABLE, unknown + free, CALL_COLUMNS)
    rows = client.query(
        f"SELECT event_id, cost_usd, cost_usd IS NULL FROM {qualified(CALLS_TABLE, DB)} FINAL "
        "ORDER BY event_id"
    ).result_rows
    assert rows == [("evt-000000", None, True), ("evt-000001", 0.0, False)]


def test_row_values_round_trip(client: Any) -> None:
    [row] = call_rows(1, start=7)
    insert_rows(client, DB, CALLS_TABLE, [row], CALL_COLUMNS)
    result = client.query(
        "SELECT toUnixTimestamp64Milli(start_time), metadata, finish_reasons, input_text, "
        f"ingested_at FROM {qualified(CALLS_TABLE, DB)}"
    )
    start_ms, metadata, finish_reasons, text, ingested = result.result_rows[0]
    assert (start_ms, metadata, finish_reasons, text) == (
        row["start_time"],
        row["metadata"],
        ["stop"],
        "question 7",
    )
    assert abs(ingested.replace(tzinfo=UTC).timestamp() - time.time()) < 600


def test_replayed_calls_count_once_with_final(client: Any) -> None:
    rows = call_rows(50)
    for _ in range(3):
        insert_rows(client, DB, CALLS_TABLE, rows, CALL_COLUMNS)
    assert client.command(f"SELECT count() FROM {qualified(CALLS_TABLE, DB)} FINAL") == 50


def test_replayed_dead_letters_count_once_but_other_payloads_stay(
    client: Any, clock: Clock
) -> None:
    first = {**dead_letter(3).to_row(), "failed_at": clock.ago_ms(days=6)}
    replayed_later = {**first, "failed_at": first["failed_at"] + 5 * DAY_MS}
    other_bytes_same_position = dead_letter(3, payload=b"different").to_row()
    insert_rows(client, DB, DLQ_TABLE, [first], DLQ_COLUMNS)
    insert_rows(client, DB, DLQ_TABLE, [replayed_later, other_bytes_same_position], DLQ_COLUMNS)
    rows = client.query(
        f"SELECT payload, payload_sha256 FROM {qualified(DLQ_TABLE, DB)} FINAL ORDER BY payload"
    ).result_rows
    assert [r[0] for r in rows] == ["different", '{"not": "an event"}']


def test_ttls_expire_old_rows_and_old_texts(client: Any, now_ms: int) -> None:
    old, middle, fresh = call_rows(3)
    old["start_time"] = old["end_time"] = now_ms - (CALLS_TTL_DAYS + 1) * DAY_MS
    middle["start_time"] = middle["end_time"] = now_ms - (TEXT_TTL_DAYS + 1) * DAY_MS
    fresh["start_time"] = fresh["end_time"] = now_ms - DAY_MS
    insert_rows(client, DB, CALLS_TABLE, [old, middle, fresh], CALL_COLUMNS)
    client.command(f"OPTIMIZE TABLE {qualified(CALLS_TABLE, DB)} FINAL")
    rows = client.query(
        f"SELECT event_id, input_text, output_text FROM {qualified(CALLS_TABLE, DB)} "
        "ORDER BY event_id"
    ).result_rows
    assert rows == [(middle["event_id"], "", ""), (fresh["event_id"], "question 2", "answer 2")]
