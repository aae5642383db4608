"""The worker's long-lived stream state: SLO burn rates, top users, lifecycle watch, counters.

:class:`StreamMonitor` is fed every valid row (``observe``) and asked on timers for what to publish:
alert transitions (``alerts``), SLO status (``status``), and a metrics + top-K snapshot (``snapshot``).
It is Faust-free so tests drive it directly with explicit clocks.

Clock: the monitor always gives its ``clock`` (``streams.clock``; the worker passes the wall clock) to
the burn-rate evaluator and the top-K, so an event stamped far in the future (or the past) cannot move
their watermarks or switch alerting off. A row is judged once, for both: one ending more than
``max_future_ms`` after ``clock()`` is skipped and counted in ``future_events``, one ending before it
starts (the ingest contract rejects those) in ``inverted_time_events``; one too old for any window is
counted late by each (``late_events``, ``top_users_late_events``).

Exactly once per source record: ``observe(rows, source)`` remembers the next offset of every source
partition and ignores a record below it (a replay after a crash or a rebalance), counting it in
``replayed_records``; so the analytics count each record once, in offset order per partition.

Restart: :meth:`StreamMonitor.state_record` encodes the evaluator's buckets and firing alerts, the
top-K buckets, the lifecycle alerts sent and those next offsets (``streams.state``); the worker
publishes it after every alert evaluation that follows a change, and restores the latest one before it
processes records (:meth:`StreamMonitor.load_state`). An incident that spans a restart keeps its
alert_id and resolves once. Bound: the rows of records whose offsets the worker committed after its
last published state and before a crash are missing from the restored windows (at most one alert
interval of traffic, ``LLMWATCH_ALERT_INTERVAL_S``); the other records are replayed and counted once.

Scope: all instances' traffic. Each worker publishes, per source record, a monitor record
(``streams.monitor_records``) to the one-partition ``monitor`` topic; Kafka gives that partition to one
member of the worker group, which feeds the records to its monitor (``streams.app``). So with N workers
the burn rates, the budgets and the top-K are those of all traffic, computed once; the other instances
keep only their own counters (``counters``, published as their pipeline metrics). The instance that
takes the partition over first :meth:`reset` s and restores the state the last owner published (an
owner that is revoked publishes its state first), so a rebalance loses nothing and a crash of the
owner loses at most one alert interval, as above. The restart state is keyed by the worker app id
(the consumer group), one per group. What bounds it: the owner parses and counts every valid row of
the group (~3-4 µs a row on one core, so ~15-20% of a core at 50,000 events/s).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from streams.analytics.record import RecordAnalytics
from streams.analytics.topk import TopUsers
from streams.clock import DEFAULT_MAX_FUTURE_MS, Clock, wall_clock_ms
from streams.ingest.validate import SourcePosition
from streams.monitor_records import MonitorRecord
from streams.periodic import (
    PIPELINE_METRICS_TABLE,
    TOP_USERS_TABLE,
    encode_snapshot,
    lifecycle_alert,
    metric_rows,
    top_user_rows,
)
from streams.slo.alerts import encode_status
from streams.slo.burnrate import BurnRateEvaluator
from streams.slo.config import SloFile
from streams.state import decode_offsets, encode_state

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
        clock: Clock = wall_clock_ms,
        max_future_ms: int = DEFAULT_MAX_FUTURE_MS,
    ) -> None:
        if max_future_ms < 0:
            raise ValueError(f"max_future_ms must be >= 0, got {max_future_ms!r}")
        self.analytics = analytics
        self._slos = slos
        self._clock = clock
        self.evaluator = self._new_evaluator()
        self.top_users = TopUsers(clock=clock)
        self.counters = IngestCounters()
        self.instance = instance
        self.started_ms = started_ms
        self.replayed_records = 0
        self.future_events = 0
        self.inverted_time_events = 0
        self._max_future_ms = max_future_ms
        self._alerted_models: set[tuple[str, str, str]] = set()
        # (provider, model, lifecycle status) -> calls, over all instances (from monitor records).
        self.flagged_models: dict[tuple[str, str, str], int] = {}
        self._next_offsets: dict[tuple[str, int], int] = {}
        self._changes = 0  # state changes since start; the state is published when it moved
        self._published_changes = 0

    def _new_evaluator(self) -> BurnRateEvaluator | None:
        if self._slos is None:
            return None
        return BurnRateEvaluator(self._slos, clock=self._clock)

    def observe(self, rows: Iterable[dict[str, Any]], source: SourcePosition | None = None) -> bool:
        """Count the valid rows of one source record; False (and nothing counted) for a replay."""
        if source is not None:
            key = (source.topic, source.partition)
            if source.offset < self._next_offsets.get(key, 0):
                self.replayed_records += 1
                return False
            self._next_offsets[key] = source.offset + 1
        limit = self._clock() + self._max_future_ms
        kept = []
        for row in rows:
            start, end = row["start_time"], row["end_time"]
            if end < start:
                self.inverted_time_events += 1
            elif end > limit:
                self.future_events += 1
            else:
                kept.append(row)
                self.top_users.add(row["tenant_id"], row["user_id"], row["cost_usd"], start)
        if self.evaluator is not None:
            self.evaluator.observe_record(kept)
        self._changes += 1
        return True

    def observe_record(self, record: MonitorRecord) -> bool:
        """Count one monitor record (``streams.monitor_records``): its rows, as :meth:`observe`,
        and its calls of flagged models. False (nothing counted) for a replayed source record."""
        if not self.observe(record.rows, record.source):
            return False
        for key, calls in record.flagged.items():
            self.flagged_models[key] = self.flagged_models.get(key, 0) + calls
        return True

    def reset(self) -> None:
        """Forget everything but this instance's counters: SLO windows, top-K, flagged models,
        alerts sent and source offsets (an instance that stops owning the monitor partition)."""
        self.evaluator = self._new_evaluator()
        self.top_users = TopUsers(clock=self._clock)
        self.flagged_models = {}
        self._alerted_models = set()
        self._next_offsets = {}
        self.replayed_records = self.future_events = self.inverted_time_events = 0
        self._changes += 1

    def alerts(self, now_ms: int) -> list[tuple[str, bytes]]:
        """(key, record) pairs for the alerts topic: SLO transitions and new lifecycle alerts."""
        out = []
        if self.evaluator is not None:
            out = [(a.slo, a.to_json()) for a in self.evaluator.evaluate(now_ms)]
        for (provider, model, status), calls in self.flagged_models.items():
            if (provider, model, status) in self._alerted_models:
                continue
            self._alerted_models.add((provider, model, status))
            lifecycle = self.analytics.catalog.lookup(provider or None, model)
            alert = lifecycle_alert(provider, model, status, calls, lifecycle, now_ms)
            out.append((alert.slo, alert.to_json()))
        self._changes += bool(out)
        return out

    def status(self, now_ms: int) -> bytes | None:
        if self.evaluator is None:
            return None
        return encode_status(self.evaluator.status_rows(now_ms))

    def snapshot(self, now_ms: int, partitions: Iterable[int] | None = None) -> bytes:
        """Pipeline metrics and the top-K users, as one tables record for the metrics topic.

        ``partitions``: the source partitions this instance owns now (default: those it has read).
        The top-K rows carry them, so a dashboard can drop an instance's snapshot once another
        instance claims its partitions; an instance told it owns none publishes no top-K rows.
        """
        read = {partition for _, partition in self._next_offsets}
        owned = sorted(read if partitions is None else set(partitions))
        users = self.top_users.top(TOP_K) if owned or partitions is None else []
        return encode_snapshot(
            {
                PIPELINE_METRICS_TABLE: metric_rows(
                    PROCESS, self.instance, self.started_ms, now_ms, self._metrics()
                ),
                TOP_USERS_TABLE: top_user_rows(now_ms, self.instance, owned, users),
            }
        )

    def state_record(self, app_id: str, now_ms: int, *, force: bool = False) -> bytes | None:
        """The restart state (``streams.state``) if it changed since the last call (or ``force``),
        else None."""
        if self._changes == self._published_changes and not force:
            return None
        self._published_changes = self._changes
        body = {
            "offsets": [[t, p, n] for (t, p), n in sorted(self._next_offsets.items())],
            "evaluator": None if self.evaluator is None else self.evaluator.dump(),
            "top_users": self.top_users.dump(),
            "alerted_models": sorted(list(key) for key in self._alerted_models),
        }
        return encode_state(app_id, now_ms, body)

    def load_state(self, body: dict[str, Any]) -> list[str]:
        """Take over a restored state (all or nothing); returns the parts not restored.

        Raises ValueError naming a malformed part; the monitor is then unchanged."""
        offsets = decode_offsets(body.get("offsets"))
        top_users = TopUsers(clock=self._clock)
        top_users.load(body.get("top_users"))
        alerted = _alerted(body.get("alerted_models"))
        evaluator, skipped = self._new_evaluator(), []
        if evaluator is not None:
            saved = body.get("evaluator")
            skipped = ["evaluator: none saved"] if saved is None else evaluator.load(saved)
        self.evaluator, self.top_users = evaluator, top_users
        self._next_offsets.update(offsets)
        self._alerted_models |= alerted
        return skipped

    def _metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        c = self.counters
        metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
            ("records_processed", ()): c.records,
            ("events_valid", ()): c.events_valid,
            ("dead_letters", ()): c.dead_letters,
            ("replayed_records", ()): self.replayed_records,
            ("future_events", ()): self.future_events,
            ("inverted_time_events", ()): self.inverted_time_events,
            ("top_users_late_events", ()): self.top_users.late_events,
        }
        for kind, n in c.redactions.items():
            metrics[("redactions", (("kind", kind),))] = n
        for (provider, model), n in self.analytics.unknown_models().items():
            metrics[("unpriced_calls", (("provider", provider), ("model", model)))] = n
        for (provider, model, status), n in self.flagged_models.items():
            labels = (("provider", provider), ("model", model), ("lifecycle", status))
            metrics[("lifecycle_flagged_calls", labels)] = n
        if self.evaluator is not None:
            stats = self.evaluator.stats()
            metrics[("late_events", ())] = stats.late_events
            for (slo, rule), fired_at in self.evaluator.firing().items():
                metrics[("alert_firing", (("slo", slo), ("rule", rule)))] = fired_at
        return metrics


def _alerted(doc: Any) -> set[tuple[str, str, str]]:
    if not isinstance(doc, list):
        raise ValueError(f"state needs a list of alerted models, got {doc!r:.80}")
    out = set()
    for item in doc:
        if not (
            isinstance(item, list) and len(item) == 3 and all(isinstance(v, str) for v in item)
        ):
            raise ValueError(f"alerted model must be [provider, model, status], got {item!r:.80}")
        out.add((item[0], item[1], item[2]))
    return out
