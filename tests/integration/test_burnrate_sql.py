"""The SQL of ``dashboards.slo_sql`` on llm_calls (chdb) gives the stream evaluator's windows and burn rates.

This is what lets the Grafana alert rules, generated from the same SLO file, reproduce the stream.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any, Final

import pytest

from dashboards import slo_sql
from producers.events import LlmCallEvent, SpanKind
from sinks.migrate import apply_migrations
from sinks.rows import insert_rows
from sinks.schema import CALL_COLUMNS, CALLS_TABLE, DEFAULT_DATABASE
from streams.ingest.validate import CostFields, SourcePosition, to_call_row
from streams.slo.alerts import ALERT_FIELDS, ALERTS_TABLE, SLO_STATUS_FIELDS, SLO_STATUS_TABLE
from streams.slo.burnrate import BurnRateEvaluator
from streams.slo.config import MINUTE_MS, SloFile, floor_minute, parse_slo_file
from tests.clock import HOUR, Clock, to_ms

HOURS: Final = 7
EVENTS: Final = 4_000
# The traffic starts on a whole hour two days ago (inside every TTL); the last call ends at this offset.
START_AGO: Final = timedelta(days=2)
WATERMARK_AFTER_START: Final = timedelta(hours=HOURS, minutes=2, seconds=12, milliseconds=345)
SLOS: Final = """
version: 1
defaults:
  rules:
    - {name: fast, long_window: 1h, short_window: 5m, burn_rate: 14.4, severity: page}
    - {name: slow, long_window: 6h, short_window: 30m, burn_rate: 6, severity: ticket}
    - {name: odd, long_window: 97m, short_window: 1m, burn_rate: 2, severity: ticket}
slos:
  - {name: bot-latency, objective: 0.95, sli: {type: latency, threshold_ms: 1500.5},
     selector: {service: bot, environment: production}}
  - {name: bot-availability, objective: 0.99, sli: {type: availability}, selector: {service: bot}}
  - {name: ttft-all, objective: 0.9, sli: {type: ttft, threshold_ms: 300}, selector: {span_kind: null}}
  - {name: gpt-4o-availability, objective: 0.995, sli: {type: availability},
     selector: {provider: openai, model: gpt-4o}}
  - {name: rag-cost, sli: {type: cost, usd_per_hour: 0.75}, selector: {service: rag, span_kind: null}}
  - {name: tenant-cost, sli: {type: cost, usd_per_hour: 0.2}, selector: {tenant: "o'hare"}}
