"""The chaos run: steady traffic through the real broker, worker and sink while faults hit in sequence.

Reproduce (full run, 30 s faults, about 4 minutes)::

    TZ=UTC .venv/bin/python -m tests.chaos.run --fault-s 30

The run starts Tansu behind a loopback proxy, ``llmwatch worker`` and ``llmwatch sink`` subprocesses
(the sink on a chdb folder) and drives SDK traffic at ``rate`` events/s, one invalid event in
``invalid_every`` (it must land in ``llm_dlq``). After a baseline phase, each fault of
:data:`tests.chaos.faults.FAULTS` runs as one phase: traffic flows for :data:`FAULT_LEAD_S`, the fault
lasts ``fault_s``, then the pipeline gets ``recover_s`` of steady traffic. Each phase emits through its
own SDK Publisher, so its drops are counted exactly. Then the publishers flush, the pipeline drains, the
sink stops cleanly and ClickHouse is read back (``tests.chaos.accounting``).

Guarantee checked (:attr:`ChaosReport.ok`): for every phase, emitted = rows + dlq + SDK drops, with no
duplicate under FINAL, and the rollup totals equal a recomputation from ``llm_calls FINAL``.

What can block: every wait is bounded (start :data:`START_TIMEOUT_S`, flush :data:`FLUSH_TIMEOUT_S`
per publisher, drain ``drain_timeout_s``); every process is stopped on exit, also on error.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from producers.events import LlmCallEvent
from producers.sdk import Publisher
from tests.chaos.accounting import (
    RECOVERY_GRACE_S,
    PhaseCounts,
    PhaseLog,
    RollupCheck,
    count_phase,
    foreign_ids,
    read_stored,
    rollup_checks,
)
from tests.chaos.faults import FAULTS, Fault
from tests.chaos.rig import ChaosRig
from tests.chaos.table import render
from tests.integration.kafka_io import QUIET, committed
from tests.integration.pipeline_harness import (
    Traffic,
    clickhouse,
    simulated_events,
    wait_drained,
    wait_until,
)

__all__ = ["ChaosPlan", "ChaosReport", "main", "run_chaos"]

START_TIMEOUT_S: Final = 90.0
FLUSH_TIMEOUT_S: Final = 60.0
DRAIN_TIMEOUT_S: Final = 180.0
SUPERVISE_TICK_S: Final = 0.25
BASELINE: Final = "none (baseline)"
# Traffic flows this long before the fault: longer than the rig's worker commit interval, so a kill
# finds processed-but-uncommitted records (generating a phase's events pauses the traffic before it).
FAULT_LEAD_S: Final = 3.0
INVALID_TOKENS: Final = -3  # the worker dead-letters a negative token count


@dataclass(frozen=True, slots=True)
class ChaosPlan:
    fault_s: float = 30.0
    recover_s: float = 20.0
    baseline_s: float = 10.0
    rate: float = 300.0
    invalid_every: int = 200
    seed: int = 70
    drain_timeout_s: float = DRAIN_TIMEOUT_S
    # False: the SDK's producer without idempotence (a diagnostic: rules out producer fencing).
    sdk_idempotence: bool = True

    def __post_init__(self) -> None:
        for name in ("fault_s", "recover_s", "baseline_s", "rate", "drain_timeout_s"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if self.invalid_every < 2:
            raise ValueError(f"invalid_every must be >= 2, got {self.invalid_every!r}")


@dataclass(slots=True)
class ChaosReport:
    plan: ChaosPlan
    started_at: datetime
    phases: list[PhaseLog] = field(default_factory=list)
    counts: list[PhaseCounts] = field(default_factory=list)
    rollups: list[RollupCheck] = field(default_factory=list)
    foreign: int = 0  # stored ids nobody emitted
    dlq_unattributed: int = 0
    drained: bool = False
    elapsed_s: float = 0.0

    @property
    def total(self) -> PhaseCounts:
        return PhaseCounts(
            *(sum(getattr(c, f.name) for c in self.counts) for f in fields(PhaseCounts))
        )

    @property
    def ok(self) -> bool:
        total = self.total
        return (
            bool(self.counts)
            and all(c.lost == c.duplicated == c.missing_after_recovery == 0 for c in self.counts)
            and total.emitted == total.rows + total.dlq + total.drops
            and all(check.ok for check in self.rollups)
            and self.foreign == 0
            and self.dlq_unattributed == 0
        )

    def table(self) -> str:
        return render(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": asdict(self.plan),
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "elapsed_s": round(self.elapsed_s, 1),
            "ok": self.ok,
            "drained": self.drained,
            "phases": [
                {
                    "fault": p.name,
                    "start_s": round(p.started_s, 1),
                    "fault_start_s": None
                    if p.fault_started_s is None
                    else round(p.fault_started_s, 1),
                    "fault_end_s": None if p.fault_ended_s is None else round(p.fault_ended_s, 1),
                    "end_s": round(p.ended_s, 1),
                    "restarts": dict(p.restarts),
                    "sdk": asdict(p.sdk),
                    **asdict(c),
                }
                for p, c in zip(self.phases, self.counts, strict=True)
            ],
            "rollups": [
                {"what": r.what, "rollups": r.rollups, "calls": r.calls} for r in self.rollups
            ],
            "foreign_ids": self.foreign,
            "dlq_unattributed": self.dlq_unattributed,
        }


def _phase_events(log: PhaseLog, n: int, seed: int, invalid_every: int) -> list[Any]:
    """``n`` simulated events; every ``invalid_every``-th is made invalid (negative input tokens)."""
    events: list[Any] = []
    for index, event in enumerate(simulated_events(n, seed)):
        if index % invalid_every == invalid_every - 1:
            wire = event.to_wire()
            wire["input_tokens"] = INVALID_TOKENS
            events.append(wire)
            log.invalid_ids.add(event.event_id)
        else:
            events.append(event)
            log.valid_ids.add(event.event_id)
    return events


def _after_recovery(log: PhaseLog, events: Sequence[Any], rate: float) -> set[str]:
    """Ids of the events paced out after the fault had been over for RECOVERY_GRACE_S."""
    recovered_s = 0.0 if log.fault_ended_s is None else log.fault_ended_s + RECOVERY_GRACE_S
    first = max(0, math.ceil((recovered_s - log.started_s) * rate))
    return {e.event_id if isinstance(e, LlmCallEvent) else e["event_id"] for e in events[first:]}


def _supervise(rig: ChaosRig, seconds: float) -> None:
    """Wait ``seconds`` while restarting any process that exits on its own."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        rig.processes.check()
        time.sleep(min(SUPERVISE_TICK_S, left))


