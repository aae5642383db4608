"""Paired comparison of two evaluation runs on the same cases and seeds: is the candidate worse?

Input per metric: for each case, the baseline's and the candidate's scores, one per seed, in the same
seed order (the eval runner passes each seed as the request's ``seed``, so seed *i* of both runs pairs).
A metric is either *continuous* (BLEU, chrF, ROUGE-L, BERTScore, a rubric score; higher is better) or
*pass/fail* (exact match, a rubric's pass label), given as 1.0 / 0.0.

What :func:`compare_runs` reports per metric:

- the mean of the candidate minus the baseline over cases (each case's seeds averaged first, so a case
  counts once whatever its seed count), with a paired bootstrap confidence interval of that mean
  (``scipy.stats.bootstrap`` over cases, percentile method, fixed ``random_state``);
- the p-value of the one-sided test "candidate worse": continuous metrics use the Wilcoxon signed-rank
  test on the per-case mean differences (``scipy.stats.wilcoxon``, zero differences split); pass/fail
  metrics use the exact McNemar test on the (case, seed) pairs (a binomial test on the discordant pairs,
  ``scipy.stats.binomtest``), whose validity needs only that discordant pairs split evenly when there is
  no difference, which holds for any mix of easy and hard cases;
- the Holm-adjusted p-value across the metrics compared in one run, and ``regression`` = adjusted
  p < ``alpha``. Holm is computed here (:func:`holm_adjust`, checked against statsmodels'
  ``multipletests(method="holm")`` in the tests) because statsmodels runs a full ``gc.collect()`` on
  every Holm call, which costs tens of milliseconds to seconds in a large process such as the judge.
- for pass/fail metrics, pass@k and pass^k per run (unbiased estimators from n seeds with c passes:
  ``1 - C(n-c, k) / C(n, k)`` and ``C(c, k) / C(n, k)``, averaged over cases).

Calibration (``tests/unit/streams/evaluation/test_compare.py``, by simulation): two identical noisy
systems are called a regression in at most 5% of 200 comparisons at alpha 0.05, and a true 10-point drop
in pass rate is found in at least 80% of runs at the sample size ``docs/evaluation.md`` recommends.

Errors name the bad value: mismatched case sets, seed counts that differ between the runs for a case, an
empty metric. Pure; nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "DEFAULT_ALPHA",
    "MetricComparison",
    "compare_runs",
    "holm_adjust",
    "pass_at_k",
    "pass_hat_k",
]

DEFAULT_ALPHA: Final = 0.05
CONFIDENCE: Final = 0.95
BOOTSTRAP_RESAMPLES: Final = 2000
BOOTSTRAP_SEED: Final = 0

# case id -> scores, one per seed (same seed order in both runs)
Scores = Mapping[str, Sequence[float]]


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric: candidate minus baseline, its CI, the one-sided p-value, Holm-adjusted."""

    metric: str
    kind: str  # "continuous", "pass_fail" or "preference" (a pairwise judge's verdicts)
    cases: int
    baseline_mean: float
    candidate_mean: float
    mean_difference: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    regression: bool
    baseline_pass_at_k: float | None = None
    candidate_pass_at_k: float | None = None
    baseline_pass_hat_k: float | None = None
    candidate_pass_hat_k: float | None = None


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chance that at least one of k draws (without replacement) from n tries with c passes passes."""
    _check_counts(n, c, k)
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Chance that all of k draws (without replacement) from n tries with c passes pass."""
    _check_counts(n, c, k)
    return math.comb(c, k) / math.comb(n, k)


def _check_counts(n: int, c: int, k: int) -> None:
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= passes <= tries and 1 <= k <= tries, got n={n}, c={c}, k={k}")


def _paired(
    metric: str, baseline: Scores, candidate: Scores
) -> tuple[list[str], np.ndarray, np.ndarray]:
    if not baseline:
        raise ValueError(f"metric {metric!r} has no cases")
    if set(baseline) != set(candidate):
        only = sorted(set(baseline) ^ set(candidate))[:5]
        raise ValueError(f"metric {metric!r}: the runs have different cases, e.g. {only}")
    cases = sorted(baseline)
    for case in cases:
        if len(baseline[case]) != len(candidate[case]) or not baseline[case]:
            raise ValueError(
                f"metric {metric!r}, case {case!r}: {len(baseline[case])} baseline and "
                f"{len(candidate[case])} candidate seeds; they must be equal and at least 1"
            )
    base = np.array([np.mean(baseline[c]) for c in cases], dtype=float)
    cand = np.array([np.mean(candidate[c]) for c in cases], dtype=float)
    return cases, base, cand


def _is_pass_fail(baseline: Scores, candidate: Scores) -> bool:
    return all(v in (0.0, 1.0) for run in (baseline, candidate) for s in run.values() for v in s)


def _wilcoxon_worse(diffs: np.ndarray) -> float:
    if np.allclose(diffs, 0.0):
        return 1.0
    return float(stats.wilcoxon(diffs, zero_method="zsplit", alternative="less").pvalue)


