"""Two sinks in one group: in-flight rows of revoked partitions are dropped and re-read, not lost."""

from __future__ import annotations

from typing import Any

from sinks.schema import CALLS_TABLE, qualified
from sinks.writer import ClickHouseSink, SinkConfig
from streams.topics import TopicLayout
from tests.integration.test_sink_writer import (
    DB,
    RunningSink,
    call_records,
    committed,
    count,
    produce,
    wait_for,
)


def _start(broker: Any, layout: TopicLayout, client: Any, group: str) -> RunningSink:
    config = SinkConfig(
        bootstrap=broker.bootstrap,
        layout=layout,
        group_id=group,
        database=DB,
        batch_max_rows=1_000,
        flush_interval_s=0.2,
        retry_initial_s=0.05,
        retry_max_s=0.2,
    )
    running = RunningSink(ClickHouseSink(config, client))
    running.thread.start()
    return running


def test_revoked_in_flight_rows_are_dropped_and_re_read_by_the_new_owner(
    broker: Any, layout: TopicLayout, client: Any
) -> None:
    parked = qualified("llm_calls_parked", DB)
    client.command(f"RENAME TABLE {qualified(CALLS_TABLE, DB)} TO {parked}")
    records = call_records(layout, batches=8, rows_per_batch=5)
    ends = produce(broker.bootstrap, records)
    group = f"{layout.prefix}-shared"

    first = _start(broker, layout, client, group)
    second: RunningSink | None = None
    try:
        wait_for(first.sink, lambda s: s.records_consumed == len(records) and s.paused, "backlog")
        second = _start(broker, layout, client, group)
        stats = wait_for(first.sink, lambda s: s.rows_dropped_on_revoke > 0, "a revocation")
        assert stats.written(CALLS_TABLE) == 0
        wait_for(second.sink, lambda s: s.records_consumed > 0, "the second sink's share")

        client.command(f"RENAME TABLE {parked} TO {qualified(CALLS_TABLE, DB)}")
        for sink in (first, second):
            wait_for(sink.sink, lambda s: not s.paused and s.written(CALLS_TABLE) > 0, "inserts")
        wait_for(
            first.sink, lambda s: committed(broker.bootstrap, group, list(ends)) == ends, "commits"
        )
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert count(client, CALLS_TABLE) == 40
