"""1-minute windows in ClickHouse: late and out-of-order events, replays and a worker restart.

The worker's per-record rollups are inserted the way the sink does (same routes and column lists)
into real chdb tables; queries read FINAL, as the dashboards do.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from producers.wire import encode_batch
from sinks.migrate import apply_migrations
from sinks.routes import default_routes
from sinks.rows import insert_rows
from streams.analytics.record import RecordAnalytics
from streams.ingest.pipeline import RecordProcessor
from streams.ingest.validate import SourcePosition
from streams.topics import TopicLayout

NOW = datetime.now(UTC).replace(second=30, microsecond=0) - timedelta(minutes=5)
LAYOUT = TopicLayout(prefix="w")


def _event(minute_offset: int, i: int) -> dict[str, Any]:
    start = NOW + timedelta(minutes=minute_offset, seconds=i % 20)
    return {
        "event_id": f"m{minute_offset}-{i}",
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(milliseconds=200 + i)).isoformat(),
        "service": "svc",
        "provider_name": "openai",
        "request_model": "gpt-4o-mini",
        "user_id": f"u{i % 5}",
        "tenant_id": "acme",
        "input_tokens": 100,
        "output_tokens": 10,
    }


def _record(minute_offset: int, n: int) -> bytes:
    return encode_batch([_event(minute_offset, i) for i in range(n)], sent_at_ms=1)


class Harness:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.db = f"w{uuid.uuid4().hex[:8]}"
        apply_migrations(client, self.db)
        self.processor = RecordProcessor(RecordAnalytics())
        self.route = default_routes(LAYOUT)[LAYOUT.rollups]

    def sink(self, record: bytes, offset: int, partition: int = 0) -> None:
        out = self.processor.process(
            record, SourcePosition(LAYOUT.events, partition, offset), time.time_ns() // 1_000_000
        )
        assert out.rollups, out.dead_letters
        for record_out in out.rollups:
            for table, rows in self.route.split(record_out).items():
                if rows:
                    insert_rows(self.client, self.db, table, rows, self.route.tables[table])

    def per_minute(self) -> dict[int, int]:
        rows = self.client.query(
            "SELECT toUnixTimestamp(window_start), sum(requests) "
            f"FROM {self.db}.llm_rollup_1m FINAL GROUP BY window_start ORDER BY window_start"
        ).result_rows
        base = int(NOW.replace(second=0).timestamp())
        return {(ts - base) // 60: int(n) for ts, n in rows}

    def user_costs(self) -> float:
        return float(
            self.client.query(
                f"SELECT sum(requests) FROM {self.db}.llm_user_cost_1h FINAL"
            ).result_rows[0][0]
        )


@pytest.fixture()
def harness(ch_client: Any) -> Harness:
    return Harness(ch_client)


def test_out_of_order_records_land_in_their_windows(harness: Harness) -> None:
    harness.sink(_record(2, 30), offset=0)
    harness.sink(_record(0, 10), offset=1)  # earlier minute, arriving later
    harness.sink(_record(1, 20), offset=2)
    assert harness.per_minute() == {0: 10, 1: 20, 2: 30}


def test_a_late_event_updates_its_old_window(harness: Harness) -> None:
    harness.sink(_record(3, 5), offset=0)
    harness.sink(_record(-120, 7), offset=1)  # two hours late: still counted in its window
    assert harness.per_minute()[-120] == 7
    assert sum(harness.per_minute().values()) == 12


def test_replayed_records_do_not_double_count(harness: Harness) -> None:
    records = [_record(m, 15) for m in range(3)]
    for offset, record in enumerate(records):
        harness.sink(record, offset)
    for offset, record in enumerate(records):  # a full replay (sink or worker restart)
        harness.sink(record, offset)
    assert harness.per_minute() == {0: 15, 1: 15, 2: 15}
    assert harness.user_costs() == 45


def test_worker_restart_reprocessing_uncommitted_records_is_exact(harness: Harness) -> None:
    records = [_record(m % 3, 12) for m in range(10)]
    # Before the crash, records 0-6 were published but only 0-4 committed.
    for offset in range(7):
        harness.sink(records[offset], offset)
    # The restarted worker resumes at the committed offset 5 and processes 5-9 again.
    restarted = RecordProcessor(RecordAnalytics())
    harness.processor = restarted
    for offset in range(5, 10):
        harness.sink(records[offset], offset)
    assert sum(harness.per_minute().values()) == 120
    assert harness.per_minute() == {0: 48, 1: 36, 2: 36}