def _mcnemar_worse(baseline: Scores, candidate: Scores) -> float:
    lost = gained = 0
    for case, before in baseline.items():
        for b, c in zip(before, candidate[case], strict=True):
            lost += int(b == 1.0 and c == 0.0)
            gained += int(b == 0.0 and c == 1.0)
    if lost + gained == 0:
        return 1.0
    return float(stats.binomtest(lost, lost + gained, 0.5, alternative="greater").pvalue)


def _ci(diffs: np.ndarray) -> tuple[float, float]:
    if len(diffs) < 2 or np.allclose(diffs, diffs[0]):
        mean = float(np.mean(diffs))
        return mean, mean
    result = stats.bootstrap(
        (diffs,),
        np.mean,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        random_state=BOOTSTRAP_SEED,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _pass_rates(scores: Scores, k: int) -> tuple[float, float]:
    at = [pass_at_k(len(s), int(sum(s)), k) for s in scores.values()]
    hat = [pass_hat_k(len(s), int(sum(s)), k) for s in scores.values()]
    return float(np.mean(at)), float(np.mean(hat))


def _preference_row(
    name: str, preferences: Sequence[float | None], with_ci: bool
) -> tuple[Any, ...]:
    """A pairwise judge's verdicts (1 candidate better, 0.5 tie, 0 baseline better, None
    inconsistent and dropped) as one comparison row: the sign test on wins and losses."""
    kept = np.array([p for p in preferences if p is not None], dtype=float)
    if kept.size == 0:
        raise ValueError(f"metric {name!r}: no consistent pairwise verdict to compare")
    bad = sorted({float(p) for p in kept} - {0.0, 0.5, 1.0})
    if bad:
        raise ValueError(f"metric {name!r}: preferences must be 0, 0.5 or 1, got {bad[:3]}")
    wins, losses = int(np.sum(kept == 1.0)), int(np.sum(kept == 0.0))
    p = 1.0
    if wins + losses:
        p = float(stats.binomtest(losses, wins + losses, 0.5, alternative="greater").pvalue)
    diffs = kept - 0.5
    low, high = _ci(diffs) if with_ci else (math.nan, math.nan)
    baseline = np.full(kept.size, 0.5)
    return (name, "preference", int(kept.size), baseline, kept, diffs, low, high, p, {})


def holm_adjust(p_values: Sequence[float]) -> npt.NDArray[np.float64]:
    """Holm step-down adjusted p-values, in input order: the i-th smallest p times (m - i + 1),
    made non-decreasing in that order and capped at 1."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    steps = p[order] * np.arange(p.size, 0, -1)
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    return adjusted


def compare_runs(
    metrics: Mapping[str, tuple[Scores, Scores]],
    *,
    alpha: float = DEFAULT_ALPHA,
    k: int | None = None,
    with_ci: bool = True,
    preferences: Mapping[str, Sequence[float | None]] | None = None,
) -> list[MetricComparison]:
    """Each metric's (baseline, candidate) scores compared (see the module docstring), in input order,
    then each pairwise rubric's ``preferences`` (candidate against baseline per case and seed: 1
    better, 0.5 tie, 0 worse, None an inconsistent verdict, dropped), tested with the sign test on
    wins and losses (one-sided: the candidate loses more often) and Holm-adjusted with the rest.
    A preference row's "baseline mean" is 0.5 (no preference) and its candidate mean the win rate.

    ``k`` (default: the smallest seed count) is used for pass@k / pass^k; ``with_ci=False`` skips the
    bootstrap (the decision does not use it)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not metrics and not preferences:
        raise ValueError("nothing to compare: no metrics given")
    rows = []
    for name, (baseline, candidate) in metrics.items():
        cases, base, cand = _paired(name, baseline, candidate)
        diffs = cand - base
        pass_fail = _is_pass_fail(baseline, candidate)
        p = _mcnemar_worse(baseline, candidate) if pass_fail else _wilcoxon_worse(diffs)
        low, high = _ci(diffs) if with_ci else (math.nan, math.nan)
        extra: dict[str, float | None] = {}
        if pass_fail:
            seeds = min(len(s) for s in baseline.values())
            kk = seeds if k is None else k
            extra["baseline_pass_at_k"], extra["baseline_pass_hat_k"] = _pass_rates(baseline, kk)
            extra["candidate_pass_at_k"], extra["candidate_pass_hat_k"] = _pass_rates(candidate, kk)
        rows.append(
            (
                name,
                "pass_fail" if pass_fail else "continuous",
                len(cases),
                base,
                cand,
                diffs,
                low,
                high,
                p,
                extra,
            )
        )
    for name, verdicts in (preferences or {}).items():
        rows.append(_preference_row(name, verdicts, with_ci))
    adjusted = holm_adjust([r[8] for r in rows])
    return [
        MetricComparison(
            metric=name,
            kind=kind,
            cases=n,
            baseline_mean=float(np.mean(base)),
            candidate_mean=float(np.mean(cand)),
            mean_difference=float(np.mean(diffs)),
            ci_low=low,
            ci_high=high,
            p_value=p,
            p_adjusted=float(adj),
            regression=bool(adj < alpha),
            **extra,  # type: ignore[arg-type]
        )
        for (name, kind, n, base, cand, diffs, low, high, p, extra), adj in zip(
            rows, adjusted, strict=True
        )
    ]
