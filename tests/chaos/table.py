"""The chaos run's report as Markdown: one row per fault, a total row, the rollup checks."""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from tests.chaos.run import ChaosReport

__all__ = ["render"]

HEADER: Final = (
    "| fault | fault from-to (s) | phase from-to (s) | emitted | rows | dlq | drops | lost | SDK unsettled "
    "| duplicated | missing after recovery | replayed by worker | unplanned restarts |"
)
RULE: Final = (
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
)


def _window(start: float | None, end: float | None) -> str:
    return "-" if start is None or end is None else f"{start:.1f}-{end:.1f}"


def render(report: ChaosReport) -> str:
    plan = report.plan
    lines = [
        f"chaos run {report.started_at:%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}): faults of "
        f"{plan.fault_s:g} s, {plan.recover_s:g} s of recovery each, {plan.rate:g} events/s, "
        f"1 invalid event in {plan.invalid_every}"
        f"{'' if plan.sdk_idempotence else ', SDK producer without idempotence'}; "
        f"{report.elapsed_s:.0f} s in all",
        "",
        HEADER,
        RULE,
    ]
    for phase, counts in zip(report.phases, report.counts, strict=True):
        restarts = ", ".join(f"{k} {v}" for k, v in sorted(phase.restarts.items())) or "0"
        lines.append(
            f"| {phase.name} | {_window(phase.fault_started_s, phase.fault_ended_s)} "
            f"| {phase.started_s:.1f}-{phase.ended_s:.1f} | {counts.emitted} | {counts.rows} | {counts.dlq} "
            f"| {counts.drops} | {counts.lost} | {counts.unsettled} | {counts.duplicated} "
            f"| {counts.missing_after_recovery} | {counts.replayed} "
            f"| {restarts} |"
        )
    t = report.total
    lines.append(
        f"| **total** | | | {t.emitted} | {t.rows} | {t.dlq} | {t.drops} | {t.lost} | {t.unsettled} "
        f"| {t.duplicated} | {t.missing_after_recovery} | {t.replayed} | |"
    )
    lines += [
        "",
        "| rollup total | from rollups (FINAL) | recomputed from llm_calls FINAL | equal |",
    ]
    lines.append("| --- | ---: | ---: | --- |")
    for check in report.rollups:
        lines.append(
            f"| {check.what} | {check.rollups:.10g} | {check.calls:.10g} "
            f"| {'yes' if check.ok else 'NO'} |"
        )
    lines += [
        "",
        f"drained: {report.drained}; stored ids nobody emitted: {report.foreign}; "
        f"dead letters without an event id: {report.dlq_unattributed}; "
        f"result: {'OK' if report.ok else 'FAILED'}",
    ]
    return "\n".join(lines)
