"""The worker's long-lived stream state: SLO burn rates, top users, lifecycle watch, counters.

:class:`StreamMonitor` is fed every valid row (``observe``) and asked on timers for what to publish:
alert transitions (``alerts``), SLO status (``status``), and a metrics + top-K snapshot (``snapshot``).
It is Faust-free so tests drive it directly with explicit clocks.

Scope: the state covers the partitions this worker instance owns. With one worker (the embedded mode
and the default compose file) that is all traffic; with several, each evaluates its share, which keeps
ratio SLIs (error rate, latency) unbiased but splits cost budgets: run one worker per budget scope or
alert on budgets from Grafana (its rules read ClickHouse, which sees everything). State is in memory:
after a restart the burn-rate windows refill from live traffic (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from streams.alerts import encode_status
from streams.analytics import RecordAnalytics
from streams.burnrate import BurnRateEvaluator
from streams.periodic import (
    PIPELINE_METRICS_TABLE,
    TOP_USERS_TABLE,
    encode_snapshot,
    lifecycle_alert,
    metric_rows,
    top_user_rows,
)
from streams.slo import SloFile
from streams.topk import TopUsers

__all__ = ["TOP_K", "IngestCounters", "StreamMonitor"]

TOP_K: Final = 20
PROCESS: Final = "worker"


@dataclass(slots=True)
class IngestCounters:
    records: int = 0
    events_valid: int = 0
    dead_letters: int = 0
    redactions: dict[str, int] = field(default_factory=dict)

    def count(self, valid: int, dead: int, redactions: dict[str, int]) -> None:
        self.records += 1
        self.events_valid += valid
        self.dead_letters += dead
        for kind, n in redactions.items():
            self.redactions[kind] = self.redactions.get(kind, 0) + n


class StreamMonitor:
    def __init__(
        self,
        analytics: RecordAnalytics,
        slos: SloFile | None,
        *,
        instance: str,
        started_ms: int,
    ) -> None:
        self.analytics = analytics
        self.evaluator = BurnRateEvaluator(slos) if slos is not None else None
        self.top_users = TopUsers()
        self.counters = IngestCounters()
        self.instance = instance
        self.started_ms = started_ms
        self._alerted_models: set[tuple[str, str, str]] = set()

    def observe(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            if self.evaluator is not None:
                self.evaluator.observe(row)
            self.top_users.add(row["tenant_id"], row["user_id"], row["cost_usd"], row["start_time"])

    def alerts(self, now_ms: int) -> list[tuple[str, bytes]]:
        """(key, record) pairs for the alerts topic: SLO transitions and new lifecycle alerts."""
        out = []
        if self.evaluator is not None:
            out = [(a.slo, a.to_json()) for a in self.evaluator.evaluate(now_ms)]
        for (provider, model, status), calls in self.analytics.flagged_models.items():
            if (provider, model, status) in self._alerted_models:
                continue
            self._alerted_models.add((provider, model, status))
            lifecycle = self.analytics.catalog.lookup(provider or None, model)
            alert = lifecycle_alert(provider, model, status, calls, lifecycle, now_ms)
            out.append((alert.slo, alert.to_json()))
        return out

    def status(self, now_ms: int) -> bytes | None:
        if self.evaluator is None:
            return None
        return encode_status(self.evaluator.status_rows(now_ms))

    def snapshot(self, now_ms: int) -> bytes:
        """Pipeline metrics and the top-K users, as one tables record for the metrics topic."""
        return encode_snapshot(
            {
                PIPELINE_METRICS_TABLE: metric_rows(
                    PROCESS, self.instance, self.started_ms, now_ms, self._metrics()
                ),
                TOP_USERS_TABLE: top_user_rows(now_ms, self.instance, self.top_users.top(TOP_K)),
            }
        )

    def _metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        c = self.counters
        metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
            ("records_processed", ()): c.records,
            ("events_valid", ()): c.events_valid,
            ("dead_letters", ()): c.dead_letters,
        }
        for kind, n in c.redactions.items():
            metrics[("redactions", (("kind", kind),))] = n
        for (provider, model), n in self.analytics.unknown_models().items():
            metrics[("unpriced_calls", (("provider", provider), ("model", model)))] = n
        for (provider, model, status), n in self.analytics.flagged_models.items():
            labels = (("provider", provider), ("model", model), ("lifecycle", status))
            metrics[("lifecycle_flagged_calls", labels)] = n
        if self.evaluator is not None:
            stats = self.evaluator.stats()
            metrics[("late_events", ())] = stats.late_events
            metrics[("future_events", ())] = stats.future_events
            for (slo, rule), fired_at in self.evaluator.firing().items():
                metrics[("alert_firing", (("slo", slo), ("rule", rule)))] = fired_at
        return metrics
