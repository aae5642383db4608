"""Declarative sampling of live LLM calls for asynchronous LLM-as-judge scoring: the decisions.

The sampling file (its shape, parsing and errors: :class:`SamplingError`) is
``streams.evaluation.sampling_rules``; this module applies a parsed :class:`SamplingConfig` to calls.

Determinism: :func:`trace_fraction` is the first 8 bytes of BLAKE2b(trace id) / 2**64, the same in every
process and Python version, and no rule salts it: rules with the same rate sample exactly the same
traces and a lower rate samples a subset of a higher one. All calls of one trace share the fraction.

Decisions (:meth:`Sampler.decide`): every rule, in file order, whose filter matches and that fires (by
rate or trigger) keeps the rubrics and metrics that apply to the call (default: ``groundedness`` needs
retrieval context, ``correctness`` and every metric need a reference); a rule left with nothing does not
fire. A rule whose own budget would be exceeded is dropped (``capped[rule]``); if the union of what is
left would exceed the overall budget, nothing is sent (``capped["<overall>"]``). A decision costs one
judge call per rubric (metrics are computed locally: no calls, no USD) and ``cost_of(call, rubrics)``
USD. The reason is ``always:<trigger>`` of the first rule that fired by a trigger, else the first rule's
name.

Budgets are sliding windows: judge calls over the last 60 s, USD over the last 3600 s, kept in 1 s and
10 s buckets (at most 62 and 362 per budget), so memory is bounded whatever the traffic; a bucket leaves
the window once all of it is older than the window, so a cap may hold up to one bucket longer, never
shorter. A clock that steps back adds to the newest bucket.

No I/O here: a :class:`Sampler` calls only ``clock_ms`` and ``cost_of``, never blocks, and is not
thread-safe (use one per consumer thread).
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from producers.events import SpanKind, Status
from streams.evaluation.sampling_rules import (
    CALLS_PER_MINUTE,
    OVERALL_NAME,
    USD_PER_HOUR,
    Budget,
    SamplingConfig,
    Trigger,
)

__all__ = [
    "BUCKET_MS",
    "OVERALL",
    "RUBRIC_NEEDS",
    "WINDOW_MS",
    "Candidate",
    "Decision",
    "Sampler",
    "metric_applicable",
    "rubric_applicable",
    "trace_fraction",
]

# The key of the overall budget in Sampler.capped (OVERALL_NAME in counters() and biting()).
OVERALL: Final = "<overall>"

# Sliding-window length and bucket size per limit.
WINDOW_MS: Final[Mapping[str, int]] = {CALLS_PER_MINUTE: 60_000, USD_PER_HOUR: 3_600_000}
BUCKET_MS: Final[Mapping[str, int]] = {CALLS_PER_MINUTE: 1_000, USD_PER_HOUR: 10_000}
# biting() lists the budgets that refused something this recently.
BITE_MEMORY_MS: Final = 60_000
# Slack for float sums of USD against a cap (0.1 + 0.2 > 0.3).
_USD_SLACK: Final = 1e-9
_FRACTION_BYTES: Final = 8
_FRACTION_SCALE: Final = float(2 ** (8 * _FRACTION_BYTES))

# Rubric -> what the call must carry for it to apply ("context": retrieved text, "reference": expected
# answer). Used by the default rubric_applicable.
RUBRIC_NEEDS: Final[Mapping[str, Literal["context", "reference"]]] = {
    "groundedness": "context",
    "correctness": "reference",
}


# --- decisions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the sampler knows of one call. ``trace_id``: the call's trace id (or its event id when it
    has none): the sampling key."""

    trace_id: str
    service: str
    environment: str = "production"
    model: str = ""
    prompt_name: str | None = None
    prompt_version: str | None = None
    span_kind: str = SpanKind.LLM.value
    status: Literal["ok", "error"] = "ok"
    guardrail_hit: bool = False
    negative_feedback: bool = False
    has_reference: bool = False
    has_context: bool = False
    # Characters of text the judge would read (input, output, reference, context): for cost_of.
    text_chars: int = 0

    def triggered(self, trigger: Trigger) -> bool:
        if trigger == "error":
            return self.status == Status.ERROR.value
        if trigger == "guardrail":
            return self.guardrail_hit
        return self.negative_feedback


@dataclass(frozen=True, slots=True)
class Decision:
    """A call to send to the judge: the rules that fired, what to apply, why, and the estimated cost."""

    rules: tuple[str, ...]
    rubrics: tuple[str, ...]
    metrics: tuple[str, ...]
    reason: str
    estimated_cost_usd: float


