"""Realistic llmwatch data in a fresh database, for running the dashboards' queries on chdb.

The calls come from the traffic simulator and go through the worker's real per-record code
(``streams.ingest.validate.ingest_record`` with ``RecordAnalytics`` cost, then the rollups), and are inserted
with the sink's own ``insert_rows``. Dead letters come from ``ingest_record`` rejecting bad records.
Pipeline metrics, top-user snapshots and (once migration 0005 exists) SLO status and alert rows are
synthesized in the shapes their producers document. Everything is deterministic except that times are
relative to ``end`` (callers pass "now" so the tables' TTLs never expire the data).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from producers.simulator import Simulator, demo_scenario
from producers.wire import encode_batch
from sinks.migrate import apply_migrations
from sinks.rows import insert_rows
from streams.analytics.record import RecordAnalytics
from streams.analytics.rollups import (
    ROLLUP_1M_FIELDS,
    ROLLUP_TABLE,
    TENANT_COST_1M_FIELDS,
    TENANT_COST_TABLE,
    USER_COST_1H_FIELDS,
    USER_COST_TABLE,
)
from streams.ingest.records import CALL_FIELDS, DLQ_FIELDS
from streams.ingest.validate import SourcePosition, ingest_record
from tests.unit.dashboards import seed_drift, seed_guardrails, seed_prompts, seed_quality, seed_slo

__all__ = ["EVENTS", "RANGE", "SEED", "Seeded", "seed_database"]

SEED: Final = 7
EVENTS: Final = 3_000
RANGE: Final = timedelta(hours=2)
BATCH: Final = 25
PARTITIONS: Final = 3
TOPIC: Final = "llmwatch.events"
METRIC_STEP_S: Final = 15
INSTANCES: Final = {0: "worker-0", 1: "worker-0", 2: "worker-1"}
TOP_K: Final = 10
BAD_RECORDS: Final = (
    b"not json at all",
    b'{"llmwatch_batch": 1, "sent_at_ms": 1, "events": [{"service": "x"}]}',
    b'{"llmwatch_batch": 9, "events": []}',
    b"",
)
INGESTED_AT: Final = "ingested_at"


@dataclass
class Seeded:
    """What was inserted, per table (row counts), and the window it covers."""

    start: datetime
    end: datetime
    counts: dict[str, int] = field(default_factory=dict)


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _records(start: datetime, end: datetime) -> Iterator[tuple[bytes, SourcePosition, int]]:
    """(batch record, its position, sent_at ms) for the simulated events, in time order."""
    events = list(Simulator(SEED, demo_scenario()).events(EVENTS, start, end))
    for offset, first in enumerate(range(0, len(events), BATCH)):
        batch = events[first : first + BATCH]
        sent = _ms(max(e.end_time for e in batch)) + 80
        position = SourcePosition(TOPIC, offset % PARTITIONS, offset // PARTITIONS)
        yield encode_batch([e.to_wire() for e in batch], sent), position, sent


def _insert(client: Client, database: str, table: str, rows: Sequence[dict[str, Any]]) -> int:
    columns = list(rows[0]) if rows else []
    return insert_rows(client, database, table, rows, columns)


def _stamped(rows: list[dict[str, Any]], fields: Sequence[str], at: int) -> list[dict[str, Any]]:
    return [{**{k: row[k] for k in fields}, INGESTED_AT: at} for row in rows]


def _calls(
    client: Client, database: str, start: datetime, end: datetime, seeded: Seeded
) -> list[dict[str, Any]]:
    analytics = RecordAnalytics()
    rng = random.Random(SEED)
    tables: dict[str, list[dict[str, Any]]] = {
        "llm_calls": [],
        ROLLUP_TABLE: [],
        TENANT_COST_TABLE: [],
        USER_COST_TABLE: [],
    }
    for value, position, sent in _records(start, end):
        result = ingest_record(value, position, record_ms=sent, cost_fn=analytics.cost_fields)
        ingested = sent + rng.randint(150, 2_500)
        record = analytics.rollups(result.rows, position)
        tables["llm_calls"] += _stamped(result.rows, CALL_FIELDS, ingested)
        tables[ROLLUP_TABLE] += _stamped(record.rollup_1m, ROLLUP_1M_FIELDS, ingested)
        tables[TENANT_COST_TABLE] += _stamped(
            record.tenant_cost_1m, TENANT_COST_1M_FIELDS, ingested
        )
        tables[USER_COST_TABLE] += _stamped(record.user_cost_1h, USER_COST_1H_FIELDS, ingested)
    for table, rows in tables.items():
        seeded.counts[table] = _insert(client, database, table, rows)
    return tables["llm_calls"]


def _dead_letters(start: datetime, end: datetime) -> list[dict[str, Any]]:
    rows = []
    step = (end - start) / 13
    for index in range(12):
        bad = BAD_RECORDS[index % len(BAD_RECORDS)]
        at = _ms(start + step * (index + 1))
        result = ingest_record(
            bad, SourcePosition(TOPIC, index % PARTITIONS, 10_000 + index), record_ms=at
        )
        rows += [{k: d.to_row()[k] for k in DLQ_FIELDS} for d in result.dead_letters]
    return rows


def _metric(
    ts: int,
    process: str,
    instance: str,
    started: int,
    metric: str,
    labels: dict[str, str],
    value: float,
) -> dict[str, Any]:
    return {
        "ts": ts,
        "process": process,
        "instance": instance,
        "process_start": started,
        "metric": metric,
        "labels": labels,
        "value": value,
    }


def _pipeline_metrics(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Sink gauges (lag per partition, insert latency per table) and a cumulative failure counter
    with one restart half-way (the counter starts again from 0 under a new process_start)."""
    rng = random.Random(SEED + 1)
    rows = []
    first_start, restart = _ms(start - timedelta(hours=1)), _ms(start + (end - start) / 2)
    failures = 0
    for tick in range(int((end - start).total_seconds()) // METRIC_STEP_S):
        ts = _ms(start) + tick * METRIC_STEP_S * 1000
        if ts - METRIC_STEP_S * 1000 < restart <= ts:
            failures = 0  # the new process counts from 0
        started = first_start if ts < restart else restart
        for partition in range(PARTITIONS):
            lag = rng.randint(0, 40) + (400 if 200 <= tick < 210 else 0)
            rows.append(
                _metric(
                    ts,
                    "sink",
                    "sink-0",
                    started,
                    "consumer_lag",
                    {"topic": "llmwatch.calls", "partition": str(partition)},
                    lag,
                )
            )
        for table in ("llm_calls", "llm_rollup_1m"):
            rows.append(
                _metric(
                    ts,
                    "sink",
                    "sink-0",
                    started,
                    "insert_latency_ms",
                    {"table": table},
                    rng.uniform(5, 60),
                )
            )
        failures += rng.random() < 0.05
        rows.append(_metric(ts, "sink", "sink-0", started, "insert_failures", {}, failures))
    return rows


def _top_users(calls: list[dict[str, Any]], end: datetime) -> list[dict[str, Any]]:
    """Per-minute top-K snapshots over the trailing hour, one per worker instance."""
    rows = []
    for minutes_ago in range(30, -1, -1):
        snapshot = _ms(end) - minutes_ago * 60_000 - 60_000
        per_instance: dict[str, dict[tuple[str, str], list[float]]] = defaultdict(dict)
        for call in calls:
            if call["user_id"] and snapshot - 3_600_000 <= call["start_time"] < snapshot:
                acc = per_instance[INSTANCES[call["source_partition"]]].setdefault(
                    (call["tenant_id"], call["user_id"]), [0.0, 0]
                )
                acc[0] += call["cost_usd"] or 0.0
                acc[1] += 1
        for instance, users in sorted(per_instance.items()):
            ranked = sorted(users.items(), key=lambda kv: (-kv[1][0], kv[0]))[:TOP_K]
            for rank, ((tenant, user), (cost, requests)) in enumerate(ranked, start=1):
                rows.append(
                    {
                        "snapshot_minute": snapshot,
                        "instance": instance,
                        "rank": rank,
                        "tenant_id": tenant,
                        "user_id": user,
                        "cost_usd": cost,
                        "requests": int(requests),
                        "error_bound_usd": cost * 0.02,
                    }
                )
    return rows


def seed_database(client: Client, end: datetime, database: str = "llmwatch") -> Seeded:
    """Apply the migrations to ``database`` and fill every table the dashboards read."""
    apply_migrations(client, database)
    start = end - RANGE
    seeded = Seeded(start=start, end=end)
    calls = _calls(client, database, start, end, seeded)
    seeded.counts["llm_dlq"] = _insert(client, database, "llm_dlq", _dead_letters(start, end))
    seeded.counts["llm_pipeline_metrics"] = _insert(
        client, database, "llm_pipeline_metrics", _pipeline_metrics(start, end)
    )
    seeded.counts["llm_top_users"] = _insert(
        client, database, "llm_top_users", _top_users(calls, end)
    )
    seeded.counts.update(seed_slo.seed_slo_tables(client, database, calls, start, end))
    seeded.counts.update(seed_guardrails.seed_guardrail_tables(client, database, start, end))
    seeded.counts.update(seed_quality.seed_quality_tables(client, database, start, end))
    seeded.counts.update(seed_prompts.seed_prompt_tables(client, database, start, end).counts)
    seeded.counts.update(seed_drift.seed_drift_tables(client, database, start, end).counts)
    return seeded
