"""Run comparison statistics: calibrated by simulation (A/A false alarms, power for a 10-point drop),
exact on small known cases, and clear about bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streams.evaluation.compare import compare_runs, holm_adjust, pass_at_k, pass_hat_k

COMPARISONS = 200
SEEDS = 5
RECOMMENDED_CASES = 80  # docs/evaluation.md: 80 cases x 5 seeds for a 10-point drop


def _runs(
    rng: np.random.Generator, cases: int, drop: float
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Cases of mixed difficulty (pass rates ~ Beta(3.5, 1.5), mean 0.7); the candidate's rate is lower
    by ``drop`` on every case."""
    rates = rng.beta(3.5, 1.5, cases)
    lowered = np.clip(rates - drop, 0.0, 1.0)
    baseline = {
        f"case-{i}": list((rng.random(SEEDS) < rates[i]).astype(float)) for i in range(cases)
    }
    candidate = {
        f"case-{i}": list((rng.random(SEEDS) < lowered[i]).astype(float)) for i in range(cases)
    }
    return baseline, candidate


def _regressions(drop: float, seed: int) -> int:
    rng = np.random.default_rng(seed)
    return sum(
        compare_runs({"pass": _runs(rng, RECOMMENDED_CASES, drop)}, with_ci=False)[0].regression
        for _ in range(COMPARISONS)
    )


def test_identical_systems_are_called_a_regression_at_most_5_percent_of_the_time() -> None:
    assert _regressions(0.0, seed=1) <= 0.05 * COMPARISONS


def test_a_true_10_point_drop_is_found_in_at_least_80_percent_of_runs() -> None:
    assert _regressions(0.10, seed=2) >= 0.80 * COMPARISONS


def test_continuous_metric_a_a_is_calibrated_and_a_drop_is_found() -> None:
    rng = np.random.default_rng(3)

    def runs(shift: float) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
        quality = rng.normal(0.6, 0.15, 60)
        base = {f"c{i}": list(quality[i] + rng.normal(0, 0.1, SEEDS)) for i in range(60)}
        cand = {f"c{i}": list(quality[i] - shift + rng.normal(0, 0.1, SEEDS)) for i in range(60)}
        return base, cand

    false = sum(compare_runs({"bleu": runs(0.0)}, with_ci=False)[0].regression for _ in range(100))
    found = sum(compare_runs({"bleu": runs(0.05)}, with_ci=False)[0].regression for _ in range(100))
    assert false <= 8 and found >= 80


def test_one_comparison_reports_the_difference_its_ci_and_pass_rates() -> None:
    baseline = {"a": [1.0, 1.0], "b": [1.0, 0.0], "c": [1.0, 1.0], "d": [0.0, 0.0]}
    candidate = {"a": [0.0, 0.0], "b": [0.0, 0.0], "c": [0.0, 1.0], "d": [0.0, 0.0]}
    (row,) = compare_runs({"exact": (baseline, candidate)}, k=1)
    assert row.kind == "pass_fail" and row.cases == 4
    assert row.mean_difference == pytest.approx(0.125 - 0.625)
    assert row.ci_low <= row.mean_difference <= row.ci_high
    # McNemar: 4 pairs lost, 0 gained -> one-sided exact p = 0.5 ** 4
    assert row.p_value == pytest.approx(0.0625)
    assert (row.baseline_pass_at_k, row.candidate_pass_at_k) == (0.625, 0.125)


@pytest.mark.parametrize("size", [1, 2, 7, 40])
def test_holm_adjust_matches_statsmodels(size: int) -> None:
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(size)
    p = rng.random(size) ** 3
    p[: size // 3] = p[0]  # ties
    expected = multipletests(p, method="holm")[1]
    np.testing.assert_allclose(holm_adjust(list(p)), expected, rtol=1e-12)


def test_holm_adjusts_across_metrics() -> None:
    rng = np.random.default_rng(4)
    clear = _runs(rng, 200, 0.3)
    same = _runs(rng, 200, 0.0)
    rows = compare_runs({"clear": clear, "same": same}, with_ci=False)
    assert rows[0].regression and not rows[1].regression
    assert all(r.p_adjusted >= r.p_value for r in rows)


@pytest.mark.parametrize(
    ("n", "c", "k", "at", "hat"),
    [
        (5, 0, 1, 0.0, 0.0),
        (5, 5, 3, 1.0, 1.0),
        (5, 2, 1, 0.4, 0.4),
        (5, 2, 2, 0.7, 0.1),
        (4, 3, 2, 1.0, 0.5),
    ],
)
def test_pass_at_k_and_pass_hat_k(n: int, c: int, k: int, at: float, hat: float) -> None:
    assert math.isclose(pass_at_k(n, c, k), at) and math.isclose(pass_hat_k(n, c, k), hat)


@pytest.mark.parametrize(
    ("baseline", "candidate", "message"),
    [
        ({"a": [1.0]}, {"b": [1.0]}, "different cases"),
        ({"a": [1.0, 0.0]}, {"a": [1.0]}, "'a': 2 baseline and 1 candidate seeds"),
        ({}, {}, "no cases"),
    ],
)
def test_bad_runs_name_the_problem(
    baseline: dict[str, list[float]], candidate: dict[str, list[float]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        compare_runs({"m": (baseline, candidate)})


def test_bad_counts_and_alpha_are_named() -> None:
    with pytest.raises(ValueError, match="n=3, c=4, k=1"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="alpha"):
        compare_runs({"m": ({"a": [1.0]}, {"a": [1.0]})}, alpha=1.5)


def test_pairwise_preferences_use_the_sign_test_and_drop_inconsistent_verdicts() -> None:
    losing = [0.0] * 14 + [1.0] * 3 + [0.5] * 5 + [None] * 8
    (row,) = compare_runs({}, preferences={"pairwise_preference": losing})
    assert (row.kind, row.cases, row.regression) == ("preference", 22, True)
    assert row.candidate_mean == pytest.approx((3 + 2.5) / 22)
    even = [0.0] * 5 + [1.0] * 5 + [None] * 3
    (row,) = compare_runs({}, preferences={"pairwise_preference": even})
    assert not row.regression and row.p_value > 0.5
    with pytest.raises(ValueError, match="no consistent pairwise verdict"):
        compare_runs({}, preferences={"p": [None, None]})
    with pytest.raises(ValueError, match=r"got \[0.3\]"):
        compare_runs({}, preferences={"p": [0.3]})