def trace_fraction(trace_id: str) -> float:
    """A fraction in [0, 1) fixed by the trace id: BLAKE2b's first 8 bytes / 2**64 (no salt)."""
    digest = hashlib.blake2b(trace_id.encode("utf-8"), digest_size=_FRACTION_BYTES).digest()
    return int.from_bytes(digest, "big") / _FRACTION_SCALE


def rubric_applicable(rubric: str, call: Candidate) -> bool:
    """Default: :data:`RUBRIC_NEEDS` (groundedness needs context, correctness a reference)."""
    need = RUBRIC_NEEDS.get(rubric)
    if need == "context":
        return call.has_context
    if need == "reference":
        return call.has_reference
    return True


def metric_applicable(metric: str, call: Candidate) -> bool:
    """Default: every metric compares the output with a reference."""
    return call.has_reference


class _Window:
    """A sum over a sliding window, in buckets (see the module docstring)."""

    __slots__ = ("_bucket_ms", "_buckets", "_length_ms", "_total")

    def __init__(self, length_ms: int, bucket_ms: int) -> None:
        self._length_ms = length_ms
        self._bucket_ms = bucket_ms
        # [bucket index, amount]; at most length/bucket + 1 live after a prune, +1 for safety.
        self._buckets: deque[list[float]] = deque(maxlen=length_ms // bucket_ms + 2)
        self._total = 0.0

    def total(self, now_ms: int) -> float:
        self._prune(now_ms)
        return self._total

    def add(self, now_ms: int, amount: float) -> None:
        self._prune(now_ms)
        index = now_ms // self._bucket_ms
        if self._buckets and self._buckets[-1][0] >= index:
            self._buckets[-1][1] += amount
        else:
            if len(self._buckets) == self._buckets.maxlen:
                self._total -= self._buckets.popleft()[1]
            self._buckets.append([index, amount])
        self._total += amount

    def _prune(self, now_ms: int) -> None:
        horizon = now_ms - self._length_ms  # an event at t <= horizon is out of the window
        while self._buckets and (self._buckets[0][0] + 1) * self._bucket_ms - 1 <= horizon:
            self._total -= self._buckets.popleft()[1]
        if not self._buckets:
            self._total = 0.0


class _Meter:
    """One budget's windows and when each of its limits last refused something."""

    __slots__ = ("bit_at", "caps", "windows")

    def __init__(self, budget: Budget) -> None:
        self.caps = budget.limits()
        self.windows = {name: _Window(WINDOW_MS[name], BUCKET_MS[name]) for name in self.caps}
        self.bit_at: dict[str, int] = {}

    def refuses(self, now_ms: int, calls: int, usd: float) -> bool:
        """Whether adding ``calls`` and ``usd`` would exceed a limit; records the limits that bite."""
        amounts = {CALLS_PER_MINUTE: float(calls), USD_PER_HOUR: usd}
        over = [
            name
            for name, cap in self.caps.items()
            if amounts[name] > 0
            and self.windows[name].total(now_ms) + amounts[name]
            > cap + (_USD_SLACK if name == USD_PER_HOUR else 0.0)
        ]
        for name in over:
            self.bit_at[name] = now_ms
        return bool(over)

    def charge(self, now_ms: int, calls: int, usd: float) -> None:
        amounts = {CALLS_PER_MINUTE: float(calls), USD_PER_HOUR: usd}
        for name, window in self.windows.items():
            if amounts[name] > 0:
                window.add(now_ms, amounts[name])

    def used(self, now_ms: int) -> dict[str, float]:
        return {name: window.total(now_ms) for name, window in self.windows.items()}


@dataclass(frozen=True, slots=True)
class _Fired:
    rule: str
    trigger: str | None
    rubrics: tuple[str, ...]
    metrics: tuple[str, ...]
    cost_usd: float


CostOf = Callable[[Candidate, tuple[str, ...]], float]
Applicable = Callable[[str, Candidate], bool]


class Sampler:
    """Decides which calls go to the judge, under the rules and budgets of one :class:`SamplingConfig`.

    ``cost_of(call, rubrics)``: estimated USD of judging ``call`` on ``rubrics`` (called only with at
    least one rubric). ``clock_ms``: now, epoch ms. ``applicable`` / ``metric_applicable``: whether a
    rubric / metric can be applied to a call (defaults: :func:`rubric_applicable`,
    :func:`metric_applicable`).
    """

    def __init__(
        self,
        config: SamplingConfig,
        *,
        cost_of: CostOf,
        clock_ms: Callable[[], int],
        applicable: Applicable = rubric_applicable,
        metric_applicable: Applicable = metric_applicable,
    ) -> None:
        self.config = config
        self._cost_of = cost_of
        self._clock_ms = clock_ms
        self._applicable = applicable
        self._metric_applicable = metric_applicable
        self._meters = {rule.name: _Meter(rule.budget) for rule in config.rules if rule.budget}
        self._overall = _Meter(config.budget) if config.budget is not None else None
        self.considered = 0
        self.decided = 0
        self.sampled: dict[str, int] = dict.fromkeys(config.rule_names, 0)
        self.capped: dict[str, int] = dict.fromkeys((*config.rule_names, OVERALL), 0)

    def decide(self, call: Candidate, *, triggers_only: bool = False) -> Decision | None:
        """The decision for one call, or None when no rule fires or a budget refuses it.

        ``triggers_only``: rules fire only by an ``always`` trigger, never by rate (a call offered
        again because feedback came after it: its rate decision was taken when it was first seen)."""
        self.considered += 1
        now = self._clock_ms()
        fraction = trace_fraction(call.trace_id)
        fired: list[_Fired] = []
        for rule in self.config.rules:
            if not rule.match.matches(call):
                continue
            trigger = next((t for t in rule.always if call.triggered(t)), None)
            if trigger is None and (triggers_only or not fraction < rule.rate):
                continue
            rubrics = tuple(r for r in rule.rubrics if self._applicable(r, call))
            metrics = tuple(m for m in rule.metrics if self._metric_applicable(m, call))
            if not rubrics and not metrics:
                continue
            cost = self._cost(call, rubrics)
            meter = self._meters.get(rule.name)
            if meter is not None and meter.refuses(now, len(rubrics), cost):
                self.capped[rule.name] += 1
                continue
            fired.append(_Fired(rule.name, trigger, rubrics, metrics, cost))
        if not fired:
            return None
        rubrics = tuple(dict.fromkeys(r for f in fired for r in f.rubrics))
        metrics = tuple(dict.fromkeys(m for f in fired for m in f.metrics))
        cost = self._cost(call, rubrics)
        if self._overall is not None:
            if self._overall.refuses(now, len(rubrics), cost):
                self.capped[OVERALL] += 1
                return None
            self._overall.charge(now, len(rubrics), cost)
        for f in fired:
            meter = self._meters.get(f.rule)
            if meter is not None:
                meter.charge(now, len(f.rubrics), f.cost_usd)
            self.sampled[f.rule] += 1
        self.decided += 1
        reason = next((f"always:{f.trigger}" for f in fired if f.trigger), fired[0].rule)
        return Decision(
            rules=tuple(f.rule for f in fired),
            rubrics=rubrics,
            metrics=metrics,
            reason=reason,
            estimated_cost_usd=cost,
        )

    def _cost(self, call: Candidate, rubrics: tuple[str, ...]) -> float:
        if not rubrics:
            return 0.0
        cost = self._cost_of(call, rubrics)
        if not isinstance(cost, int | float) or not math.isfinite(cost) or cost < 0:
            raise ValueError(
                f"cost_of must return a finite USD amount >= 0 for rubrics {rubrics!r}, got {cost!r}"
            )
        return float(cost)

    def counters(self) -> dict[str, int]:
        """Flat counters for pipeline metrics: ``considered``, ``decided``, ``sampled.<rule>``,
        ``capped.<rule>``, ``capped.overall`` (every rule listed, zeros included)."""
        out = {"considered": self.considered, "decided": self.decided}
        out.update({f"sampled.{name}": n for name, n in self.sampled.items()})
        out.update(
            {
                f"capped.{OVERALL_NAME if name == OVERALL else name}": n
                for name, n in self.capped.items()
            }
        )
        return out

    def biting(self) -> list[str]:
        """``<rule>.<limit>`` / ``overall.<limit>`` of the budgets that refused a call in the last
        minute, rules in file order, then overall."""
        now = self._clock_ms()
        meters = [*self._meters.items()]
        if self._overall is not None:
            meters.append((OVERALL_NAME, self._overall))
        return [
            f"{name}.{limit}"
            for name, meter in meters
            for limit, at in sorted(meter.bit_at.items())
            if now - at < BITE_MEMORY_MS
        ]

    def usage(self) -> dict[str, dict[str, float]]:
        """What each budget has used in its windows: ``{rule or 'overall': {limit: used}}``."""
        now = self._clock_ms()
        out = {name: meter.used(now) for name, meter in self._meters.items()}
        if self._overall is not None:
            out[OVERALL_NAME] = self._overall.used(now)
        return out
