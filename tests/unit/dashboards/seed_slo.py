"""SLO status and alert rows for the dashboards' tests, from the stream's real burn-rate evaluator.

The seeded calls are replayed in end-time order through ``streams.slo.burnrate.BurnRateEvaluator`` with the
project's ``config/slos.yaml`` plus one test-only SLO whose cost budget is tiny, so at least one alert
fires and stays firing at the end of the range (the demo SLOs are sized for ~50 events/s and the
seed has far fewer). Status rows are published once per minute, as the worker does.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Final

import yaml
from clickhouse_connect.driver.client import Client

from sinks.rows import insert_rows
from streams.slo.alerts import ALERT_FIELDS, ALERTS_TABLE, SLO_STATUS_FIELDS, SLO_STATUS_TABLE
from streams.slo.burnrate import BurnRateEvaluator
from streams.slo.config import MINUTE_MS, parse_slo_file

__all__ = ["ALWAYS_FIRING_SLO", "SLO_FILE", "seed_slo_tables"]

SLO_FILE: Final = Path(__file__).resolve().parents[3] / "config" / "slos.yaml"
ALWAYS_FIRING_SLO: Final = "test-tiny-budget"
_TINY_BUDGET: Final = {
    "name": ALWAYS_FIRING_SLO,
    "description": "Test only: a budget every seeded minute exceeds.",
    "sli": {"type": "cost", "usd_per_hour": 0.0001},
    "selector": {"span_kind": None},
    "runbook": "Nothing to do: test data.",
}


def _slo_file_text() -> str:
    doc = yaml.safe_load(SLO_FILE.read_text(encoding="utf-8"))
    doc["slos"].append(_TINY_BUDGET)
    return yaml.safe_dump(doc)


def seed_slo_tables(
    client: Client, database: str, calls: list[dict[str, Any]], start: datetime, end: datetime
) -> dict[str, int]:
    """Evaluate every minute of ``[start, end]``; insert the status rows and alert transitions."""
    evaluator = BurnRateEvaluator(parse_slo_file(_slo_file_text(), str(SLO_FILE)))
    ordered = sorted(calls, key=lambda row: row["end_time"])
    status: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    index = 0
    first = int(start.timestamp() * 1000) // MINUTE_MS * MINUTE_MS + MINUTE_MS
    for now in range(first, int(end.timestamp() * 1000) + 1, MINUTE_MS):
        while index < len(ordered) and ordered[index]["end_time"] <= now:
            evaluator.observe(ordered[index])
            index += 1
        alerts += [event.to_row() for event in evaluator.evaluate(now)]
        status += evaluator.status_rows(now)
    insert_rows(client, database, SLO_STATUS_TABLE, status, SLO_STATUS_FIELDS)
    insert_rows(client, database, ALERTS_TABLE, alerts, ALERT_FIELDS)
    return {SLO_STATUS_TABLE: len(status), ALERTS_TABLE: len(alerts)}
