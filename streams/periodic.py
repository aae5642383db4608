"""What the worker publishes on timers, not per record: pipeline metrics, top-K snapshots, lifecycle
alerts. All of it travels on the ``metrics`` topic as a tables envelope the sink splits per table.

Delivery: best effort, at-least-once per send. Snapshots and metric samples are idempotent by key
(snapshot minute + instance + rank; metric samples are keyed by time), so a re-send is harmless.

Top-K ownership: each top-K row carries the source ``partitions`` its instance owned and the
``published_at`` time (ms), so a reader can keep, per partition, only the newest snapshot that claims
it: a dead instance's last snapshot stops counting once another instance publishes for its partitions
(``dashboards/cost.py``).
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from streams.analytics.lifecycle import ModelLifecycle
from streams.analytics.topk import TopUser
from streams.slo.alerts import AlertEvent, AlertState, alert_id_for
from streams.storage import PIPELINE_METRICS_TABLE, TOP_USERS_TABLE
from streams.table_rows import decode_tables, encode_tables

__all__ = [
    "LIFECYCLE_SLO",
    "PIPELINE_METRICS_TABLE",
    "PIPELINE_METRIC_FIELDS",
    "SNAPSHOT_KIND",
    "TOP_USERS_FIELDS",
    "TOP_USERS_TABLE",
    "decode_snapshot",
    "encode_snapshot",
    "lifecycle_alert",
    "metric_rows",
    "top_user_rows",
]

SNAPSHOT_KIND: Final = "snapshot"
PIPELINE_METRIC_FIELDS: Final[tuple[str, ...]] = (
    "ts",
    "process",
    "instance",
    "process_start",
    "metric",
    "labels",
    "value",
)
TOP_USERS_FIELDS: Final[tuple[str, ...]] = (
    "snapshot_minute",
    "instance",
    "rank",
    "tenant_id",
    "user_id",
    "cost_usd",
    "requests",
    "error_bound_usd",
    "partitions",
    "published_at",
)
# The pseudo-SLO under which model-lifecycle alerts are filed in llm_alerts.
LIFECYCLE_SLO: Final = "model-lifecycle"
LIFECYCLE_SEVERITY: Final = {"retired": "page", "retiring_soon": "page"}
MINUTE_MS: Final = 60_000

Metrics = Mapping[tuple[str, tuple[tuple[str, str], ...]], float]


def encode_snapshot(tables: Mapping[str, list[dict[str, Any]]]) -> bytes:
    return encode_tables(SNAPSHOT_KIND, tables)


def decode_snapshot(value: bytes | None) -> dict[str, list[dict[str, Any]]]:
    """Rows per table of one ``metrics`` record; raises ValueError naming what is wrong."""
    return decode_tables(value, SNAPSHOT_KIND)


def metric_rows(
    process: str, instance: str, process_start_ms: int, ts_ms: int, metrics: Metrics
) -> list[dict[str, Any]]:
    """One ``llm_pipeline_metrics`` row per (metric name, labels)."""
    return [
        {
            "ts": ts_ms,
            "process": process,
            "instance": instance,
            "process_start": process_start_ms,
            "metric": name,
            "labels": dict(labels),
            "value": float(value),
        }
        for (name, labels), value in metrics.items()
    ]


def top_user_rows(
    snapshot_ms: int, instance: str, partitions: Iterable[int], users: Iterable[TopUser]
) -> list[dict[str, Any]]:
    """``llm_top_users`` rows of one snapshot by ``instance``, owner of source ``partitions``."""
    minute = snapshot_ms // MINUTE_MS * MINUTE_MS
    owned = sorted(set(partitions))
    return [
        {
            "snapshot_minute": minute,
            "instance": instance,
            "rank": rank,
            "tenant_id": user.tenant_id,
            "user_id": user.user_id,
            "cost_usd": user.cost_usd,
            "requests": user.requests,
            "error_bound_usd": user.error_bound_usd,
            "partitions": owned,
            "published_at": snapshot_ms,
        }
        for rank, user in enumerate(users, start=1)
    ]


def lifecycle_alert(
    provider: str,
    model: str,
    status: str,
    calls: int,
    lifecycle: ModelLifecycle | None,
    now_ms: int,
) -> AlertEvent:
    """A firing alert: traffic goes to a model that is deprecated, retiring or retired."""
    rule = f"{provider or '-'}/{model}"
    dates = ""
    replacement = ""
    if lifecycle is not None:
        if lifecycle.deprecation_date:
            dates += f" deprecated {lifecycle.deprecation_date};"
        if lifecycle.retirement_date:
            dates += f" retires {lifecycle.retirement_date};"
        replacement = lifecycle.replacement or ""
    advice = f"move it to {replacement}" if replacement else "move it to a current model"
    return AlertEvent(
        alert_id=alert_id_for(LIFECYCLE_SLO, f"{rule}:{status}", now_ms // MINUTE_MS * MINUTE_MS),
        slo=LIFECYCLE_SLO,
        rule=rule,
        severity=LIFECYCLE_SEVERITY.get(status, "ticket"),
        state=AlertState.FIRING.value,
        fired_at=now_ms,
        resolved_at=None,
        evaluated_at=now_ms,
        sli_type="model_lifecycle",
        objective=None,
        usd_per_hour=None,
        factor=0.0,
        long_window="",
        short_window="",
        burn_rate_long=0.0,
        burn_rate_short=0.0,
        good_long=0,
        total_long=calls,
        good_short=0,
        total_short=calls,
        spent_usd_long=0.0,
        spent_usd_short=0.0,
        unpriced_long=0,
        unpriced_short=0,
        selector={"provider": provider, "model": model, "lifecycle": status},
        description=f"{calls} calls to {model} ({provider}), which is {status}:{dates}".rstrip(";"),
        runbook=f"Find the callers (llm_calls WHERE request_model = '{model}') and {advice}.",
    )
