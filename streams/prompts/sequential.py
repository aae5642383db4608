"""Always-valid statistics for canary analysis: looking often must not inflate false alarms.

- :func:`msprt_difference`: the two-sample mixture sequential probability ratio test (mSPRT) of
  Johari, Pekelis and Walsh, "Always Valid Inference: Continuous Monitoring of A/B Tests" (Operations
  Research, 2022), as in Optimizely's Stats Engine. With the difference of the arms' means ``D``, its
  plug-in variance ``V = s_c²/n_c + s_b²/n_b`` and a N(0, tau²) mixture over the effect, the likelihood
  ratio is ``sqrt(V / (V + tau²)) * exp(tau² D² / (2 V (V + tau²)))``. The mixture is two-sided; the
  one-sided p-value of H0 ``D <= 0`` is ``min(1, 1 / ratio)`` when ``D > 0``, else 1 (conservative), and
  the inversion ``D ± sqrt(V (V + tau²) / tau² * (log((V + tau²) / V) + 2 log(1 / alpha)))`` is a
  confidence sequence. Rates (``binary``) use Laplace-smoothed ``(x + 1) / (n + 2)`` arm variances, so a
  zero-event arm does not give ``V = 0``. Guarantee: under H0 the probability that the running minimum
  of the p-value (:func:`running_min`) ever falls to alpha is at most alpha, and the confidence
  sequence misses the true difference at some look with probability at most alpha, however often and
  at whatever (data-dependent) times it is looked at; asymptotically, through the central limit
  theorem with the plug-in variance (small arms of a skewed metric are only approximately covered).
- :func:`mann_whitney_look`: a one-sided Mann-Whitney U test at a planned look, as Kayenta does for
  latency; with :class:`CheckpointSchedule` each of ``looks`` looks is tested at ``alpha / looks``, so the
  chance of any false alarm over all looks is at most alpha by the union bound (Bonferroni), whatever
  the dependence between looks.
- :func:`quantile_band`: a distribution-free confidence interval for a quantile from order statistics;
  it covers the quantile of a continuous distribution with probability >= ``confidence`` (exact,
  binomial), and a bound is nan when there are too few values for it (p95's upper bound at 95%
  needs 72).

Assumption (all three): observations are independent. A user's calls are correlated and the split is
sticky per user, so heavy users make the tests somewhat optimistic; see docs/prompts.md. Pure
computation, nothing here blocks: an mSPRT look is O(1), a rank test O(n log n).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "CheckpointSchedule",
    "Moments",
    "QuantileBand",
    "RankTest",
    "SequentialTest",
    "mann_whitney_look",
    "msprt_difference",
    "msprt_estimate",
    "quantile_band",
    "running_min",
]

Values = Sequence[float] | np.ndarray


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


@dataclass(slots=True)
class Moments:
    """Sufficient statistics of one arm's metric: count, sum and sum of squares (O(1) memory)."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    def add(self, value: float, count: int = 1) -> None:
        """``count`` observations of ``value`` (a weighted row adds the same value ``count`` times)."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count!r}")
        self.n += count
        self.total += value * count
        self.total_sq += value * value * count

    def add_sum(self, n: int, total: float, total_sq: float) -> None:
        """Aggregated observations (e.g. a per-minute rollup's count, sum and sum of squares)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n!r}")
        self.n += n
        self.total += total
        self.total_sq += total_sq

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """The unbiased sample variance (0 with fewer than two observations)."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))


@dataclass(frozen=True, slots=True)
class SequentialTest:
    difference: float  # canary mean - baseline mean
    low: float  # the always-valid (1 - alpha) confidence sequence of the difference, at this look
    high: float
    p_value: float  # always-valid p-value of H0: difference <= 0 (larger is worse)
    reject: bool


def running_min(previous: float, current: float) -> float:
    """Always-valid p-values are running minima over the looks."""
    return min(previous, current)


def _arm_variance(m: Moments, binary: bool) -> float:
    if binary:
        smoothed = (m.total + 1.0) / (m.n + 2.0)  # Laplace: a zero-event arm has variance > 0
        return smoothed * (1.0 - smoothed)
    return m.variance


def msprt_difference(
    canary: Moments, baseline: Moments, *, alpha: float, tau: float, binary: bool = False
) -> SequentialTest:
    """The mSPRT of canary mean - baseline mean at this look; see the module docstring."""
    difference = canary.mean - baseline.mean  # nan while an arm is empty
    if canary.n < 2 or baseline.n < 2:
        _check_args(alpha, tau)
        return SequentialTest(difference, -math.inf, math.inf, 1.0, False)
    v = _arm_variance(canary, binary) / canary.n + _arm_variance(baseline, binary) / baseline.n
    return msprt_estimate(difference, v, alpha=alpha, tau=tau)


def _check_args(alpha: float, tau: float) -> None:
    _check_alpha(alpha)
    if not tau > 0 or not math.isfinite(tau):
        raise ValueError(f"tau must be a positive finite number, got {tau!r}")


def msprt_estimate(
    difference: float, variance: float, *, alpha: float, tau: float
) -> SequentialTest:
    """The mSPRT of any asymptotically normal estimate of a difference with plug-in ``variance``
    (e.g. a post-stratified one, ``streams.prompts.verdict``); same guarantee."""
    _check_args(alpha, tau)
    if not math.isfinite(difference) or not math.isfinite(variance):
        return SequentialTest(difference, -math.inf, math.inf, 1.0, False)
    v = variance
    if v <= 0.0:
        p_value = 0.0 if difference > 0 else 1.0
        return SequentialTest(difference, difference, difference, p_value, p_value <= alpha)
    t2 = tau * tau
    log_ratio = 0.5 * math.log(v / (v + t2)) + t2 * difference**2 / (2.0 * v * (v + t2))
    p_value = 1.0 if difference <= 0 else min(1.0, math.exp(-log_ratio))
    half = math.sqrt(v * (v + t2) / t2 * (math.log((v + t2) / v) + 2.0 * math.log(1.0 / alpha)))
    return SequentialTest(
        difference, difference - half, difference + half, p_value, p_value <= alpha
    )


@dataclass(frozen=True, slots=True)
class CheckpointSchedule:
    """Planned looks at ``first``, ``first * factor``, ... canary samples (``looks`` of them)."""

    first: int = 50
    factor: float = 2.0
    looks: int = 8

    def __post_init__(self) -> None:
        if self.first < 1:
            raise ValueError(f"first must be >= 1, got {self.first!r}")
        if not 1.0 < self.factor < math.inf:
            raise ValueError(f"factor must be a finite number > 1, got {self.factor!r}")
        if self.looks < 1:
            raise ValueError(f"looks must be >= 1, got {self.looks!r}")

    def counts(self) -> tuple[int, ...]:
        """Canary sample counts of the looks, strictly increasing (a rounded tie moves up by one)."""
        counts: list[int] = []
        for index in range(self.looks):
            planned = round(self.first * self.factor**index)
            counts.append(max(planned, counts[-1] + 1) if counts else planned)
        return tuple(counts)

    def alpha_per_look(self, alpha: float) -> float:
        _check_alpha(alpha)
        return alpha / self.looks

    def due(self, previous_canary_n: int, canary_n: int) -> int | None:
        """The index of the last look crossed in (previous, now], or None."""
        crossed = [i for i, c in enumerate(self.counts()) if previous_canary_n < c <= canary_n]
        return crossed[-1] if crossed else None


@dataclass(frozen=True, slots=True)
class RankTest:
    statistic: float
    p_value: float
    reject: bool
    effect: float  # P(canary > baseline) = U / (n_c n_b)


def mann_whitney_look(canary: Values, baseline: Values, *, alpha: float) -> RankTest:
    """One-sided (canary greater) Mann-Whitney U, asymptotic with continuity correction."""
    _check_alpha(alpha)
    c, b = np.asarray(canary, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if len(c) == 0 or len(b) == 0:
        return RankTest(math.nan, 1.0, False, math.nan)
    result = stats.mannwhitneyu(
        c, b, alternative="greater", method="asymptotic", use_continuity=True
    )
    u, p_value = float(result.statistic), float(result.pvalue)
    if math.isnan(p_value):  # nan values in the input: no evidence
        p_value = 1.0
    return RankTest(u, p_value, p_value <= alpha, u / (len(c) * len(b)))


@dataclass(frozen=True, slots=True)
class QuantileBand:
    estimate: float
    low: float
    high: float


def quantile_band(values: Values, q: float, *, confidence: float) -> QuantileBand:
    """The ``q`` quantile and a distribution-free (order-statistic) confidence interval for it."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n == 0:
        return QuantileBand(math.nan, math.nan, math.nan)
    estimate = float(np.quantile(x, q))
    half = (1.0 - confidence) / 2.0
    # Ranks (1-based) whose order statistics bracket the quantile with the binomial's probability.
    lo_rank = int(stats.binom.ppf(half, n, q))
    hi_rank = int(stats.binom.ppf(1.0 - half, n, q)) + 1
    low = float(x[lo_rank - 1]) if lo_rank >= 1 else math.nan
    high = float(x[hi_rank - 1]) if hi_rank <= n else math.nan
    return QuantileBand(estimate, low, high)
