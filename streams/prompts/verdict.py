"""The Kayenta-style verdict of one look at a canary: each metric passes, is marginal or fails, and the
canary fails when a critical metric fails.

Per metric (tolerance ``t`` from the policy; the canary may be worse by up to ``t`` without failing):
- ``rank`` (latency): Mann-Whitney, one-sided, of the canary's values divided by ``1 + t`` against the
  baseline's, at the planned look's level ``alpha_metric / looks``; it fails when the test rejects and
  the canary's p95 also exceeds the baseline's by more than ``t``.
- ``rate`` / ``mean``: the mixture SPRT of ``canary - baseline - t`` (``t`` absolute for rates, relative
  to the baseline's mean for amounts and scores), at ``alpha_metric``; the caller keeps the running
  minimum of its p-value over looks (``MetricMemory``), so it fails once that minimum reaches the level.
- cost per request and output tokens are compared model by model (post-stratified at the canary's
  model mix: ``sum_m w_m (canary_m - baseline_m)``, ``w_m`` the canary's share of model ``m``), so a
  canary is judged on its prompt, not on the traffic mix it happened to get;
- marginal: the observed degradation exceeds ``t``, not yet significantly; waiting: fewer than the
  metric's ``min_samples`` observations in an arm.

Guarantee: the level of each metric is ``alpha / metrics`` (Bonferroni), so a canary that is no worse
than its baseline by more than the tolerances fails with probability at most the policy's ``alpha``
however many looks are taken (under the tests' independence assumption, see ``sequential``). Nothing
here does I/O.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

from streams.prompts.arms import STRATIFIED, ArmMetrics
from streams.prompts.policy import LabelPolicy, MetricKind, MetricRule
from streams.prompts.sequential import (
    Moments,
    mann_whitney_look,
    msprt_difference,
    msprt_estimate,
    quantile_band,
    running_min,
)

__all__ = ["LookResult", "MetricMemory", "MetricResult", "Outcome", "judge_look"]

P95: float = 0.95
# The p95 bands drawn on the dashboard are per-look 95% intervals; the decision is the rank test's.
BAND_CONFIDENCE: float = 0.95
# The mixture's scale: effects about the tolerance's size are what the test is tuned to find.
MIN_TAU_SHARE: float = 0.05
MIN_RATE_TAU: float = 0.01


class Outcome(enum.StrEnum):
    PASS = "pass"
    MARGINAL = "marginal"
    FAIL = "fail"
    WAITING = "waiting"


@dataclass(frozen=True, slots=True)
class MetricResult:
    metric: str
    canary_n: int
    baseline_n: int
    canary_value: float
    baseline_value: float
    diff_low: float  # the confidence interval of canary - baseline at this look
    diff_high: float
    p_value: float
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class LookResult:
    look: int
    outcome: Outcome
    score: float  # percent of judged metrics that pass
    metrics: tuple[MetricResult, ...]

    @property
    def failed_metrics(self) -> tuple[str, ...]:
        return tuple(m.metric for m in self.metrics if m.outcome is Outcome.FAIL)


@dataclass(slots=True)
class MetricMemory:
    """Running minima of the always-valid p-values, per metric, across the looks of one canary."""

    p_values: dict[str, float] = field(default_factory=dict)

    def update(self, metric: str, p_value: float) -> float:
        value = running_min(self.p_values.get(metric, 1.0), p_value)
        self.p_values[metric] = value
        return value


def _waiting(rule: MetricRule, canary_n: int, baseline_n: int, c: float, b: float) -> MetricResult:
    return MetricResult(
        rule.name, canary_n, baseline_n, c, b, -math.inf, math.inf, 1.0, Outcome.WAITING
    )


def _rank_metric(
    rule: MetricRule, canary: ArmMetrics, baseline: ArmMetrics, alpha: float
) -> MetricResult:
    c_values = np.frombuffer(canary.samples_of(rule.name), dtype=np.float64)
    b_values = np.frombuffer(baseline.samples_of(rule.name), dtype=np.float64)
    if min(len(c_values), len(b_values)) < rule.min_samples:
        c95 = float(np.percentile(c_values, 95)) if len(c_values) else math.nan
        b95 = float(np.percentile(b_values, 95)) if len(b_values) else math.nan
        return _waiting(rule, len(c_values), len(b_values), c95, b95)
    factor = 1.0 + rule.max_increase
    test = mann_whitney_look(c_values / factor, b_values, alpha=alpha)
    c_band = quantile_band(c_values, P95, confidence=BAND_CONFIDENCE)
    b_band = quantile_band(b_values, P95, confidence=BAND_CONFIDENCE)
    beyond = c_band.estimate > b_band.estimate * factor
    if test.reject and beyond:
        outcome = Outcome.FAIL
    elif beyond:
        outcome = Outcome.MARGINAL
    else:
        outcome = Outcome.PASS
    return MetricResult(
        rule.name,
        len(c_values),
        len(b_values),
        c_band.estimate,
        b_band.estimate,
        c_band.low - b_band.high,
        c_band.high - b_band.low,
        test.p_value,
        outcome,
    )


def _oriented(moments: Moments, higher_is_worse: bool) -> Moments:
    if higher_is_worse:
        return moments
    return Moments(n=moments.n, total=-moments.total, total_sq=moments.total_sq)


def _mean_metric(
    rule: MetricRule,
    canary: ArmMetrics,
    baseline: ArmMetrics,
    alpha: float,
    memory: MetricMemory,
) -> MetricResult:
    if rule.name in STRATIFIED and rule.higher_is_worse:
        estimate = _stratified(rule, canary, baseline)
        if estimate is not None:
            return _stratified_metric(rule, estimate, alpha, memory)
    c, b = canary.moments_of(rule.name), baseline.moments_of(rule.name)
    if min(c.n, b.n) < rule.min_samples:
        return _waiting(rule, c.n, b.n, c.mean, b.mean)
    binary = rule.kind is MetricKind.RATE
    tolerance = rule.max_increase if binary else rule.max_increase * abs(b.mean)
    floor = (
        MIN_RATE_TAU if binary else MIN_TAU_SHARE * max(abs(b.mean), math.sqrt(b.variance), 1e-12)
    )
    tau = max(tolerance, floor)
    worse = rule.higher_is_worse
    oc, ob = _oriented(c, worse), _oriented(b, worse)
    # H0: (canary - baseline), oriented so that larger is worse, is at most the tolerance.
    shifted = Moments(
        n=ob.n,
        total=ob.total + tolerance * ob.n,
        total_sq=ob.total_sq + 2 * tolerance * ob.total + tolerance**2 * ob.n,
    )
    test = msprt_difference(oc, shifted, alpha=alpha, tau=tau, binary=binary)
    p_value = memory.update(rule.name, test.p_value)
    degradation = (oc.mean - ob.mean) - tolerance
    interval = msprt_difference(oc, ob, alpha=alpha, tau=tau, binary=binary)
    low, high = (interval.low, interval.high) if worse else (-interval.high, -interval.low)
    if p_value <= alpha:
        outcome = Outcome.FAIL
    elif degradation > 0:
        outcome = Outcome.MARGINAL
    else:
        outcome = Outcome.PASS
    return MetricResult(rule.name, c.n, b.n, c.mean, b.mean, low, high, p_value, outcome)


@dataclass(frozen=True, slots=True)
class _Estimate:
    difference: float
    variance: float
    canary_value: float
    baseline_value: float  # at the canary's model mix
    canary_n: int
    baseline_n: int


def _stratified(rule: MetricRule, canary: ArmMetrics, baseline: ArmMetrics) -> _Estimate | None:
    """The post-stratified difference over the models both arms have at least two values of."""
    c_strata = canary.strata.get(rule.name, {})
    b_strata = baseline.strata.get(rule.name, {})
    common = [m for m, c in c_strata.items() if c.n >= 2 and b_strata.get(m, Moments()).n >= 2]
    total = sum(c_strata[m].n for m in common)
    if total < rule.min_samples:
        return None
    difference = variance = c_mix = b_mix = 0.0
    for model in common:
        c, b = c_strata[model], b_strata[model]
        weight = c.n / total
        difference += weight * (c.mean - b.mean)
        variance += weight**2 * (c.variance / c.n + b.variance / b.n)
        c_mix += weight * c.mean
        b_mix += weight * b.mean
    baseline_n = sum(b_strata[m].n for m in common)
    return _Estimate(difference, variance, c_mix, b_mix, total, baseline_n)


def _stratified_metric(
    rule: MetricRule, estimate: _Estimate, alpha: float, memory: MetricMemory
) -> MetricResult:
    tolerance = rule.max_increase * abs(estimate.baseline_value)
    floor = MIN_TAU_SHARE * max(abs(estimate.baseline_value), 1e-12)
    tau = max(tolerance, floor)
    test = msprt_estimate(estimate.difference - tolerance, estimate.variance, alpha=alpha, tau=tau)
    p_value = memory.update(rule.name, test.p_value)
    interval = msprt_estimate(estimate.difference, estimate.variance, alpha=alpha, tau=tau)
    if p_value <= alpha:
        outcome = Outcome.FAIL
    elif estimate.difference > tolerance:
        outcome = Outcome.MARGINAL
    else:
        outcome = Outcome.PASS
    return MetricResult(
        rule.name, estimate.canary_n, estimate.baseline_n, estimate.canary_value,
        estimate.baseline_value, interval.low, interval.high, p_value, outcome,
    )  # fmt: skip


def judge_look(
    policy: LabelPolicy,
    look: int,
    canary: ArmMetrics,
    baseline: ArmMetrics,
    memory: MetricMemory,
) -> LookResult:
    """Judge every metric of the policy at one look, and combine them into the canary's verdict."""
    alpha = policy.alpha_per_metric
    results = []
    for rule in policy.metrics:
        if rule.kind is MetricKind.RANK:
            results.append(_rank_metric(rule, canary, baseline, alpha / policy.looks.count))
        else:
            results.append(_mean_metric(rule, canary, baseline, alpha, memory))
    judged = [r for r in results if r.outcome is not Outcome.WAITING]
    score = 100.0 * sum(r.outcome is Outcome.PASS for r in judged) / len(judged) if judged else 0.0
    critical = {rule.name for rule in policy.metrics if rule.critical}
    if any(r.outcome is Outcome.FAIL and r.metric in critical for r in results):
        outcome = Outcome.FAIL
    elif not judged:
        outcome = Outcome.WAITING
    elif any(r.outcome in (Outcome.FAIL, Outcome.MARGINAL) for r in judged):
        outcome = Outcome.MARGINAL
    else:
        outcome = Outcome.PASS
    return LookResult(look, outcome, score, tuple(results))
