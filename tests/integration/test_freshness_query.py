"""The pipeline dashboard's freshness panels count each call once, at its first landing (chdb).

The sink delivers at least once: after a crash between an insert and its offset commit, the same call
is inserted again later. ``llm_calls`` is a ReplacingMergeTree(ingested_at), so FINAL keeps that later
copy; freshness (``ingested_at - sent_at``) must still be measured on the copy that landed first.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from dashboards.build import build_all
from dashboards.macros import QueryWindow, render_sql
from dashboards.pipeline import UID
from dashboards.runner import run_sql
from dashboards.walk import queries
from producers.events import LlmCallEvent
from sinks.migrate import apply_migrations
from sinks.rows import insert_rows
from sinks.schema import CALL_COLUMNS, CALLS_TABLE, INGESTED_AT
from streams.ingest.validate import SourcePosition, to_call_row

DATABASE: Final = "llmwatch"
FIRST_LANDING_S: Final = 2  # from sent_at to the first copy's row
REPLAY_AFTER: Final = timedelta(minutes=20)  # the crashed sink's replay inserts the copy again
PANELS: Final = ("Freshness p95", "Freshness (emit to row) p50 / p95 / p99")


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _call(event_id: str, sent_at: datetime) -> dict[str, Any]:
    start = sent_at - timedelta(seconds=3)
    event = LlmCallEvent(
        event_id=event_id,
        start_time=start,
        end_time=start + timedelta(seconds=1),
        service="support-bot",
        environment="production",
        provider_name="openai",
        request_model="gpt-4o-mini",
    )
    return to_call_row(event, SourcePosition("t.events", 0, 1), sent_at_ms=_ms(sent_at))


def _insert_copy(client: Client, row: dict[str, Any], ingested_at: datetime) -> None:
    copy = row | {INGESTED_AT: _ms(ingested_at)}
    insert_rows(client, DATABASE, CALLS_TABLE, [copy], (*CALL_COLUMNS, INGESTED_AT))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    folder: Path = tmp_path_factory.mktemp("freshness")
    chdb = clickhouse_connect.get_client(dsn=f"chdb://{folder}")
    try:
        apply_migrations(chdb, DATABASE)
        yield chdb
    finally:
        chdb.close()


@pytest.fixture(scope="module")
def window(client: Client) -> QueryWindow:
    """Two calls sent in the last hour; each landed once quickly and was replayed 20 minutes later."""
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    for index, sent_ago in enumerate((timedelta(minutes=50), timedelta(minutes=35))):
        sent_at = end - sent_ago
        row = _call(f"evt-fresh-{index}", sent_at)
        _insert_copy(client, row, sent_at + timedelta(seconds=FIRST_LANDING_S))
        _insert_copy(client, row, sent_at + REPLAY_AFTER)
    return QueryWindow(end - timedelta(hours=1), end, 60)


def _panel_sql(title: str) -> str:
    (sql,) = [q.sql for q in queries(build_all()[UID]) if q.owner == title]
    return sql


def test_each_replayed_call_is_stored_once(client: Client, window: QueryWindow) -> None:
    counted = client.query(f"SELECT count() FROM {DATABASE}.{CALLS_TABLE} FINAL").result_rows
    assert counted == [(2,)]


@pytest.mark.parametrize("title", PANELS)
def test_freshness_reads_the_first_copy_of_a_replayed_call(
    client: Client, window: QueryWindow, title: str
) -> None:
    result = run_sql(client, render_sql(_panel_sql(title), window, {}))

    values = [v for row in result.rows for v in row if isinstance(v, int | float)]
    assert values and all(v == FIRST_LANDING_S for v in values), result.rows
    if result.columns[0] == "time":  # one point per call, at its first landing's minute
        first_landings = {window.end - timedelta(minutes=m) for m in (50, 35)}
        times = {t if t.tzinfo else t.replace(tzinfo=UTC) for t, *_ in result.rows}
        assert times == first_landings
