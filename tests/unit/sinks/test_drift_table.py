"""llm_drift on chdb: a drift record goes through the sink's route into the table, a replayed record
collapses, and bad records are refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from sinks.migrate import apply_migrations
from sinks.routes import default_routes
from sinks.rows import insert_rows
from streams.drift.monitor import DRIFT_FIELDS, DriftConfig, ShapeDriftMonitor
from streams.drift.records import encode_drift
from streams.storage import DRIFT_TABLE
from streams.topics import TopicLayout
from tests.unit.streams.drift.test_monitor import WINDOW_MS, _run

DB = "drift_t"
LAYOUT = TopicLayout("d")


@pytest.fixture()
def client(ch_client: Any) -> Any:
    apply_migrations(ch_client, DB)
    return ch_client


def test_drift_rows_land_once_and_the_shift_is_flagged(client: Any, now_ms: int) -> None:
    origin = now_ms - now_ms % WINDOW_MS - 20 * WINDOW_MS
    config = DriftConfig(window_ms=WINDOW_MS, reference_windows=3, grace_ms=5_000, min_samples=100)
    rows = _run(ShapeDriftMonitor(config), origin, longer_from=5, seed=1)
    route = default_routes(LAYOUT)[LAYOUT.drift]
    for _ in range(2):  # a replayed record
        insert_rows(
            client, DB, DRIFT_TABLE, route.split(encode_drift(rows))[DRIFT_TABLE], DRIFT_FIELDS
        )
    total, flagged = client.query(
        f"SELECT count(), countIf(flagged AND feature = 'output_tokens') FROM {DB}.{DRIFT_TABLE} FINAL"
    ).result_rows[0]
    assert total == len(rows) and flagged >= 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"", "empty drift record"),
        (b"[]", "not a drift record"),
        (b'{"llmwatch_drift": 1, "rows": [{"feature": "x"}]}', "drift rows #0 lacks"),
        (b'{"llmwatch_drift": 1}', "lacks 'rows'"),
        (b'{"llmwatch_drift": 1, "rows": [], "topics": [{"topic": 1}]}', "drift topics #0 lacks"),
    ],
)
def test_bad_drift_records_are_refused_by_name(value: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        default_routes(LAYOUT)[LAYOUT.drift].split(value)
