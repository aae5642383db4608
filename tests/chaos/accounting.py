"""Count what the chaos run stored, per phase, and check the rollups against the stored calls.

Every event the run emits belongs to one phase (the fault active when it was emitted, or the baseline)
and has a unique ``event_id``. After the run:

- ``rows``: the phase's events in ``llm_calls FINAL``; ``dlq``: its invalid events in ``llm_dlq FINAL``
  (found by the ``event_id`` inside the dead-lettered payload);
- ``drops``: what the phase's own SDK Publisher counted as not accepted or not delivered (each phase
  emits through its own Publisher, so the counts are exact per phase);
- ``lost = emitted - rows - dlq - drops`` (negative: an event counted as dropped was stored anyway);
  ``unsettled``: of those, how many the SDK still held as neither delivered nor failed after its
  bounded close (its counters then break their "every event lands in one counter" contract);
- ``duplicated``: rows beyond one per event under FINAL, events both stored and dead-lettered, and
  events stored in the wrong table (a valid one dead-lettered, an invalid one stored);
- ``missing after recovery``: events emitted once the fault had been over for
  :data:`RECOVERY_GRACE_S` that are neither rows nor dead letters (dropped or lost): a pipeline that
  recovered delivers them all; e.g. an SDK whose producer stays broken after an outage does not;
- ``replayed``: events the worker published again (seen twice on the calls topic by the run's own
  reader), e.g. after a crash before its commit; FINAL collapses their rows. Informational.

Rollups: totals of ``llm_rollup_1m FINAL`` and ``llm_tenant_cost_1m FINAL`` must equal the same totals
recomputed from ``llm_calls FINAL`` (costs within :data:`COST_TOLERANCE`, relative).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from producers.sdk.stats import PublisherStats
from sinks.schema import qualified
from streams.storage import CALLS_TABLE, DLQ_TABLE, ROLLUP_TABLE, TENANT_COST_TABLE

__all__ = [
    "COST_TOLERANCE",
    "RECOVERY_GRACE_S",
    "PhaseCounts",
    "PhaseLog",
    "RollupCheck",
    "Stored",
    "count_phase",
    "read_stored",
    "rollup_checks",
]

COST_TOLERANCE: Final = 1e-9
# After a fault ends, clients may wait this long to reconnect (librdkafka's reconnect backoff tops out
# at 10 s) before every new event must get through again.
RECOVERY_GRACE_S: Final = 10.0
# (what, SQL over the rollup table, SQL over llm_calls FINAL); both give one number.
_ROLLUP_SUMS: Final = (
    ("requests", "sum(requests)", "count()"),
    ("errors", "sum(errors)", "countIf(status = 'error')"),
    ("input_tokens", "sum(input_tokens)", "sum(input_tokens)"),
    ("output_tokens", "sum(output_tokens)", "sum(output_tokens)"),
    ("unpriced_requests", "sum(unpriced_requests)", "countIf(cost_usd IS NULL)"),
    ("cost_usd", "sum(cost_usd)", "sum(ifNull(cost_usd, 0))"),
)
_TENANT_SUMS: Final = (
    ("tenant requests", "sum(requests)", "count()"),
    ("tenant cost_usd", "sum(cost_usd)", "sum(ifNull(cost_usd, 0))"),
)


@dataclass(slots=True)
class PhaseLog:
    """What happened in one phase, as the runner saw it."""

    name: str
    started_s: float  # since the run started
    fault_started_s: float | None = None
    fault_ended_s: float | None = None
    ended_s: float = 0.0
    valid_ids: set[str] = field(default_factory=set)
    invalid_ids: set[str] = field(default_factory=set)
    after_recovery_ids: set[str] = field(default_factory=set)  # emitted after fault end + grace
    emitted: int = 0  # emit() calls
    sdk: PublisherStats = field(default_factory=PublisherStats)
    restarts: Counter[str] = field(default_factory=Counter)  # unplanned, by command


@dataclass(frozen=True, slots=True)
class Stored:
    """Per event id: rows in llm_calls FINAL and in llm_dlq FINAL."""

    calls_final: Mapping[str, int]
    dlq_final: Mapping[str, int]
    dlq_unattributed: int  # dead letters whose payload names no event id (whole records)


@dataclass(frozen=True, slots=True)
class PhaseCounts:
    emitted: int
    rows: int
    dlq: int
    drops: int
    lost: int
    unsettled: int
    duplicated: int
    missing_after_recovery: int
    replayed: int


def _by_id(client: Any, sql: str) -> dict[str, int]:
    return {str(key): int(n) for key, n in client.query(sql).result_rows}


def read_stored(client: Any, database: str) -> Stored:
    calls = qualified(CALLS_TABLE, database)
    dlq = _by_id(
        client,
        "SELECT JSONExtractString(payload, 'event_id') AS id, count() "
        f"FROM {qualified(DLQ_TABLE, database)} FINAL GROUP BY id",
    )
    return Stored(
        calls_final=_by_id(
            client, f"SELECT event_id, count() FROM {calls} FINAL GROUP BY event_id"
        ),
        dlq_final=dlq,
        dlq_unattributed=dlq.pop("", 0),
    )


def count_phase(phase: PhaseLog, stored: Stored, published: Mapping[str, int]) -> PhaseCounts:
    """``published``: how often the worker put each event id on the calls topic."""
    ids = phase.valid_ids | phase.invalid_ids
    in_calls = {i: stored.calls_final[i] for i in ids if i in stored.calls_final}
    in_dlq = {i: stored.dlq_final[i] for i in ids if i in stored.dlq_final}
    extra = sum(n - 1 for n in in_calls.values()) + sum(n - 1 for n in in_dlq.values())
    both = len(in_calls.keys() & in_dlq.keys())
    misfiled = len(in_calls.keys() & phase.invalid_ids) + len(in_dlq.keys() & phase.valid_ids)
    drops = phase.sdk.rejected + phase.sdk.lost
    return PhaseCounts(
        emitted=phase.emitted,
        rows=len(in_calls),
        dlq=len(in_dlq),
        drops=drops,
        lost=phase.emitted - len(in_calls.keys() | in_dlq.keys()) - drops,
        unsettled=phase.sdk.in_flight,
        duplicated=extra + both + misfiled,
        missing_after_recovery=len(phase.after_recovery_ids - in_calls.keys() - in_dlq.keys()),
        replayed=sum(max(0, published.get(i, 0) - 1) for i in ids),
    )


def foreign_ids(phases: Iterable[PhaseLog], stored: Stored) -> int:
    """Stored or dead-lettered event ids that no phase emitted (should be none)."""
    emitted: set[str] = set()
    for phase in phases:
        emitted |= phase.valid_ids | phase.invalid_ids
    return len((stored.calls_final.keys() | stored.dlq_final.keys()) - emitted)


@dataclass(frozen=True, slots=True)
class RollupCheck:
    what: str
    rollups: float
    calls: float

    @property
    def ok(self) -> bool:
        if isinstance(self.rollups, int) and isinstance(self.calls, int):
            return self.rollups == self.calls
        return abs(self.rollups - self.calls) <= COST_TOLERANCE * max(1.0, abs(self.calls))


def _sums(
    client: Any, database: str, table: str, sums: Sequence[tuple[str, str, str]]
) -> list[RollupCheck]:
    rolled = client.query(
        f"SELECT {', '.join(s[1] for s in sums)} FROM {qualified(table, database)} FINAL"
    ).result_rows[0]
    recomputed = client.query(
        f"SELECT {', '.join(s[2] for s in sums)} FROM {qualified(CALLS_TABLE, database)} FINAL"
    ).result_rows[0]
    return [
        RollupCheck(what, _number(r), _number(c))
        for (what, _, _), r, c in zip(sums, rolled, recomputed, strict=True)
    ]


def _number(value: Any) -> float:
    return value if isinstance(value, int) else float(value or 0)


def rollup_checks(client: Any, database: str) -> list[RollupCheck]:
    return [
        *_sums(client, database, ROLLUP_TABLE, _ROLLUP_SUMS),
        *_sums(client, database, TENANT_COST_TABLE, _TENANT_SUMS),
    ]
