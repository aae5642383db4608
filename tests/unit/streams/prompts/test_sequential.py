"""The canary statistics by simulation: a 10% canary looked at after every 100 events must not raise
more false alarms than alpha, must catch real regressions, and its intervals must cover the truth.

Runs are vectorised over numpy arrays (cumulative sums per look), so each scenario of a few hundred
runs takes well under a second. Bounds are the nominal rate with a 3-sigma binomial margin.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats

from streams.prompts.sequential import (
    CheckpointSchedule,
    Moments,
    QuantileBand,
    SequentialTest,
    mann_whitney_look,
    msprt_difference,
    quantile_band,
    running_min,
)

ALPHA = 0.05
CANARY_SHARE = 0.1
LOOK_EVERY = 100  # events (canary + baseline) between looks
RUNS = 400
SIGMA = 0.8  # lognormal shape of the continuous metric (cost-like)
BASE_RATE = 0.02
# The verdict waits for the policy's min_samples (30) per arm: the CLT coverage needs them for a
# skewed metric (at ~10 canary values of a lognormal the intervals under-cover, see the module).
MIN_ARM = 30


def _margin(rate: float, runs: int) -> float:
    return 3.0 * math.sqrt(rate * (1.0 - rate) / runs)


@dataclass(frozen=True)
class Metric:
    name: str
    binary: bool
    tau: float

    def draw(self, rng: np.random.Generator, canary: np.ndarray, factor: float) -> np.ndarray:
        """Per-event values; the canary's mean is ``factor`` times the baseline's."""
        scale = np.where(canary, factor, 1.0)
        if self.binary:
            return (rng.random(canary.shape) < BASE_RATE * scale).astype(np.float64)
        return rng.lognormal(0.0, SIGMA, canary.shape) * scale

    def true_difference(self, factor: float) -> float:
        mean = BASE_RATE if self.binary else math.exp(SIGMA**2 / 2.0)
        return mean * (factor - 1.0)


LOGNORMAL = Metric("lognormal", binary=False, tau=0.5)
RATE = Metric("rate", binary=True, tau=0.05)


@dataclass(frozen=True)
class Looks:
    """One value per (run, look)."""

    canary_n: np.ndarray
    p_value: np.ndarray  # the running minimum, as the caller keeps it
    low: np.ndarray
    high: np.ndarray


def _cumulative(mask: np.ndarray, values: np.ndarray, looks: int) -> list[np.ndarray]:
    runs = mask.shape[0]
    parts = (mask.astype(np.float64), values * mask, values * values * mask)
    return [np.cumsum(p.reshape(runs, looks, LOOK_EVERY).sum(axis=2), axis=1) for p in parts]


@functools.cache
def _simulate(metric: Metric, factor: float, events: int, seed: int) -> Looks:
    rng = np.random.default_rng(seed)
    canary = rng.random((RUNS, events)) < CANARY_SHARE
    values = metric.draw(rng, canary, factor)
    looks = events // LOOK_EVERY
    nc, tc, qc = _cumulative(canary, values, looks)
    nb, tb, qb = _cumulative(~canary, values, looks)
    p_value, low, high = (np.empty((RUNS, looks)) for _ in range(3))
    for run in range(RUNS):
        running = 1.0
        for look in range(looks):
            test = msprt_difference(
                Moments(int(nc[run, look]), tc[run, look], qc[run, look]),
                Moments(int(nb[run, look]), tb[run, look], qb[run, look]),
                alpha=ALPHA,
                tau=metric.tau,
                binary=metric.binary,
            )
            running = running_min(running, test.p_value)
            p_value[run, look], low[run, look], high[run, look] = running, test.low, test.high
    return Looks(nc, p_value, low, high)


# --- Moments ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "seed"), [(2, 1), (17, 2), (1000, 3)])
def test_moments_agree_with_numpy(n: int, seed: int) -> None:
    values = np.random.default_rng(seed).lognormal(3.0, 1.0, n)
    one_by_one, aggregated, repeated = Moments(), Moments(), Moments()
    for value in values:
        one_by_one.add(float(value))
    half = n // 2
    for part in (values[:half], values[half:]):
        aggregated.add_sum(len(part), float(part.sum()), float((part**2).sum()))
    for value in values[:half]:
        repeated.add(float(value), count=3)
    for moments in (one_by_one, aggregated):
        assert moments.n == n
        assert moments.mean == pytest.approx(np.mean(values), rel=1e-12)
        assert moments.variance == pytest.approx(np.var(values, ddof=1), rel=1e-9)
    if half:
        tripled = np.repeat(values[:half], 3)
        assert repeated.n == 3 * half
        assert repeated.mean == pytest.approx(np.mean(tripled), rel=1e-12)
        assert repeated.variance == pytest.approx(np.var(tripled, ddof=1), rel=1e-9)


def test_empty_and_single_moments() -> None:
    empty = Moments()
    assert math.isnan(empty.mean) and empty.variance == 0.0
    single = Moments()
    single.add(4.0)
    assert single.mean == 4.0 and single.variance == 0.0


# --- mSPRT: exact values and edge cases -------------------------------------------------------------


def test_msprt_matches_the_mixture_formula() -> None:
    rng = np.random.default_rng(5)
    c_values, b_values = rng.normal(1.5, 1.0, 40), rng.normal(1.0, 1.0, 400)
    canary, baseline = Moments(), Moments()
    canary.add_sum(40, float(c_values.sum()), float((c_values**2).sum()))
    baseline.add_sum(400, float(b_values.sum()), float((b_values**2).sum()))
    tau, alpha = 0.4, 0.05
    d = c_values.mean() - b_values.mean()
    v = c_values.var(ddof=1) / 40 + b_values.var(ddof=1) / 400
    ratio = math.sqrt(v / (v + tau**2)) * math.exp(tau**2 * d**2 / (2 * v * (v + tau**2)))
    half = math.sqrt(v * (v + tau**2) / tau**2 * (math.log((v + tau**2) / v) - 2 * math.log(alpha)))
    test = msprt_difference(canary, baseline, alpha=alpha, tau=tau)
    assert d > 0
    assert test.difference == pytest.approx(d, rel=1e-9)
    assert test.p_value == pytest.approx(min(1.0, 1.0 / ratio), rel=1e-9)
    assert (test.low, test.high) == pytest.approx((d - half, d + half), rel=1e-9)
    assert test.reject is (test.p_value <= alpha)
    swapped = msprt_difference(baseline, canary, alpha=alpha, tau=tau)
    assert (
        swapped.p_value == 1.0 and not swapped.reject
    )  # one-sided: a better canary is not a failure
    assert (swapped.low, swapped.high) == pytest.approx((-d - half, -d + half), rel=1e-9)


def test_confidence_sequence_excludes_zero_exactly_when_p_reaches_alpha() -> None:
    baseline = Moments(n=1000, total=0.0, total_sq=1000.0)  # mean 0, variance ~1
    for mean in np.linspace(0.05, 0.6, 23):
        canary = Moments(n=100, total=100 * mean, total_sq=100 * (1.0 + mean**2))
        test = msprt_difference(canary, baseline, alpha=ALPHA, tau=0.3)
        assert (test.low > 0) == test.reject, test


@pytest.mark.parametrize(
    ("canary", "baseline"),
    [(Moments(1, 5.0, 25.0), Moments(100, 100.0, 200.0)), (Moments(50, 5.0, 9.0), Moments())],
)
def test_too_few_observations_are_never_a_verdict(canary: Moments, baseline: Moments) -> None:
    test = msprt_difference(canary, baseline, alpha=ALPHA, tau=1.0)
    assert (test.low, test.high, test.p_value, test.reject) == (-math.inf, math.inf, 1.0, False)


@pytest.mark.parametrize(("canary_value", "p_value"), [(3.0, 0.0), (2.0, 1.0), (1.0, 1.0)])
def test_identical_constants_give_a_point_interval(canary_value: float, p_value: float) -> None:
    canary, baseline = Moments(), Moments()
    canary.add(canary_value, count=20)
    baseline.add(2.0, count=200)
    d = canary_value - 2.0
    expected = SequentialTest(d, d, d, p_value, p_value <= ALPHA)
    assert msprt_difference(canary, baseline, alpha=ALPHA, tau=1.0) == expected


@pytest.mark.parametrize(("canary_hits", "rejects"), [(0, False), (1, False), (12, True)])
def test_zero_event_rates_are_smoothed(canary_hits: int, rejects: bool) -> None:
    canary = Moments(n=100, total=float(canary_hits), total_sq=float(canary_hits))
    baseline = Moments(n=900, total=0.0, total_sq=0.0)  # no events at all: V > 0 all the same
    test = msprt_difference(canary, baseline, alpha=ALPHA, tau=0.05, binary=True)
    assert test.difference == pytest.approx(canary_hits / 100)
    assert math.isfinite(test.low) and test.low < test.difference < test.high
    assert test.reject is rejects


@pytest.mark.parametrize(
    ("previous", "current", "expected"), [(1.0, 0.3, 0.3), (0.2, 0.9, 0.2), (0.5, 0.5, 0.5)]
)
def test_running_min(previous: float, current: float, expected: float) -> None:
    assert running_min(previous, current) == expected


# --- mSPRT by simulation ------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", [LOGNORMAL, RATE], ids=lambda m: m.name)
def test_aa_false_alarms_stay_below_alpha_however_often_looked_at(metric: Metric) -> None:
    looks = _simulate(metric, 1.0, 3000, seed=11)  # 30 looks per run
    false_alarms = float(np.mean(looks.p_value[:, -1] <= ALPHA))
    assert false_alarms <= ALPHA + _margin(ALPHA, RUNS), f"{metric.name}: {false_alarms:.4f}"


@pytest.mark.parametrize(
    ("metric", "factor", "events"),
    [
        (LOGNORMAL, 1.5, 3000),  # +50% mean: ~300 canary values
        (RATE, 4.0, 4000),  # 2% -> 8%: 400 canary calls (3000 events catch ~82% of runs)
    ],
    ids=["lognormal+50%", "rate2%->8%"],
)
def test_regressions_are_caught(metric: Metric, factor: float, events: int) -> None:
    looks = _simulate(metric, factor, events, seed=12)
    power = float(np.mean(looks.p_value[:, -1] <= ALPHA))
    assert power >= 0.9, f"{metric.name} x{factor}: {power:.4f}"


@pytest.mark.parametrize(
    ("metric", "factor", "events"),
    [(LOGNORMAL, 1.0, 3000), (LOGNORMAL, 1.5, 3000), (RATE, 1.0, 3000), (RATE, 4.0, 4000)],
    ids=["lognormal-aa", "lognormal+50%", "rate-aa", "rate2%->8%"],
)
def test_confidence_sequence_covers_at_every_look(
    metric: Metric, factor: float, events: int
) -> None:
    seed = 11 if factor == 1.0 else 12  # the same runs as the false-alarm and power tests
    looks = _simulate(metric, factor, events, seed=seed)
    truth = metric.true_difference(factor)
    judged = looks.canary_n >= MIN_ARM
    missed = judged & ~((looks.low <= truth) & (truth <= looks.high))
    coverage = 1.0 - float(np.mean(missed.any(axis=1)))
    assert coverage >= 1.0 - ALPHA - _margin(ALPHA, RUNS), f"{metric.name}: {coverage:.4f}"


# --- Planned looks and the rank test -----------------------------------------------------------------


def test_default_schedule() -> None:
    schedule = CheckpointSchedule()
    assert schedule.counts() == (50, 100, 200, 400, 800, 1600, 3200, 6400)
    assert schedule.alpha_per_look(0.01) == pytest.approx(0.00125)


def test_rounded_counts_stay_strictly_increasing() -> None:
    assert CheckpointSchedule(first=1, factor=1.2, looks=5).counts() == (1, 2, 3, 4, 5)
    assert CheckpointSchedule(first=10, factor=1.5, looks=4).counts() == (10, 15, 22, 34)


@pytest.mark.parametrize(
    ("previous", "now", "due"),
    [
        (0, 49, None),
        (0, 50, 0),
        (50, 99, None),
        (49, 100, 1),  # two looks crossed at once: the last one
        (100, 100, None),
        (0, 100_000, 7),
        (6400, 7000, None),
    ],
)
def test_due(previous: int, now: int, due: int | None) -> None:
    assert CheckpointSchedule().due(previous, now) == due


def test_a_doubled_latency_is_caught_at_the_first_look() -> None:
    schedule, rng = CheckpointSchedule(), np.random.default_rng(21)
    first, alpha = schedule.counts()[0], schedule.alpha_per_look(0.01)
    runs = 200
    caught = 0
    for _ in range(runs):
        canary = 2.0 * rng.lognormal(0.0, 0.5, first)
        baseline = rng.lognormal(0.0, 0.5, 9 * first)
        caught += mann_whitney_look(canary, baseline, alpha=alpha).reject
    assert caught >= 0.99 * runs, f"{caught}/{runs}"


def test_aa_rank_false_alarms_over_all_planned_looks() -> None:
    # Eight looks as planned, from 25 canary values (a smaller first look keeps this test fast).
    schedule, rng = CheckpointSchedule(first=25), np.random.default_rng(22)
    alpha, runs = 0.01, 200
    counts = schedule.counts()
    alarms = 0
    for _ in range(runs):
        canary = rng.lognormal(0.0, 0.5, counts[-1])
        baseline = rng.lognormal(0.0, 0.5, 9 * counts[-1])
        alarms += any(
            mann_whitney_look(
                canary[:n], baseline[: 9 * n], alpha=schedule.alpha_per_look(alpha)
            ).reject
            for n in counts
        )
    assert alarms / runs <= alpha + _margin(alpha, runs), f"{alarms}/{runs}"


def test_one_rank_look_is_calibrated() -> None:
    """Not trivially conservative: at one look the A/A rejection rate is about alpha."""
    rng, runs = np.random.default_rng(23), 2000
    p_values = np.array(
        [
            mann_whitney_look(rng.random(50), rng.random(450), alpha=ALPHA).p_value
            for _ in range(runs)
        ]
    )
    assert abs(np.mean(p_values <= ALPHA) - ALPHA) <= _margin(ALPHA, runs)


def test_rank_effect_is_the_common_language_effect_size() -> None:
    rng = np.random.default_rng(24)
    canary, baseline = 2.0 * rng.lognormal(0.0, 0.5, 2000), rng.lognormal(0.0, 0.5, 2000)
    test = mann_whitney_look(canary, baseline, alpha=ALPHA)
    assert test.effect == pytest.approx(test.statistic / (2000 * 2000))
    assert test.effect == pytest.approx(
        stats.norm.cdf(math.log(2.0) / (0.5 * math.sqrt(2))), abs=0.02
    )
    smaller = mann_whitney_look(baseline, canary, alpha=ALPHA)
    assert smaller.p_value > 0.99 and not smaller.reject  # one-sided: a faster canary passes


def test_rank_test_of_an_empty_arm_is_no_verdict() -> None:
    test = mann_whitney_look([], [1.0, 2.0], alpha=ALPHA)
    assert (test.p_value, test.reject) == (1.0, False)


# --- Quantile bands ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("q", "n"), [(0.95, 200), (0.95, 2000), (0.5, 100)])
def test_quantile_band_covers_the_true_quantile(q: float, n: int) -> None:
    rng, runs, confidence = np.random.default_rng(31), 400, 0.95
    truth = math.exp(0.5 * stats.norm.ppf(q))  # lognormal(0, 0.5)
    covered = 0
    for _ in range(runs):
        band = quantile_band(rng.lognormal(0.0, 0.5, n), q, confidence=confidence)
        assert band.low <= band.estimate <= band.high
        covered += band.low <= truth <= band.high
    assert covered / runs >= confidence - _margin(confidence, runs), f"{covered}/{runs}"


@pytest.mark.parametrize("n", [73, 100, 501, 5000])
def test_quantile_band_agrees_with_scipy_quantile_test(n: int) -> None:
    values = np.random.default_rng(n).normal(size=n)
    band = quantile_band(values, 0.95, confidence=0.9)
    interval = stats.quantile_test(values, q=0.0, p=0.95).confidence_interval(0.9)
    assert (band.low, band.high) == (interval.low, interval.high)
    assert band.estimate == pytest.approx(np.quantile(values, 0.95))


def test_quantile_band_with_too_few_values_has_nan_bounds() -> None:
    # p95's upper bound at 95% needs 72 values: P(Binomial(71, 0.95) = 71) > 2.5%.
    band = quantile_band(np.arange(71.0), 0.95, confidence=0.95)
    assert math.isnan(band.high) and 0.0 < band.low < band.estimate
    assert quantile_band(np.arange(72.0), 0.95, confidence=0.95).high == 71.0
    empty = quantile_band([], 0.95, confidence=0.95)
    assert all(math.isnan(x) for x in (empty.estimate, empty.low, empty.high))
    assert isinstance(empty, QuantileBand)


# --- Invalid arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, math.nan])
def test_invalid_alpha(alpha: float) -> None:
    with pytest.raises(ValueError, match=rf"alpha.*got {alpha!r}"):
        msprt_difference(Moments(), Moments(), alpha=alpha, tau=1.0)
    with pytest.raises(ValueError, match=rf"got {alpha!r}"):
        mann_whitney_look([1.0], [2.0], alpha=alpha)
    with pytest.raises(ValueError, match=rf"got {alpha!r}"):
        CheckpointSchedule().alpha_per_look(alpha)


@pytest.mark.parametrize("tau", [0.0, -1.0, math.nan, math.inf])
def test_invalid_tau(tau: float) -> None:
    with pytest.raises(ValueError, match=rf"tau.*got {tau!r}"):
        msprt_difference(Moments(), Moments(), alpha=ALPHA, tau=tau)


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"first": 0}, "first.*got 0"),
        ({"factor": 1.0}, "factor.*got 1.0"),
        ({"factor": math.inf}, "factor.*got inf"),
        ({"looks": 0}, "looks.*got 0"),
    ],
)
def test_invalid_schedule(kwargs: dict[str, float], shown: str) -> None:
    with pytest.raises(ValueError, match=shown):
        CheckpointSchedule(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("q", "confidence", "shown"),
    [(0.0, 0.95, "q.*got 0.0"), (1.0, 0.95, "q.*got 1.0"), (0.5, 1.0, "confidence.*got 1.0")],
)
def test_invalid_quantile_band(q: float, confidence: float, shown: str) -> None:
    with pytest.raises(ValueError, match=shown):
        quantile_band([1.0, 2.0], q, confidence=confidence)


def test_invalid_counts() -> None:
    with pytest.raises(ValueError, match=r"count.*got -1"):
        Moments().add(1.0, count=-1)
    with pytest.raises(ValueError, match=r"n.*got -2"):
        Moments().add_sum(-2, 0.0, 0.0)
