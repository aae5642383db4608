"""ClickHouse reads for the scale-out tests: what a run stored, as the dashboards read it.

- :func:`read_tables` reads the calls (FINAL), the rollup sums by dimensions and the merged DDSketch
  quantiles, the tenant and user cost tables; :func:`panel_top_users` runs the cost dashboard's
  top-users panel's own SQL on a run's database; so two runs can be compared (:func:`differences`).
- :func:`read_slo` reads the SLO status rows of one snapshot (``llm_slo_status`` at one
  ``evaluated_at``) and the SLO alert transitions (``llm_alerts`` FINAL).

Floats summed in another order compare to a relative 1e-9 (:func:`same_values`). Nothing here waits:
the caller reads once the sink has stored what it needs (``tests.integration.scale_harness.drain``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from dashboards import cost
from dashboards.build import build_all
from dashboards.macros import QueryWindow, render_sql
from dashboards.runner import run_sql
from dashboards.walk import queries
from sinks.schema import CALLS_TABLE, DLQ_TABLE, qualified
from streams.analytics.rollups import (
    ROLLUP_1M_FIELDS,
    ROLLUP_DIMENSIONS,
    ROLLUP_TABLE,
    TENANT_COST_TABLE,
    USER_COST_TABLE,
)
from streams.slo.alerts import ALERTS_TABLE, SLO_STATUS_TABLE

__all__ = [
    "SLO_MEASURES",
    "Row",
    "SloTables",
    "StoredTables",
    "differences",
    "panel_top_users",
    "read_slo",
    "read_tables",
    "same_values",
]

# The dashboards' SQL names this database; read_tables / panel_top_users point it at a run's own.
DASHBOARD_DATABASE: Final = "llmwatch"
TOP_USERS_PANEL: Final = "Top users by cost (trailing hour)"


# Reading what a run stored.

Row = tuple[Any, ...]
# Rollup columns the dashboards sum, and the sketches they merge into quantiles.
# The summable columns of a 1-minute rollup row: every field after the source that is not a map or
# a minimum (sketch bins are merged apart; minima and max_sent_at are not sums).
ROLLUP_SUMS: Final = tuple(
    name
    for name in ROLLUP_1M_FIELDS[ROLLUP_1M_FIELDS.index("requests") :]
    if name != "error_types" and not name.endswith(("_bins", "_zero_count", "_min", "max_sent_at"))
)
SKETCHES: Final = ("latency", "ttft", "tokens_per_s")
QUANTILES: Final = (0.5, 0.95, 0.99)
TENANT_DIMENSIONS: Final = ("window_start", "tenant_id", "service", "environment")
TENANT_SUMS: Final = ("requests", "errors", "cost_usd", "unpriced_requests", "input_tokens")
USER_DIMENSIONS: Final = ("hour_start", "tenant_id", "user_id")
USER_SUMS: Final = ("requests", "cost_usd", "input_tokens", "output_tokens")
# Columns of llm_calls that come from the event itself (not from ingestion or the source position).
CALL_CONTENT: Final = (
    "start_time",
    "end_time",
    "service",
    "user_id",
    "tenant_id",
    "trace_id",
    "request_model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "http_status",
)


@dataclass(frozen=True, slots=True)
class StoredTables:
    calls_final: int
    calls_distinct: int
    calls_raw: int
    dlq_final: int
    calls: dict[str, Row]  # event_id -> its content columns (FINAL)
    rollups: dict[Row, Row]  # rollup dimensions -> sums, summed error types, quantiles
    tenant_cost: dict[Row, Row]
    user_cost: dict[Row, Row]


def _grouped(client: Any, sql: str, width: int) -> dict[Row, Row]:
    rows = client.query(sql).result_rows
    out = {tuple(row[:width]): tuple(row[width:]) for row in rows}
    assert len(out) == len(rows), "a group appears twice"
    return out


def read_tables(client: Any, database: str) -> StoredTables:
    calls = qualified(CALLS_TABLE, database)

    def scalar(sql: str) -> int:
        return int(client.command(sql))

    def table(name: str) -> str:
        return f"{qualified(name, database)} FINAL"

    quantiles = ", ".join(
        f"llmwatch_quantile({q}, sumMap({s}_bins), sum({s}_zero_count))"
        for s in SKETCHES
        for q in QUANTILES
    )
    sums = ", ".join(f"sum({column})" for column in ROLLUP_SUMS)
    dims = ", ".join(ROLLUP_DIMENSIONS)
    rollups = _grouped(
        client,
        f"SELECT {dims}, {sums}, sumMap(error_types), {quantiles} FROM {table(ROLLUP_TABLE)} "
        f"GROUP BY {dims}",
        len(ROLLUP_DIMENSIONS),
    )
    tenant_dims, user_dims = ", ".join(TENANT_DIMENSIONS), ", ".join(USER_DIMENSIONS)
    tenant = _grouped(
        client,
        f"SELECT {tenant_dims}, {', '.join(f'sum({c})' for c in TENANT_SUMS)} "
        f"FROM {table(TENANT_COST_TABLE)} GROUP BY {tenant_dims}",
        len(TENANT_DIMENSIONS),
    )
    user = _grouped(
        client,
        f"SELECT {user_dims}, {', '.join(f'sum({c})' for c in USER_SUMS)} "
        f"FROM {table(USER_COST_TABLE)} GROUP BY {user_dims}",
        len(USER_DIMENSIONS),
    )
    contents = client.query(
        f"SELECT event_id, {', '.join(CALL_CONTENT)} FROM {calls} FINAL"
    ).result_rows
    return StoredTables(
        calls_final=scalar(f"SELECT count() FROM {calls} FINAL"),
        calls_distinct=scalar(f"SELECT uniqExact(event_id) FROM {calls}"),
        calls_raw=scalar(f"SELECT count() FROM {calls}"),
        dlq_final=scalar(f"SELECT count() FROM {table(DLQ_TABLE)}"),
        calls={row[0]: tuple(row[1:]) for row in contents},
        rollups=rollups,
        tenant_cost=tenant,
        user_cost=user,
    )


def same_values(left: Row, right: Row, rel: float = 1e-9) -> bool:
    """Equal, but floats (sums in another order) only to ``rel``."""
    if len(left) != len(right):
        return False
    for a, b in zip(left, right, strict=True):
        if isinstance(a, float) and isinstance(b, float):
            if not math.isclose(a, b, rel_tol=rel, abs_tol=1e-12):
                return False
        elif a != b:
            return False
    return True


def differences(left: dict[Row, Row], right: dict[Row, Row], limit: int = 5) -> list[str]:
    """Up to ``limit`` keys whose values differ (or that only one side has), for a failure message."""
    out = []
    for key in sorted(left.keys() | right.keys(), key=repr):
        a, b = left.get(key), right.get(key)
        if a is None or b is None or not same_values(a, b):
            out.append(f"{key}: {a} != {b}")
            if len(out) == limit:
                break
    return out


def panel_top_users(client: Any, database: str, now: datetime) -> dict[tuple[str, str], Row]:
    """The cost dashboard's top-users panel over the hour to ``now``, on ``database``:
    (tenant, user) -> (cost_usd, calls, max_overestimate_usd)."""
    sql = next(q.sql for q in queries(build_all()[cost.UID]) if q.owner == TOP_USERS_PANEL)
    window = QueryWindow(now - timedelta(hours=1), now + timedelta(minutes=1), 60)
    rendered = render_sql(sql, window, {}).replace(f"{DASHBOARD_DATABASE}.", f"{database}.")
    result = run_sql(client, rendered)
    at = [result.columns.index(c) for c in ("tenant_id", "user_id")]
    values = [result.columns.index(c) for c in ("cost_usd", "calls", "max_overestimate_usd")]
    return {(row[at[0]], row[at[1]]): tuple(row[i] for i in values) for row in result.rows}


# SLO status and alerts.

# What a status row measures over one window: the counts and spend the burn rate is computed from,
# the burn rate and the rule's condition.
SLO_MEASURES: Final = ("good", "total", "spent_usd", "unpriced", "burn_rate", "firing")


@dataclass(frozen=True, slots=True)
class SloTables:
    status: dict[Row, Row]  # (slo, rule, window) -> SLO_MEASURES, of one status snapshot
    alerts: tuple[Row, ...]  # (slo, rule, alert_id, state), FINAL, sorted


def read_slo(client: Any, database: str, evaluated_at_ms: int) -> SloTables:
    """The status rows the worker evaluated at ``evaluated_at_ms`` and every SLO alert transition."""
    status = _grouped(
        client,
        f"SELECT slo, rule, `window`, {', '.join(SLO_MEASURES)} "
        f"FROM {qualified(SLO_STATUS_TABLE, database)} FINAL "
        f"WHERE evaluated_at = fromUnixTimestamp64Milli(toInt64({int(evaluated_at_ms)}), 'UTC')",
        3,
    )
    alerts = client.query(
        f"SELECT slo, rule, alert_id, state FROM {qualified(ALERTS_TABLE, database)} FINAL "
        "ORDER BY slo, rule, alert_id, state"
    ).result_rows
    return SloTables(status, tuple(tuple(row) for row in alerts))
