"""Issue 7, item 2, end to end through the worker's per-record path: a stream with firing alerts plus
one event ending in the year 2100 keeps the alerts firing, and the stray event is dead-lettered with
its reason. Records go through the real RecordProcessor (validation, bounds against the record
timestamp) and its rows into the real StreamMonitor with the wall clock, as in the worker.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from producers.wire import encode_batch
from streams.analytics.record import RecordAnalytics
from streams.ingest.pipeline import RecordProcessor
from streams.ingest.validate import SourcePosition
from streams.monitor import StreamMonitor
from streams.slo.config import parse_slo_file

SLOS: Final = """
version: 1
slos:
  - {name: bot-availability, objective: 0.99, sli: {type: availability}, selector: {service: bot}}
"""
# The adversarial value itself (a broken producer clock), not a test clock.
YEAR_2100: Final = datetime.fromisoformat("2100-01-01T00:00:00+00:00")


def _event(start: datetime, end: datetime, ok: bool) -> dict[str, Any]:
    return {
        "start_time": start.isoformat(),
        "end_time": end.isoformat(),
        "service": "bot",
        "provider_name": "openai",
        "request_model": "gpt-4o-mini",
        "input_tokens": 10,
        "output_tokens": 5,
        "status": "ok" if ok else "error",
        **({} if ok else {"error_type": "server_error", "http_status": 500}),
    }


def _burning(now: datetime, n: int = 200) -> list[dict[str, Any]]:
    """Ten minutes up to now, half of them errors: a fast burn of a 99% objective."""
    return [
        _event(
            now - timedelta(minutes=10) + timedelta(seconds=3 * i),
            now - timedelta(minutes=10) + timedelta(seconds=3 * i, milliseconds=400),
            ok=i % 2 == 0,
        )
        for i in range(n)
    ]


def test_firing_alerts_survive_one_event_ending_in_2100_which_is_dead_lettered() -> None:
    now_ms = time.time_ns() // 1_000_000
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    analytics = RecordAnalytics()
    processor = RecordProcessor(analytics)
    monitor = StreamMonitor(analytics, parse_slo_file(SLOS), instance="t", started_ms=now_ms)

    first = processor.process(encode_batch(_burning(now)), SourcePosition("e", 0, 0), now_ms)
    monitor.observe(first.rows)
    fired = [record for _, record in monitor.alerts(now_ms)]
    assert fired and all(b'"state":"firing"' in record for record in fired)
    assert monitor.evaluator is not None
    firing = monitor.evaluator.firing()

    stray = _event(now - timedelta(seconds=1), YEAR_2100, ok=True)
    record = encode_batch([*_burning(now, 20), stray])
    second = processor.process(record, SourcePosition("e", 0, 1), now_ms)
    (dead,) = second.dead_letters
    assert dead.index_in_record == 20
    assert dead.reason.startswith("end_time 2100-01-01") and "clock skew" in dead.reason
    monitor.observe(second.rows)

    assert monitor.alerts(now_ms + 10_000) == []  # no transition: nothing resolved
    assert monitor.evaluator.firing() == firing
    assert monitor.evaluator.stats().watermark_ms is not None
    assert monitor.evaluator.stats().watermark_ms <= now_ms + 60_000
