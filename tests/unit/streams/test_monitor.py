"""The worker's timed outputs: SLO alerts, lifecycle alerts (once), metrics and top-K snapshots."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from producers.wire import encode_batch
from streams.analytics.record import RecordAnalytics
from streams.analytics.rollups import RecordRollups, encode_rollups
from streams.ingest.validate import SourcePosition, ingest_record
from streams.monitor import StreamMonitor
from streams.monitor_records import (
    MONITOR_FIELDS,
    MonitorRecord,
    decode_monitor_record,
    encode_monitor_record,
)
from streams.periodic import (
    LIFECYCLE_SLO,
    PIPELINE_METRICS_TABLE,
    TOP_USERS_TABLE,
    decode_snapshot,
    encode_snapshot,
)
from streams.slo.alerts import decode_alerts_record
from streams.slo.config import parse_slo_file
from tests.clock import Clock, to_ms

NOW = Clock.read().ago()  # the run's clock on a whole minute; events end just before it
NOW_MS = to_ms(NOW)
SLOS = """
version: 1
slos:
  - name: bot-availability
    objective: 0.99
    sli: {type: availability}
    selector: {service: bot}
"""


def rows(n: int, **fields: object) -> list[dict[str, object]]:
    events = []
    for i in range(n):
        start = NOW - timedelta(seconds=n - i)
        event = {
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(milliseconds=500)).isoformat(),
            "service": "bot",
            "provider_name": "openai",
            "request_model": "gpt-4o-mini",
            "user_id": f"u{i % 4}",
            "input_tokens": 100,
            "output_tokens": 10,
        }
        event.update(fields)
        events.append(event)
    analytics = RecordAnalytics()
    return ingest_record(
        encode_batch(events),
        SourcePosition("e", 0, 1),
        record_ms=NOW_MS,
        cost_fn=analytics.cost_fields,
    ).rows


@pytest.fixture()
def monitor() -> StreamMonitor:
    return StreamMonitor(
        RecordAnalytics(),
        parse_slo_file(SLOS),
        instance="test",
        started_ms=NOW_MS - 1000,
        clock=lambda: NOW_MS,
    )


def test_burning_slo_fires_one_alert(monitor: StreamMonitor) -> None:
    monitor.observe(rows(50) + rows(50, http_status=500))
    alerts = [decode_alerts_record(record) for _, record in monitor.alerts(NOW_MS)]
    fired = {(a["llm_alerts"][0]["slo"], a["llm_alerts"][0]["rule"]) for a in alerts}
    assert ("bot-availability", "fast") in fired
    assert monitor.alerts(NOW_MS) == []  # transitions only


def _monitor_record(batch: list[dict[str, object]], offset: int) -> MonitorRecord:
    """What a worker sends the monitor for one record (flagged calls from its own analytics)."""
    analytics = RecordAnalytics()
    analytics.rollups(batch, SourcePosition("e", 0, offset))
    value = encode_monitor_record(batch, SourcePosition("e", 0, offset), analytics.flagged_models)
    return decode_monitor_record(value)


def test_deprecated_model_alerts_once(monitor: StreamMonitor) -> None:
    # Two workers' records: the flagged calls add up, and the alert is sent once.
    assert monitor.observe_record(_monitor_record(rows(3, request_model="gpt-4-32k"), 5))
    assert monitor.observe_record(_monitor_record(rows(2, request_model="gpt-4-32k"), 6))
    assert not monitor.observe_record(_monitor_record(rows(2, request_model="gpt-4-32k"), 6))
    assert monitor.flagged_models == {("openai", "gpt-4-32k", "retired"): 5}
    first = [orjson.loads(r) for _, r in monitor.alerts(NOW_MS) if b"model-lifecycle" in r]
    assert len(first) == 1 and first[0]["slo"] == LIFECYCLE_SLO
    assert first[0]["severity"] == "page" and "gpt-4-32k" in first[0]["description"]
    assert [r for _, r in monitor.alerts(NOW_MS) if b"model-lifecycle" in r] == []


def test_snapshot_carries_metrics_and_top_users(monitor: StreamMonitor) -> None:
    batch = rows(40)
    monitor.counters.count(len(batch), 2, {"EMAIL": 3})
    monitor.observe(batch)
    tables = decode_snapshot(monitor.snapshot(NOW_MS))
    metrics = {
        (m["metric"], tuple(sorted(m["labels"].items()))): m["value"]
        for m in tables[PIPELINE_METRICS_TABLE]
    }
    assert metrics[("events_valid", ())] == 40
    assert metrics[("dead_letters", ())] == 2
    assert metrics[("redactions", (("kind", "EMAIL"),))] == 3
    users = tables[TOP_USERS_TABLE]
    assert [u["rank"] for u in users] == [1, 2, 3, 4]
    assert all(u["requests"] == 10 for u in users)


def test_status_rows_are_published_for_each_rule(monitor: StreamMonitor) -> None:
    monitor.observe(rows(10))
    status = monitor.status(NOW_MS)
    assert status is not None
    decoded = decode_alerts_record(status)["llm_slo_status"]
    assert {r["slo"] for r in decoded} == {"bot-availability"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"", "empty"),
        (b"[]", "marker None"),
        (encode_snapshot({})[:-1], "not JSON"),
        (encode_rollups(RecordRollups([], [])), "expected a snapshot record, got kind 'rollups'"),
    ],
)
def test_bad_tables_records_are_named(value: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_snapshot(value)


def test_no_slo_file_means_no_evaluator() -> None:
    monitor = StreamMonitor(RecordAnalytics(), None, instance="x", started_ms=0)
    assert monitor.status(NOW_MS) is None and monitor.alerts(NOW_MS) == []


def test_monitor_records_round_trip_and_bad_ones_are_named() -> None:
    batch = rows(4)
    record = decode_monitor_record(
        encode_monitor_record(batch, SourcePosition("e", 2, 9), {("p", "m", "deprecated"): 4})
    )
    assert record.source == SourcePosition("e", 2, 9)
    assert record.flagged == {("p", "m", "deprecated"): 4}
    assert [r["user_id"] for r in record.rows] == [r["user_id"] for r in batch]
    assert all(set(r) == set(MONITOR_FIELDS) for r in record.rows)
    with pytest.raises(ValueError, match="not JSON"):
        decode_monitor_record(b"{oops")
    with pytest.raises(ValueError, match=r"source must be \[topic, partition, offset\]"):
        decode_monitor_record(b'{"v": 1, "source": ["e", -1, 0], "columns": {}}')
    with pytest.raises(ValueError, match="needs the columns"):
        decode_monitor_record(b'{"v": 1, "source": ["e", 1, 0], "columns": {"x": []}}')


def test_reset_forgets_all_but_the_instance_counters(monitor: StreamMonitor) -> None:
    monitor.counters.count(3, 1, {})
    assert monitor.observe(rows(10, http_status=500), SourcePosition("e", 0, 3))
    monitor.reset()
    assert monitor.top_users.top(5) == [] and monitor.flagged_models == {}
    assert monitor.evaluator is not None and monitor.evaluator.stats().observed == 0
    assert monitor.observe(rows(1), SourcePosition("e", 0, 3))  # offsets forgotten too
    assert monitor.counters.records == 1
