"""Replays are deterministic: the same records processed again later, with a changed lifecycle file,
leave every FINAL count and sum unchanged in ClickHouse (chdb, the real migrations and sink routes).

Before, the rollup sorting key held the config-dependent lifecycle label, so a replay after the
lifecycle file changed added a second copy of every rollup row; and events without ids got new random
ids on each replay, so llm_calls counted them twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from producers.wire import encode_batch
from sinks.migrate import apply_migrations
from sinks.routes import default_routes
from sinks.rows import insert_groups
from streams.analytics.record import AnalyticsConfig, RecordAnalytics
from streams.ingest.pipeline import RecordOutput, RecordProcessor
from streams.ingest.validate import SourcePosition
from streams.topics import TopicLayout

LAYOUT: Final = TopicLayout(prefix="replay")
RECORDS: Final = 6
EVENTS_PER_RECORD: Final = 50
RETIRED: Final = """version: 1
models:
  - {provider: openai, model: gpt-4o-mini, deprecation_date: 2020-01-01, retirement_date: 2020-06-01,
     source: "test: every call to this model counts as retired"}
"""


def _records(record_ms: int) -> list[bytes]:
    start = datetime.fromtimestamp(record_ms / 1000, tz=UTC) - timedelta(minutes=3)
    records = []
    for r in range(RECORDS):
        events = []
        for i in range(EVENTS_PER_RECORD):
            at = start + timedelta(seconds=i)
            event: dict[str, Any] = {
                "start_time": at.isoformat(),
                "end_time": (at + timedelta(milliseconds=400 + i)).isoformat(),
                "service": f"svc-{i % 2}",
                "provider_name": "openai",
                "request_model": "gpt-4o-mini",
                "input_tokens": 100 + i,
                "output_tokens": 10,
                "user_id": f"user-{i % 7}",
                "tenant_id": "acme",
            }
            if i % 2 == 0:
                event["event_id"] = f"r{r}-e{i}"  # the odd ones come without ids
            events.append(event)
        records.append(encode_batch(events, sent_at_ms=record_ms))
    return records


def _store(client: Any, database: str, outputs: Sequence[RecordOutput]) -> None:
    routes = default_routes(LAYOUT)
    for out in outputs:
        for topic, values in ((LAYOUT.calls, out.calls), (LAYOUT.rollups, out.rollups)):
            route = routes[topic]
            for value in values:
                for table, rows in route.split(value).items():
                    if len(rows):
                        assert not insert_groups(
                            client, database, table, [rows], route.tables[table]
                        )


def _process(
    analytics: RecordAnalytics, records: list[bytes], record_ms: int
) -> list[RecordOutput]:
    processor = RecordProcessor(analytics)
    return [
        processor.process(value, SourcePosition(LAYOUT.events, 0, offset), record_ms)
        for offset, value in enumerate(records)
    ]


def _final_totals(client: Any, database: str) -> dict[str, tuple[Any, ...]]:
    queries = {
        "llm_calls": "count(), uniqExact(event_id), sum(input_tokens)",
        "llm_rollup_1m": "count(), sum(requests), sum(input_tokens), round(sum(cost_usd), 9)",
        "llm_tenant_cost_1m": "count(), sum(requests), round(sum(cost_usd), 9)",
        "llm_user_cost_1h": "count(), sum(requests), round(sum(cost_usd), 9)",
    }
    return {
        table: tuple(client.query(f"SELECT {what} FROM {database}.{table} FINAL").result_rows[0])
        for table, what in queries.items()
    }


def test_a_replay_with_a_changed_lifecycle_file_changes_no_final_count(
    ch_client: Any, tmp_path: Path
) -> None:
    database = f"r{uuid.uuid4().hex[:8]}"
    apply_migrations(ch_client, database)
    record_ms = time.time_ns() // 1_000_000 - 60_000
    records = _records(record_ms)
    first = _process(RecordAnalytics(), records, record_ms)
    _store(ch_client, database, first)
    before = _final_totals(ch_client, database)
    assert before["llm_calls"][:2] == (RECORDS * EVENTS_PER_RECORD,) * 2

    retired = tmp_path / "lifecycle.yaml"
    retired.write_text(RETIRED)
    replay = _process(RecordAnalytics(AnalyticsConfig(lifecycle_file=retired)), records, record_ms)
    labels = {row["lifecycle"] for out in replay for row in _rollup_rows(out)}
    assert labels == {"retired"}, (
        "the changed file must change the label, or the test proves nothing"
    )
    _store(ch_client, database, replay)
    assert _final_totals(ch_client, database) == before
    lifecycle = ch_client.query(
        f"SELECT DISTINCT lifecycle FROM {database}.llm_rollup_1m FINAL"
    ).result_rows
    assert lifecycle == [("retired",)]  # the replayed rows replaced the first ones


def _rollup_rows(out: RecordOutput) -> list[dict[str, Any]]:
    route = default_routes(LAYOUT)[LAYOUT.rollups]
    return [row for value in out.rollups for row in route.split(value)["llm_rollup_1m"]]
