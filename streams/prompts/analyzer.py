"""The canary analysis as a pure state machine: registry records and call, guardrail and score rows
in; verdicts, rollbacks and alerts out.

A canary is a label split whose move named a canary arm (``prompts label NAME V LABEL --weight 10``)
on a label the policy watches. From the move on, every row of the canary's version and of its
baseline's is added to that arm (rows older than the move are ignored, so a replay from any earlier
point gives the same arms). At each planned look (``policy.looks``, in canary calls) the metrics are
judged (``streams.prompts.verdict``); the analysis ends at the first fail or after the last look.

On a fail: with ``act: true`` the analyzer plans the label's rollback (``RegistryState.plan_rollback``
with the judged revision expected, so a label moved since is never touched, and a replay after the
rollback finds the label already moved and does nothing); with ``act: false`` it only alerts, the
alert carrying the rollback command. Either way the alert names the failed metrics.

Nothing here does I/O or reads a clock other than the one it is given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from producers.prompts.records import LabelMove, RegistryRecord
from producers.prompts.registry import RegistryState
from streams.prompts.arms import ArmMetrics
from streams.prompts.policy import LabelPolicy
from streams.prompts.records import CanaryAction, CanaryVerdict
from streams.prompts.verdict import LookResult, MetricMemory, Outcome, judge_look
from streams.slo.alerts import AlertEvent, point_alert

__all__ = ["ANALYST", "CanaryAnalyzer", "CanaryRun", "Decision", "rollback_command"]

log = logging.getLogger(__name__)

ANALYST: Final = "llmwatch-canary"
MINUTE_MS: Final = 60_000
ALERT_RULE: Final = "canary"
ALERT_SEVERITY: Final = "page"


def rollback_command(name: str, label: str) -> str:
    return f"llmwatch prompts rollback {name} --label {label}"


@dataclass(slots=True)
class CanaryRun:
    """The analysis of one label move with a canary arm."""

    move: LabelMove
    canary: ArmMetrics
    baseline: ArmMetrics
    memory: MetricMemory = field(default_factory=MetricMemory)
    looks_done: int = 0
    done: bool = False
    last: LookResult | None = None

    def arm(self, version: str) -> ArmMetrics | None:
        if version == self.canary.version:
            return self.canary
        if version == self.baseline.version:
            return self.baseline
        return None


@dataclass(frozen=True, slots=True)
class Decision:
    """What one look produced: its verdict row, and on a fail the rollback and the alert."""

    verdict: CanaryVerdict
    rollback: LabelMove | None = None
    alert: AlertEvent | None = None


class CanaryAnalyzer:
    def __init__(self, policy: LabelPolicy, *, clock_ms: Callable[[], int]) -> None:
        self.policy = policy
        self.registry = RegistryState()
        self.runs: dict[tuple[str, str], CanaryRun] = {}
        self._by_version: dict[str, list[CanaryRun]] = {}
        self._clock_ms = clock_ms

    # -- inputs -------------------------------------------------------------------------------

    def apply_registry(self, record: RegistryRecord) -> None:
        if self.registry.apply(record) and isinstance(record, LabelMove):
            self._sync(record.name, record.label)

    def _sync(self, name: str, label: str) -> None:
        move = self.registry.label(name, label)
        run = self.runs.get((name, label))
        if run is not None and move is not None and run.move.revision == move.revision:
            return
        if run is not None:
            del self.runs[(name, label)]
        if move is not None and move.canary and move.baseline and self.policy.watches(label):
            self.runs[(name, label)] = CanaryRun(
                move, ArmMetrics(move.canary), ArmMetrics(move.baseline)
            )
            log.info(
                "canary: analysing %s@%s revision %d: %s (%d%%) against %s",
                name, label, move.revision, move.canary, move.weight_of(move.canary), move.baseline,
            )  # fmt: skip
        self._index()

    def _index(self) -> None:
        self._by_version = {}
        for run in self.runs.values():
            if not run.done:
                for version in (run.canary.version, run.baseline.version):
                    self._by_version.setdefault(version, []).append(run)

    def _arms(self, row: Mapping[str, Any], time_key: str, slack_ms: int = 0) -> list[ArmMetrics]:
        runs = self._by_version.get(row.get("prompt_version") or "")
        if not runs:
            return []
        name = row.get("prompt_name") or ""
        at = row.get(time_key)
        arms = []
        for run in runs:
            if name and name != run.move.name:
                continue
            if not isinstance(at, int) or at + slack_ms < run.move.moved_at_ms:
                continue
            arm = run.arm(row["prompt_version"])
            if arm is not None:
                arms.append(arm)
        return arms

    def add_call(self, row: Mapping[str, Any]) -> None:
        for arm in self._arms(row, "start_time"):
            arm.add_call(row)

    def add_guardrail_rollup(self, row: Mapping[str, Any]) -> None:
        # A rollup row covers a minute: one that ends after the move counts.
        for arm in self._arms(row, "window_start", slack_ms=MINUTE_MS):
            arm.add_guardrails(int(row.get("texts") or 0), int(row.get("flagged_texts") or 0))

    def add_score(self, row: Mapping[str, Any]) -> None:
        value = row.get("score_value")
        if not isinstance(value, int | float) or isinstance(value, bool):
            return
        for arm in self._arms(row, "start_time"):
            arm.add_score(str(row.get("name") or ""), float(value))

    def reset_arms(self) -> None:
        """Forget what the arms added up to (before a re-read of the data topics from the moves)."""
        for key, run in list(self.runs.items()):
            if not run.done:
                self.runs[key] = CanaryRun(
                    run.move, ArmMetrics(run.canary.version), ArmMetrics(run.baseline.version)
                )
        self._index()

    @property
    def active(self) -> int:
        return sum(not run.done for run in self.runs.values())

    # -- looks --------------------------------------------------------------------------------

    def due(self) -> list[Decision]:
        """Judge every canary that reached a planned look since the last call (the last look
        reached, if a batch crossed several)."""
        decisions = []
        counts = self.policy.looks.counts()
        for run in list(self.runs.values()):
            if run.done:
                continue
            reached = sum(count <= run.canary.calls for count in counts)
            if reached <= run.looks_done:
                continue
            run.looks_done = reached
            decisions.append(self._judge(run, reached))
        if any(run.done for run in self.runs.values()):
            self._index()
        return decisions

    def _judge(self, run: CanaryRun, look: int) -> Decision:
        result = judge_look(self.policy, look, run.canary, run.baseline, run.memory)
        run.last = result
        final = look >= self.policy.looks.count
        move = run.move
        verdict = CanaryVerdict(
            name=move.name,
            label=move.label,
            revision=move.revision,
            canary_version=run.canary.version,
            baseline_version=run.baseline.version,
            canary_weight=move.weight_of(run.canary.version),
            canary_calls=run.canary.calls,
            baseline_calls=run.baseline.calls,
            evaluated_at=self._clock_ms(),
            alpha=self.policy.alpha,
            result=result,
        )
        if result.outcome is not Outcome.FAIL:
            run.done = final
            return Decision(verdict)
        run.done = True
        rollback = None
        action = CanaryAction.ALERT
        if self.policy.act:
            rollback = self._plan_rollback(run, result)
            if rollback is not None:
                action = CanaryAction.ROLLED_BACK
        verdict = replace(verdict, action=action)
        return Decision(verdict, rollback, self._alert(verdict, rollback))

    def _plan_rollback(self, run: CanaryRun, result: LookResult) -> LabelMove | None:
        move = run.move
        reason = (
            f"canary {run.canary.version} failed at look {result.look} "
            f"({run.canary.calls} canary calls) on {', '.join(result.failed_metrics)}"
        )
        try:
            return self.registry.plan_rollback(
                move.name,
                move.label,
                moved_by=ANALYST,
                reason=reason,
                now_ms=self._clock_ms(),
                automatic=True,
                expected_revision=move.revision,
            )
        except ValueError as exc:
            log.warning("canary: not rolling back %s@%s: %s", move.name, move.label, exc)
            return None

    def _alert(self, verdict: CanaryVerdict, rollback: LabelMove | None) -> AlertEvent:
        failed = ", ".join(verdict.result.failed_metrics)
        if rollback is not None:
            what = f"rolled back to revision {rollback.revision} ({_arms(rollback)})"
            runbook = (
                f"rolled back automatically; to retry: llmwatch prompts label {verdict.name} ..."
            )
        else:
            what = "not rolled back (policy act: false, or the label moved since)"
            runbook = rollback_command(verdict.name, verdict.label)
        return point_alert(
            alert_id=f"canary/{verdict.name}/{verdict.label}/{verdict.revision}",
            slo=f"prompt:{verdict.name}@{verdict.label}",
            rule=ALERT_RULE,
            severity=ALERT_SEVERITY,
            at_ms=verdict.evaluated_at,
            factor=0.0,
            reference_n=verdict.baseline_calls,
            current_n=verdict.canary_calls,
            selector={"prompt_name": verdict.name, "prompt_version": verdict.canary_version},
            description=(
                f"Prompt {verdict.name} canary {verdict.canary_version} failed against "
                f"{verdict.baseline_version} on {failed}; {what}"
            ),
            runbook=runbook,
        )


def _arms(move: LabelMove) -> str:
    return ", ".join(f"{arm.version} {arm.weight}%" for arm in move.arms)
