"""The sink's own health, written to ``llm_pipeline_metrics`` for the pipeline-health dashboard.

Every ``interval_s`` the sink inserts: rows written per table, batches, insert and commit failures,
last and p99 insert latency, dead letters it made, whether it is paused, and the consumer lag per
assigned partition (high watermark - position).

Guarantees: best effort. A failed metrics insert is logged and skipped, never retried and never allowed
to block or fail the data path. Lag accuracy depends on the broker's high watermarks: correct on Apache
Kafka and librdkafka's mock cluster; Tansu 0.6 can over-report after multi-record batches (see
docs/architecture.md, "Broker choice").
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any, Final

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer

from sinks.rows import insert_rows
from sinks.stats import SinkStats
from streams.periodic import PIPELINE_METRIC_FIELDS, PIPELINE_METRICS_TABLE, metric_rows

__all__ = ["DEFAULT_METRICS_INTERVAL_S", "SinkHealthPublisher"]

log = logging.getLogger(__name__)

DEFAULT_METRICS_INTERVAL_S: Final = 10.0
PROCESS: Final = "sink"

Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _stats_metrics(stats: SinkStats) -> Metrics:
    metrics: Metrics = {
        ("records_consumed", ()): stats.records_consumed,
        ("batches", ()): stats.batches,
        ("insert_failures", ()): stats.insert_failures,
        ("commit_failures", ()): stats.commit_failures,
        ("sink_dead_letters", ()): stats.dead_letters,
        ("paused", ()): float(stats.paused),
    }
    for table, rows in stats.rows_written.items():
        metrics[("rows_written", (("table", table),))] = rows
    # The sink times inserts across all tables; "table" is the dashboard's grouping label.
    if stats.last_insert_ms is not None:
        metrics[("insert_latency_ms", (("stat", "last"), ("table", "all")))] = stats.last_insert_ms
    if stats.p99_insert_ms is not None:
        metrics[("insert_latency_ms", (("stat", "p99"), ("table", "all")))] = stats.p99_insert_ms
    return metrics


def _lag_metrics(consumer: Consumer) -> Metrics:
    metrics: Metrics = {}
    try:
        assignment = consumer.assignment()
        positions = consumer.position(assignment) if assignment else []
    except Exception as exc:  # the data path must not fail for a metric
        log.debug("no consumer positions for lag: %s", exc)
        return metrics
    for tp in positions:
        try:
            # Cached: the high watermark from the last fetch response, without a broker round trip
            # (a synchronous ListOffsets per partition would stall the sink's loop).
            _, high = consumer.get_watermark_offsets(tp, cached=True)
        except Exception as exc:
            log.debug("no watermark for %s[%d]: %s", tp.topic, tp.partition, exc)
            continue
        if tp.offset >= 0 and high >= 0:
            labels = (("topic", tp.topic), ("partition", str(tp.partition)))
            metrics[("consumer_lag", labels)] = max(high - tp.offset, 0)
    return metrics


class SinkHealthPublisher:
    def __init__(
        self, client: Client, database: str, interval_s: float = DEFAULT_METRICS_INTERVAL_S
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self._client = client
        self._database = database
        self._interval_s = interval_s
        self._instance = f"{socket.gethostname()}:{os.getpid()}"
        self._started_ms = time.time_ns() // 1_000_000
        self._next = time.monotonic() + interval_s

    def maybe_publish(self, consumer: Consumer, stats: SinkStats) -> bool:
        """Publish if the interval has passed; returns whether it published."""
        if time.monotonic() < self._next:
            return False
        self._next = time.monotonic() + self._interval_s
        self.publish(consumer, stats)
        return True

    def publish(self, consumer: Consumer, stats: SinkStats) -> None:
        now_ms = time.time_ns() // 1_000_000
        metrics = {**_stats_metrics(stats), **_lag_metrics(consumer)}
        rows: list[dict[str, Any]] = metric_rows(
            PROCESS, self._instance, self._started_ms, now_ms, metrics
        )
        try:
            insert_rows(
                self._client, self._database, PIPELINE_METRICS_TABLE, rows, PIPELINE_METRIC_FIELDS
            )
        except Exception as exc:
            log.warning("could not write sink metrics (skipped): %s", exc)