"""
# (request_model, response_model): the model selector falls back to the response model.
MODELS: Final = [("gpt-4o", "gpt-4o-2024-08-06"), ("", "gpt-4o"), ("gpt-4o-mini", ""), ("", "")]


def _event(rng: random.Random, index: int, traffic_start: datetime) -> LlmCallEvent:
    start = traffic_start + timedelta(milliseconds=rng.randrange(HOURS * 3_600_000))
    if index % 97 == 0:  # some calls start exactly on a minute boundary
        start = start.replace(second=0, microsecond=0)
    duration = timedelta(milliseconds=rng.lognormvariate(6.5, 0.8))
    request_model, response_model = rng.choice(MODELS)
    failed = rng.random() < 0.04
    return LlmCallEvent(
        event_id=f"evt-{index:06d}",
        start_time=start,
        end_time=start + duration,
        service=rng.choice(["bot", "rag"]),
        environment=rng.choice(["production", "production", "staging"]),
        tenant_id=rng.choice(["o'hare", "acme", None]),
        span_kind=rng.choice([SpanKind.LLM, SpanKind.LLM, SpanKind.LLM, SpanKind.TOOL]),
        provider_name=rng.choice(["openai", "anthropic"]),
        request_model=request_model or None,
        response_model=response_model or None,
        time_to_first_token_ms=rng.choice([None, duration.total_seconds() * 1000 * rng.random()]),
        http_status=rng.choice([429, 500, 504]) if failed else 200,
        input_tokens=rng.randrange(10, 2_000),
        output_tokens=rng.randrange(1, 500),
    )


def _boundary_events(watermark: datetime) -> list[LlmCallEvent]:
    """Failing calls exactly on, and 1 ms before, the first bucket of every window at ``watermark``."""
    floor = watermark.replace(second=0, microsecond=0)
    events = []
    for minutes in (1, 5, 30, 60, 97, 360):
        first_bucket = floor - timedelta(minutes=minutes - 1)
        for start in (first_bucket, first_bucket - timedelta(milliseconds=1)):
            events.append(
                LlmCallEvent(
                    event_id=f"edge-{minutes}-{start.isoformat()}",
                    start_time=start,
                    end_time=start + timedelta(seconds=2),
                    service="bot",
                    environment="production",
                    tenant_id="o'hare",
                    provider_name="openai",
                    request_model="gpt-4o",
                    time_to_first_token_ms=1_000.0,
                    http_status=503,
                )
            )
    last = watermark - timedelta(seconds=1)  # the last call to end sets the watermark
    events.append(LlmCallEvent(start_time=last, end_time=watermark, service="clock"))
    return events


def _rows(traffic_start: datetime) -> list[dict[str, Any]]:
    rng = random.Random(20261102)
    events = [_event(rng, index, traffic_start) for index in range(EVENTS)]
    events += _boundary_events(traffic_start + WATERMARK_AFTER_START)
    rows = []
    for index, event in enumerate(events):
        cost = None if rng.random() < 0.1 else rng.uniform(0.0, 0.002)
        rows.append(
            to_call_row(
                event,
                SourcePosition("t.events", 0, index),
                sent_at_ms=None,
                cost=CostFields(cost, cost, "genai-prices" if cost is not None else ""),
            )
        )
    return sorted(rows, key=lambda row: row["start_time"])


@pytest.fixture()
def traffic_start(clock: Clock) -> datetime:
    return clock.ago(days=START_AGO.days, step=HOUR)


@pytest.fixture()
def loaded(ch_client: Any, traffic_start: datetime) -> tuple[Any, str, SloFile, BurnRateEvaluator]:
    database = f"slo_{uuid.uuid4().hex[:10]}"
    apply_migrations(ch_client, database)
    rows = _rows(traffic_start)
    insert_rows(ch_client, database, CALLS_TABLE, rows, CALL_COLUMNS)
    insert_rows(
        ch_client, database, CALLS_TABLE, rows[::7], CALL_COLUMNS
    )  # an at-least-once replay
    slo_file = parse_slo_file(SLOS)
    evaluator = BurnRateEvaluator(slo_file)
    evaluator.observe_many(rows)
    assert evaluator.late_events == 0
    return ch_client, database, slo_file, evaluator


def test_sql_names_match_the_sink_schema() -> None:
    assert (slo_sql.CALLS_TABLE, slo_sql.DEFAULT_DATABASE) == (CALLS_TABLE, DEFAULT_DATABASE)


@pytest.mark.parametrize("when", ["watermark", "minute-boundary", "behind-watermark"])
def test_sql_reproduces_the_stream_windows(
    loaded: tuple[Any, str, SloFile, BurnRateEvaluator], traffic_start: datetime, when: str
) -> None:
    client, database, slo_file, evaluator = loaded
    watermark = evaluator.watermark_ms
    assert watermark == to_ms(traffic_start + WATERMARK_AFTER_START)
    if when == "minute-boundary":
        now = floor_minute(watermark)
    elif when == "behind-watermark":
        now = watermark - 90_000  # buckets after T are held but outside every window
    else:
        now = watermark
    slos = {slo.name: slo for slo in slo_file.slos}
    counts_sql, counts_stream, burn_sql, burn_stream, spent_sql, spent_stream = (
        {} for _ in range(6)
    )
    for status in evaluator.status_rows(now):
        key = (status["slo"], status["window"])
        sql = slo_sql.burn_rate_sql(slos[status["slo"]], status["window_ms"], now, database)
        good, total, spent, unpriced, burn = client.query(sql).result_rows[0]
        counts_sql[key] = (good, total, unpriced)
        counts_stream[key] = (status["good"], status["total"], status["unpriced"])
        burn_sql[key], spent_sql[key] = burn, spent
        burn_stream[key], spent_stream[key] = status["burn_rate"], status["spent_usd"]
    cost_keys = {key for key in burn_stream if slos[key[0]].sli.type == "cost"}

    assert len(counts_stream) == 4 * 3 * 2 + 2 * 1 * 2  # (SLO, rule, window); cost SLOs: 1 rule
    assert all(total > 0 for (_, window), (_, total, _) in counts_stream.items() if window != "1m")
    assert counts_sql == counts_stream
    # Ratio burn rates are identical floats; cost sums agree to float rounding.
    assert burn_sql == {
        key: pytest.approx(burn, rel=1e-9) if key in cost_keys else burn
        for key, burn in burn_stream.items()
    }
    assert spent_sql == {key: pytest.approx(spent, rel=1e-9) for key, spent in spent_stream.items()}


def test_alert_and_status_rows_are_stored_once(
    loaded: tuple[Any, str, SloFile, BurnRateEvaluator],
) -> None:
    client, database, _, evaluator = loaded
    fired = evaluator.evaluate()
    assert fired, "the synthetic traffic burns at least one budget"
    status = evaluator.status_rows()
    for _ in range(2):  # a re-sent batch must not duplicate rows
        insert_rows(client, database, ALERTS_TABLE, [e.to_row() for e in fired], ALERT_FIELDS)
        insert_rows(client, database, SLO_STATUS_TABLE, status, SLO_STATUS_FIELDS)
    resolved = evaluator.evaluate(evaluator.watermark_ms + 24 * 60 * MINUTE_MS)  # type: ignore[operator]
    insert_rows(client, database, ALERTS_TABLE, [e.to_row() for e in resolved], ALERT_FIELDS)

    alerts = client.query(
        f"SELECT state, count() FROM {database}.{ALERTS_TABLE} FINAL GROUP BY state ORDER BY state"
    ).result_rows
    open_alerts = client.command(
        f"SELECT count() FROM {database}.{ALERTS_TABLE} FINAL WHERE state = 'firing' AND alert_id "
        f"NOT IN (SELECT alert_id FROM {database}.{ALERTS_TABLE} FINAL WHERE state = 'resolved')"
    )
    stored_status = client.command(f"SELECT count() FROM {database}.{SLO_STATUS_TABLE} FINAL")
    assert alerts == [("firing", len(fired)), ("resolved", len(fired))]
    assert int(open_alerts) == 0
    assert int(stored_status) == len(status)
