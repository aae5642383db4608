"""The ClickHouse sink against the real Tansu broker and chdb: exact rows, replays, commit discipline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from producers.wire import encode_batch
from sinks.schema import CALLS_TABLE, DLQ_TABLE, qualified
from sinks.stats import SinkStats
from sinks.writer import ClickHouseSink, SinkConfig
from streams.topics import TopicLayout
from tests.integration.conftest import SINK_DB
from tests.integration.kafka_io import committed, produce
from tests.integration.pipeline_harness import RunningSink
from tests.unit.sinks.factories import call_rows, dead_letter

# Helpers test_sink_rebalance imports from here (generic ones: kafka_io, pipeline_harness).
__all__ = ["DB", "RunningSink", "call_records", "committed", "count", "produce", "wait_for"]

DB = SINK_DB
WAIT_S = 45.0  # generous: a consumer group join on Tansu alone takes ~3 s
NO_OFFSET = -1001  # librdkafka's OFFSET_INVALID: nothing committed


def wait_for(sink: ClickHouseSink, condition: Callable[[SinkStats], bool], what: str) -> SinkStats:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        stats = sink.stats()
        if condition(stats):
            return stats
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; stats: {sink.stats()}")


@pytest.fixture()
def start_sink(
    broker: Any, layout: TopicLayout, client: Any
) -> Iterator[Callable[..., RunningSink]]:
    running: list[RunningSink] = []

    def start(group: str, **overrides: Any) -> RunningSink:
        fields: dict[str, Any] = {
            "bootstrap": broker.bootstrap,
            "layout": layout,
            "group_id": f"{layout.prefix}-{group}",
            "database": DB,
            "batch_max_rows": 50,
            "flush_interval_s": 0.2,
            "retry_initial_s": 0.05,
            "retry_max_s": 0.2,
        }
        fields.update(overrides)
        sink = RunningSink(ClickHouseSink(SinkConfig(**fields), client))
        sink.thread.start()
        running.append(sink)
        return sink

    yield start
    for sink in running:
        if sink.thread.is_alive():
            sink.stop()


def count(client: Any, table: str) -> int:
    return int(client.command(f"SELECT count() FROM {qualified(table, DB)} FINAL"))


def call_records(
    layout: TopicLayout, batches: int, rows_per_batch: int
) -> list[tuple[str, int, bytes]]:
    return [
        (
            layout.calls,
            i % layout.partitions,
            encode_batch(call_rows(rows_per_batch, start=i * 1000)),
        )
        for i in range(batches)
    ]


def test_sink_writes_exactly_the_rows_and_replays_do_not_duplicate(
    broker: Any, layout: TopicLayout, client: Any, start_sink: Callable[..., RunningSink]
) -> None:
    records = call_records(layout, batches=8, rows_per_batch=30)
    records += [(layout.dlq, i % 2, dead_letter(i).to_json()) for i in range(3)]
    ends = produce(broker.bootstrap, records)

    first = start_sink("first")
    wait_for(
        first.sink, lambda s: s.written(CALLS_TABLE) >= 240 and s.written(DLQ_TABLE) >= 3, "rows"
    )
    stats = first.stop()
    assert (count(client, CALLS_TABLE), count(client, DLQ_TABLE)) == (240, 3)
    assert stats.records_consumed == len(records)
    assert stats.batches >= 240 // 50
    assert stats.p99_insert_ms is not None and stats.insert_failures == 0
    assert committed(broker.bootstrap, f"{layout.prefix}-first", list(ends)) == ends

    replay = start_sink("replay")
    wait_for(replay.sink, lambda s: s.records_consumed == len(records), "the replay")
    replay.stop()
    assert (count(client, CALLS_TABLE), count(client, DLQ_TABLE)) == (240, 3)
    ids = client.query(
        f"SELECT DISTINCT event_id FROM {qualified(CALLS_TABLE, DB)}"
    ).result_columns[0]
    assert len(ids) == 240


def test_undecodable_and_rejected_records_become_dead_letters(
    broker: Any, layout: TopicLayout, client: Any, start_sink: Callable[..., RunningSink]
) -> None:
    bad_row = call_rows(1, start=500)[0]
    bad_row["input_tokens"] = "lots"
    poison = encode_batch([*call_rows(2, start=400), bad_row])
    garbage = b"\x00 not json"
    good = encode_batch(call_rows(5))
    ends = produce(
        broker.bootstrap,
        [(layout.calls, 0, good), (layout.calls, 0, garbage), (layout.calls, 0, poison)],
    )

    sink = start_sink("dlq")
    wait_for(sink.sink, lambda s: s.written(DLQ_TABLE) >= 2 and s.written(CALLS_TABLE) >= 5, "rows")
    stats = sink.stop()
    assert stats.dead_letters == 2
    assert count(client, CALLS_TABLE) == 5
    letters = client.query(
        f"SELECT source_offset, index_in_record, reason, payload = {{p1:String}}, "
        f"payload = {{p2:String}} FROM {qualified(DLQ_TABLE, DB)} FINAL ORDER BY source_offset",
        parameters={"p1": garbage, "p2": poison},
    ).result_rows
    assert [(r[0], r[1], r[3], r[4]) for r in letters] == [
        (1, -1, True, False),
        (2, -1, False, True),
    ]
    assert "cannot decode" in letters[0][2] and "not valid UTF-8 JSON" in letters[0][2]
    assert "llm_calls rejected" in letters[1][2]
    assert committed(broker.bootstrap, f"{layout.prefix}-dlq", list(ends)) == ends


def test_offsets_are_committed_only_after_the_insert_succeeds(
    broker: Any, layout: TopicLayout, client: Any, start_sink: Callable[..., RunningSink]
) -> None:
    parked = qualified("llm_calls_parked", DB)
    client.command(f"RENAME TABLE {qualified(CALLS_TABLE, DB)} TO {parked}")
    records = call_records(layout, batches=4, rows_per_batch=10)
    ends = produce(broker.bootstrap, records)
    group = f"{layout.prefix}-failing"

    sink = start_sink("failing")
    stats = wait_for(
        sink.sink,
        lambda s: s.insert_failures >= 3 and s.records_consumed == len(records),
        "failing inserts",
    )
    assert stats.paused
    assert stats.written(CALLS_TABLE) == 0
    assert set(committed(broker.bootstrap, group, list(ends)).values()) == {NO_OFFSET}
    assert client.command(f"SELECT count() FROM {parked}") == 0

    client.command(f"RENAME TABLE {parked} TO {qualified(CALLS_TABLE, DB)}")
    stats = wait_for(
        sink.sink, lambda s: s.written(CALLS_TABLE) == 40 and s.commits >= 1, "recovery"
    )
    assert not stats.paused
    assert committed(broker.bootstrap, group, list(ends)) == ends
    sink.stop()
    assert count(client, CALLS_TABLE) == 40


def test_stop_flushes_and_commits_the_last_partial_batch(
    broker: Any,
    layout: TopicLayout,
    client: Any,
    start_sink: Callable[..., RunningSink],
    tmp_path: Path,
) -> None:
    heartbeat = tmp_path / "beats" / "sink.heartbeat"
    records = call_records(layout, batches=3, rows_per_batch=3)
    ends = produce(broker.bootstrap, records)
    group = f"{layout.prefix}-partial"

    sink = start_sink(
        "partial", batch_max_rows=10_000, flush_interval_s=3600.0, heartbeat_path=heartbeat
    )
    stats = wait_for(sink.sink, lambda s: s.records_consumed == len(records), "consumption")
    assert stats.written(CALLS_TABLE) == 0
    assert set(committed(broker.bootstrap, group, list(ends)).values()) == {NO_OFFSET}
    assert time.time() - heartbeat.stat().st_mtime < WAIT_S

    stats = sink.stop()
    assert stats.written(CALLS_TABLE) == 9
    assert count(client, CALLS_TABLE) == 9
    assert committed(broker.bootstrap, group, list(ends)) == ends


def test_a_record_without_rows_is_still_committed(
    broker: Any, layout: TopicLayout, client: Any, start_sink: Callable[..., RunningSink]
) -> None:
    ends = produce(
        broker.bootstrap, [(layout.calls, 1, orjson.dumps({"llmwatch_batch": 1, "events": []}))]
    )
    sink = start_sink("empty")
    wait_for(sink.sink, lambda s: s.commits >= 1, "a commit")
    stats = sink.stop()
    assert stats.batches == 0
    assert committed(broker.bootstrap, f"{layout.prefix}-empty", list(ends)) == ends


def test_large_rows_flush_by_bytes_before_the_row_bound(
    broker: Any, layout: TopicLayout, client: Any, start_sink: Callable[..., RunningSink]
) -> None:
    text_bytes, max_bytes = 300_000, 1_000_000  # the 4th record's bytes reach the bound
    rows = call_rows(7, start=7000)
    for row in rows:
        row["input_text"] = "x" * text_bytes
    ends = produce(broker.bootstrap, [(layout.calls, 0, encode_batch([row])) for row in rows])
    group = f"{layout.prefix}-bytes"

    sink = start_sink(
        "bytes", batch_max_rows=10_000, batch_max_bytes=max_bytes, flush_interval_s=3600.0
    )
    wait_for(sink.sink, lambda s: s.written(CALLS_TABLE) >= 4, "the flush by bytes")
    stats = wait_for(sink.sink, lambda s: s.records_consumed == len(rows), "consumption")
    assert (stats.written(CALLS_TABLE), stats.batches) == (4, 1)
    (position,) = ends.values()
    assert committed(broker.bootstrap, group, list(ends)) == {(layout.calls, 0): position - 3}

    stats = sink.stop()  # the last three records (~0.9 MB) stayed under the bound until now
    assert stats.written(CALLS_TABLE) == len(rows)
    assert count(client, CALLS_TABLE) == len(rows)
    assert committed(broker.bootstrap, group, list(ends)) == ends
