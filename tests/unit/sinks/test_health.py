"""The sink's health metrics land in llm_pipeline_metrics; a failing insert never raises."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from confluent_kafka import Consumer

from sinks.health import SinkHealthPublisher
from sinks.migrate import apply_migrations
from sinks.stats import SinkStats

DB = "health_test"


def _consumer() -> Consumer:
    # Never connects: no broker is needed for an empty assignment.
    return Consumer({"bootstrap.servers": "127.0.0.1:1", "group.id": "health-test"})


def test_publish_writes_stats_rows(ch_client: Any) -> None:
    apply_migrations(ch_client, DB)
    stats = SinkStats(
        records_consumed=7,
        rows_written=MappingProxyType({"llm_calls": 70}),
        insert_failures=2,
        last_insert_ms=12.5,
        p99_insert_ms=40.0,
    )
    consumer = _consumer()
    try:
        SinkHealthPublisher(ch_client, DB).publish(consumer, stats)
    finally:
        consumer.close()
    rows = ch_client.query(
        f"SELECT metric, labels, value FROM {DB}.llm_pipeline_metrics WHERE process = 'sink'"
    ).result_rows
    found = {(m, tuple(sorted(labels.items()))): v for m, labels, v in rows}
    assert found[("rows_written", (("table", "llm_calls"),))] == 70
    assert found[("insert_failures", ())] == 2
    assert found[("insert_latency_ms", (("stat", "p99"), ("table", "all")))] == 40.0


def test_a_failed_metrics_insert_is_skipped(ch_client: Any) -> None:
    consumer = _consumer()
    try:
        # The database has no tables: the insert fails, and publish() must not raise.
        SinkHealthPublisher(ch_client, "no_such_db").publish(consumer, SinkStats())
    finally:
        consumer.close()
    assert ch_client.query("SELECT 1").result_rows == [(1,)]
