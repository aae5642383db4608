"""Each generated Grafana rule's queries give the burn rates the stream evaluator computes (item "d").

The A and B SQL is taken verbatim from the committed rules file (dashboards/provisioning/alerting/
llmwatch-rules.yaml) and run on chdb, where the migrations created ``llmwatch.llm_calls``. The data are
seven hours of the demo fleet with its incidents (prompt v8 on support-bot, a 429 storm on search-rag,
a code-agent outage), ending a minute ago, sent through the worker's ingest and cost code.

- At ClickHouse's own ``now()``: the rule SQL runs unchanged; T is read just before and after both
  queries of a rule, and a rule is retried when a minute boundary passed in between, so T's minute is
  the one ``now()`` had. The evaluator runs with the production SLO file's lateness.
- At fixed past times: ``now()`` is replaced by T in both queries; the evaluator keeps all buckets
  (a lateness longer than the data) so it can be asked about any T, as it was at T.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest
import yaml
from clickhouse_connect.driver.client import Client

from dashboards.alert_rules import DEFAULT_SLO_PATH, EXPR_UID, RULES_PATH
from dashboards.canary_alerts import GROUP as CANARY_GROUP
from dashboards.quality_alerts import GROUP as QUALITY_GROUP
from producers.simulator import Simulator, demo_scenario
from producers.wire import encode_batch
from sinks.migrate import apply_migrations
from sinks.rows import insert_rows
from sinks.schema import CALL_COLUMNS, CALLS_TABLE, DEFAULT_DATABASE
from streams.analytics.record import RecordAnalytics
from streams.ingest.validate import SourcePosition, ingest_record
from streams.slo.burnrate import BurnRateEvaluator
from streams.slo.config import HOUR_MS, MINUTE_MS, floor_minute, load_slo_file

Json = dict[str, Any]
Key = tuple[str, str]  # (rule uid, "long" | "short")

SEED: Final = 20261126
EVENTS: Final = 40_000
SPAN: Final = timedelta(hours=7)
BATCH: Final = 50
TOPIC: Final = "llmwatch.events"
NOW_SQL: Final = "now()"
ATTEMPTS: Final = 3
PROMPT_INCIDENT_RULES: Final = ("llmwatch_support-bot-latency_", "llmwatch_support-bot-ttft_")
SLO_FILE: Final = load_slo_file(DEFAULT_SLO_PATH)
# The SLO burn-rate rules (the quality group's drop test runs in test_quality_sql.py).
RULES: Final[list[Json]] = [
    rule
    for group in yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))["groups"]
    if group["name"] not in (QUALITY_GROUP, CANARY_GROUP)
    for rule in group["rules"]
]


@dataclass(frozen=True)
class Loaded:
    client: Client
    rows: list[dict[str, Any]]
    start_ms: int


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _rows(start: datetime, end: datetime) -> list[dict[str, Any]]:
    events = list(Simulator(SEED, demo_scenario()).events(EVENTS, start, end))
    analytics = RecordAnalytics()
    rows = []
    for offset, first in enumerate(range(0, len(events), BATCH)):
        batch = events[first : first + BATCH]
        sent = _ms(max(e.end_time for e in batch)) + 50
        record = encode_batch([e.to_wire() for e in batch], sent)
        result = ingest_record(
            record, SourcePosition(TOPIC, 0, offset), record_ms=sent, cost_fn=analytics.cost_fields
        )
        assert not result.dead_letters
        rows += result.rows
    return sorted(rows, key=lambda row: row["end_time"])  # roughly the order the worker sees


@pytest.fixture(scope="module")
def traffic() -> tuple[list[dict[str, Any]], int]:
    """(rows, start ms): simulated once per module, ending a minute before now."""
    end = datetime.now(UTC) - timedelta(minutes=1)
    start = end - SPAN
    rows = _rows(start, end)
    assert max(row["start_time"] for row in rows) < _ms(datetime.now(UTC))
    return rows, _ms(start)


@pytest.fixture()
def loaded(ch_client: Client, traffic: tuple[list[dict[str, Any]], int]) -> Loaded:
    rows, start_ms = traffic
    apply_migrations(ch_client, DEFAULT_DATABASE)  # the rules name llmwatch.llm_calls
    insert_rows(ch_client, DEFAULT_DATABASE, CALLS_TABLE, rows, CALL_COLUMNS)
    replay = rows[::9]  # an at-least-once replay: FINAL must not count these twice
    insert_rows(ch_client, DEFAULT_DATABASE, CALLS_TABLE, replay, CALL_COLUMNS)
    return Loaded(ch_client, rows, start_ms)


def _sql(rule: Json) -> dict[str, str]:
    """``{"long": A's SQL, "short": B's SQL}`` as they appear in the rule."""
    queries = [q for q in rule["data"] if q["datasourceUid"] != EXPR_UID]
    assert [q["refId"] for q in queries] == ["A", "B"]
    return {"long": queries[0]["model"]["rawSql"], "short": queries[1]["model"]["rawSql"]}


def _burn_rate(client: Client, sql: str) -> float:
    ((burn_rate,),) = client.query(sql).result_rows
    return float(burn_rate)


def _server_now_ms(client: Client) -> int:
    ((now_ms,),) = client.query("SELECT toInt64(toUnixTimestamp64Milli(now64(3)))").result_rows
    return int(now_ms)


def _at_server_now(client: Client, rule: Json) -> tuple[int, dict[str, float]]:
    """(T, burn rate per window kind) with both of the rule's queries run within one minute."""
    for _ in range(ATTEMPTS):
        before = _server_now_ms(client)
        burn = {kind: _burn_rate(client, sql) for kind, sql in _sql(rule).items()}
        if floor_minute(_server_now_ms(client)) == floor_minute(before):
            return before, burn
    raise AssertionError(f"could not run rule {rule['uid']} within one minute")