class _Clock:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.t0


def _run_phase(
    rig: ChaosRig, plan: ChaosPlan, clock: _Clock, fault: Fault | None, index: int
) -> tuple[PhaseLog, Publisher]:
    duration = plan.baseline_s if fault is None else FAULT_LEAD_S + plan.fault_s + plan.recover_s
    log = PhaseLog(BASELINE if fault is None else fault.name, started_s=0.0)
    events = _phase_events(log, int(plan.rate * duration), plan.seed + index, plan.invalid_every)
    log.emitted = len(events)
    restarts_before = rig.processes.restarts.copy()
    config = {**QUIET, **({} if plan.sdk_idempotence else {"enable.idempotence": False})}
    publisher = Publisher(
        rig.settings.bootstrap, rig.settings.layout.events, producer_config=config
    )
    log.started_s = clock()
    traffic = Traffic(publisher, events, plan.rate).start()
    if fault is None:
        wait_until(lambda: _flowing(rig), "the pipeline to flow", START_TIMEOUT_S, rig.processes)
    else:
        _supervise(rig, FAULT_LEAD_S)
        log.fault_started_s = clock()
        fault.begin(rig)
        _supervise(rig, plan.fault_s)
        fault.end(rig)
        log.fault_ended_s = clock()
    _supervise(rig, max(0.0, log.started_s + duration - clock()))
    traffic.join(START_TIMEOUT_S)
    log.ended_s = clock()
    log.after_recovery_ids = _after_recovery(log, events, plan.rate)
    log.restarts = rig.processes.restarts - restarts_before
    return log, publisher