def _at_fixed_time(client: Client, rule: Json, now_ms: int) -> dict[str, float]:
    fixed = f"toDateTime({now_ms // 1000}, 'UTC')"
    burn = {}
    for kind, sql in _sql(rule).items():
        assert sql.count(NOW_SQL) == 1
        burn[kind] = _burn_rate(client, sql.replace(NOW_SQL, fixed))
    return burn


def _stream(evaluator: BurnRateEvaluator, rule: Json, now_ms: int) -> tuple[dict[str, float], bool]:
    """The evaluator's burn rate per window kind of ``rule`` at T, and whether it fires."""
    labels = rule["labels"]
    status = [
        row
        for row in evaluator.status_rows(now_ms)
        if (row["slo"], row["rule"]) == (labels["slo"], labels["rule"])
    ]
    assert len(status) == 2
    return {row["window_kind"]: row["burn_rate"] for row in status}, status[0]["firing"]


def _expected(burn: dict[str, float], rule: Json) -> dict[str, Any]:
    """Ratio burn rates are identical floats; cost sums agree to float rounding (dashboards.slo_sql)."""
    if rule["labels"]["sli"] == "cost":
        return {kind: pytest.approx(value, rel=1e-9, abs=1e-12) for kind, value in burn.items()}
    return burn


def _factor(rule: Json) -> float:
    (math,) = [q for q in rule["data"] if q["refId"] == rule["condition"]]
    return float(math["model"]["expression"].rsplit("> ", 1)[1])


def _fires(burn: dict[str, float], rule: Json) -> bool:
    """The rule's condition on the two values: ``$long_burn > F && $short_burn > F``."""
    return burn["long"] > _factor(rule) and burn["short"] > _factor(rule)


def test_rules_at_clickhouse_now_give_the_stream_burn_rates(loaded: Loaded) -> None:
    evaluator = BurnRateEvaluator(SLO_FILE)
    evaluator.observe_many(loaded.rows)
    assert evaluator.late_events == 0
    sql_burn, stream_burn, sql_firing, stream_firing = {}, {}, set(), set()
    for rule in RULES:
        now_ms, burn = _at_server_now(loaded.client, rule)
        expected, firing = _stream(evaluator, rule, now_ms)
        sql_burn[rule["uid"]], stream_burn[rule["uid"]] = burn, _expected(expected, rule)
        sql_firing |= {rule["uid"]} if _fires(burn, rule) else set()
        stream_firing |= {rule["uid"]} if firing else set()

    assert sql_burn == stream_burn
    assert sql_firing == stream_firing
    # The prompt-v8 incident (4x latency on support-bot since 60% of the run) burns both SLOs.
    assert {uid for uid in sql_firing if uid.startswith(PROMPT_INCIDENT_RULES)}
    assert sum(burn["long"] > 1 for burn in sql_burn.values()) >= 3


@pytest.mark.parametrize(
    ("progress", "fires"),
    [
        (0.48, "llmwatch_search-rag-availability_slow"),  # late in the 429 storm
        (0.8, "llmwatch_support-bot-latency_fast"),  # prompt v8
    ],
)
def test_rules_at_a_fixed_time_give_the_stream_burn_rates(
    loaded: Loaded, progress: float, fires: str
) -> None:
    evaluator = BurnRateEvaluator(SLO_FILE, allowed_lateness_ms=8 * HOUR_MS)  # keeps every bucket
    evaluator.observe_many(loaded.rows)
    now_ms = loaded.start_ms + int(progress * SPAN.total_seconds() * 1000) + 17_345
    assert now_ms % MINUTE_MS  # T inside a minute, not on its boundary
    sql_burn, stream_burn, sql_firing, stream_firing = {}, {}, set(), set()
    for rule in RULES:
        burn = _at_fixed_time(loaded.client, rule, now_ms)
        expected, firing = _stream(evaluator, rule, now_ms)
        sql_burn[rule["uid"]], stream_burn[rule["uid"]] = burn, _expected(expected, rule)
        sql_firing |= {rule["uid"]} if _fires(burn, rule) else set()
        stream_firing |= {rule["uid"]} if firing else set()

    assert sql_burn == stream_burn
    assert sql_firing == stream_firing
    assert fires in sql_firing