def _flowing(rig: ChaosRig) -> bool:
    """The worker published some calls and the sink committed some of them."""
    rig.watcher.poll()
    if not rig.watcher.event_ids:
        return False
    calls = [(rig.settings.layout.calls, p) for p in range(rig.settings.layout.partitions)]
    positions = committed(rig.settings.bootstrap, rig.settings.sink_group, calls)
    return any(offset > 0 for offset in positions.values())


def _settle(
    rig: ChaosRig, plan: ChaosPlan, logs: Sequence[PhaseLog], publishers: Sequence[Publisher]
) -> bool:
    """Flush every publisher, then wait until the pipeline drained; False if it did not in time."""
    for log, publisher in zip(logs, publishers, strict=True):
        publisher.close(FLUSH_TIMEOUT_S)
        log.sdk = publisher.stats
        print(f"SDK, {log.name}: {log.sdk}", flush=True)
    # What the broker acknowledged is what the pipeline must pass on; which of those events are the
    # invalid ones is not known, so both targets are lower bounds (the drain also waits for quiet).
    delivered = sum(log.sdk.delivered for log in logs)
    undelivered = sum(log.emitted - log.sdk.delivered for log in logs)
    invalid = sum(len(log.invalid_ids) for log in logs)
    try:
        wait_drained(
            rig.watcher,
            rig.settings,
            calls=max(0, delivered - invalid),
            dead_letters=max(0, invalid - undelivered),
            processes=rig.processes,
            timeout_s=plan.drain_timeout_s,
        )
    except AssertionError as exc:  # the table will show what is missing
        print(f"the pipeline did not drain: {str(exc)[:2000]}")
        return False
    return True


def run_chaos(plan: ChaosPlan, folder: Path) -> ChaosReport:
    """Run every fault of FAULTS in sequence on a fresh pipeline in ``folder``; count the outcome."""
    report = ChaosReport(plan, started_at=datetime.now(UTC))
    clock = _Clock()
    publishers: list[Publisher] = []
    with ChaosRig(folder, f"chaos{uuid.uuid4().hex[:8]}") as rig:
        try:
            for index, fault in enumerate((None, *FAULTS)):
                log, publisher = _run_phase(rig, plan, clock, fault, index)
                report.phases.append(log)
                publishers.append(publisher)
                print(f"{clock():6.1f} s  {log.name}: {log.emitted} events emitted", flush=True)
            report.drained = _settle(rig, plan, report.phases, publishers)
        finally:
            for publisher in publishers:
                publisher.close(0.0)  # idempotent; bounded if _settle did not run
        rig.stop_sink()
        published = dict(rig.watcher.published)
        with clickhouse(rig.settings.dsn) as client:
            stored = read_stored(client, rig.settings.database)
            report.rollups = rollup_checks(client, rig.settings.database)
    report.counts = [count_phase(log, stored, published) for log in report.phases]
    report.foreign = foreign_ids(report.phases, stored)
    report.dlq_unattributed = stored.dlq_unattributed
    report.elapsed_s = clock()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = ChaosPlan()
    parser.add_argument("--fault-s", type=float, default=defaults.fault_s)
    parser.add_argument("--recover-s", type=float, default=defaults.recover_s)
    parser.add_argument("--baseline-s", type=float, default=defaults.baseline_s)
    parser.add_argument("--rate", type=float, default=defaults.rate)
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the logs and data on success")
    parser.add_argument(
        "--no-sdk-idempotence",
        dest="sdk_idempotence",
        action="store_false",
        help="diagnostic: the SDK's producer without idempotence",
    )
    args = parser.parse_args(argv)
    plan = ChaosPlan(
        args.fault_s,
        args.recover_s,
        args.baseline_s,
        args.rate,
        sdk_idempotence=args.sdk_idempotence,
    )
    folder = Path(tempfile.mkdtemp(prefix="llmwatch-chaos-"))
    print(f"chaos run in {folder}: {plan}", flush=True)
    report = run_chaos(plan, folder)
    print(report.table())
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if report.ok and not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
        return 0
    print(f"{'OK' if report.ok else 'FAILED'}; logs and data kept in {folder}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
