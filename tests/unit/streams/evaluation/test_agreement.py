"""Judge-versus-human agreement: exact on perfect agreement, calibrated by simulation (interval coverage
of the population kappa), the SQL moments identity matches sklearn, the gate, and clear errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from streams.evaluation.agreement import (
    MIN_PAIRS,
    Agreement,
    _kappa_rows,
    _spearman_rows,
    agreement,
    agreements,
    quadratic_kappa_moments,
)

LEVELS = [1.0, 2.0, 3.0, 4.0, 5.0]


def _joint(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Human 1-5 ratings (skewed towards the top) and a judge that is the human plus rounded noise."""
    human = rng.choice(LEVELS, size=n, p=[0.1, 0.15, 0.2, 0.3, 0.25])
    judge = np.clip(np.rint(human + rng.normal(0.3, 1.0, n)), 1, 5)
    return judge, human


def test_perfect_agreement_gives_kappa_and_spearman_one_with_a_tight_interval() -> None:
    rng = np.random.default_rng(0)
    ratings = list(rng.choice(LEVELS, size=40))
    result = agreement("helpfulness", ratings, ratings, levels=LEVELS)
    assert result.n == 40
    assert result.weights == "quadratic"
    assert result.kappa == pytest.approx(1.0)
    assert result.spearman == pytest.approx(1.0)
    for bound in (result.kappa_low, result.kappa_high, result.spearman_low, result.spearman_high):
        assert bound == pytest.approx(1.0)


def test_independent_raters_have_a_kappa_interval_around_zero() -> None:
    rng = np.random.default_rng(1)
    judge = rng.choice(LEVELS, size=150)
    human = rng.choice(LEVELS, size=150)
    result = agreement("tone", list(judge), list(human), levels=LEVELS)
    assert result.kappa_low < 0.0 < result.kappa_high
    assert result.spearman_low < 0.0 < result.spearman_high
    assert result.kappa_high - result.kappa_low < 0.5
    assert not result.passes(0.4)


def test_the_95_percent_kappa_interval_covers_the_population_kappa() -> None:
    rng = np.random.default_rng(2)
    big_judge, big_human = _joint(rng, 200_000)
    true_kappa = cohen_kappa_score(big_judge, big_human, labels=LEVELS, weights="quadratic")
    assert 0.4 < true_kappa < 0.8  # a realistic, imperfect judge
    covered = 0
    for i in range(100):
        judge, human = _joint(rng, 100)
        result = agreement("r", list(judge), list(human), levels=LEVELS, seed=i)
        covered += result.kappa_low <= true_kappa <= result.kappa_high
    assert covered >= 85


def test_quadratic_weights_forgive_near_misses_that_nominal_kappa_counts_in_full() -> None:
    human = [1.0, 2.0, 3.0, 4.0, 5.0] * 6
    judge = [min(h + 1.0, 5.0) if i % 2 else h for i, h in enumerate(human)]  # off by one at most
    ordinal = agreement("r", judge, human, levels=LEVELS)
    nominal = agreement("r", judge, human, levels=LEVELS, ordinal=False)
    assert nominal.weights is None
    assert ordinal.kappa > 0.85
    assert nominal.kappa < 0.65
    assert ordinal.kappa == pytest.approx(
        cohen_kappa_score(judge, human, labels=LEVELS, weights="quadratic")
    )
    assert nominal.kappa == pytest.approx(cohen_kappa_score(judge, human, labels=LEVELS))
    assert ordinal.spearman == nominal.spearman


def test_levels_absent_from_the_sample_still_count() -> None:
    judge = [3.0, 4.0, 3.0, 4.0, 4.0, 3.0]
    human = [3.0, 4.0, 4.0, 4.0, 3.0, 3.0]
    seen_only = agreement("r", judge, human).kappa
    full_scale = agreement("r", judge, human, levels=LEVELS).kappa
    assert full_scale == pytest.approx(
        cohen_kappa_score(judge, human, labels=LEVELS, weights="quadratic")
    )
    assert seen_only == pytest.approx(cohen_kappa_score(judge, human, weights="quadratic"))


def test_gate_needs_min_pairs_and_min_kappa() -> None:
    ratings = [1.0, 2.0, 3.0, 4.0, 5.0] * 10
    small = agreement("r", ratings[: MIN_PAIRS - 1], ratings[: MIN_PAIRS - 1], levels=LEVELS)
    assert small.kappa == pytest.approx(1.0)
    assert not small.passes(0.0)
    enough = agreement("r", ratings[:MIN_PAIRS], ratings[:MIN_PAIRS], levels=LEVELS)
    assert enough.passes(0.99)
    noisy = [r if i % 3 else 6.0 - r for i, r in enumerate(ratings)]
    mixed = agreement("r", noisy, ratings, levels=LEVELS)
    assert mixed.n >= MIN_PAIRS
    assert mixed.passes(mixed.kappa)
    assert not mixed.passes(mixed.kappa + 0.01)
    with pytest.raises(ValueError, match=r"min_kappa must be in \[-1, 1\], got 1\.5"):
        enough.passes(1.5)


def test_undefined_kappa_is_nan_and_never_passes() -> None:
    result = agreement("r", [4.0] * 30, [4.0] * 30)
    assert math.isnan(result.kappa)
    assert math.isnan(result.spearman)
    assert math.isnan(result.kappa_low) and math.isnan(result.spearman_high)
    assert not result.passes(-1.0)


@pytest.mark.parametrize("seed", range(10))
def test_the_sql_moments_identity_equals_sklearns_quadratic_kappa(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(10, 300))
    judge, human = _joint(rng, n)
    judge[:5] = LEVELS  # every level present for both raters
    human[-5:] = LEVELS
    expected = cohen_kappa_score(judge, human, weights="quadratic")
    assert quadratic_kappa_moments(list(judge), list(human)) == pytest.approx(expected, abs=1e-9)


def test_the_sql_moments_identity_differs_when_a_middle_level_is_missing() -> None:
    # Documented precondition: without level 3, sklearn's positions 0..3 are no longer the values.
    judge = [1.0, 2.0, 4.0, 5.0, 2.0, 4.0, 1.0, 5.0]
    human = [1.0, 4.0, 4.0, 5.0, 2.0, 2.0, 2.0, 4.0]
    assert quadratic_kappa_moments(judge, human) != pytest.approx(
        cohen_kappa_score(judge, human, weights="quadratic"), abs=1e-6
    )
    assert quadratic_kappa_moments(judge, human) == pytest.approx(
        cohen_kappa_score(judge, human, labels=LEVELS, weights="quadratic"), abs=1e-9
    )


@pytest.mark.parametrize("ordinal", [True, False])
def test_vectorised_resample_statistics_match_sklearn_and_scipy(ordinal: bool) -> None:
    rng = np.random.default_rng(7)
    judge, human = _joint(rng, 15)
    scale = np.array(LEVELS)
    idx = rng.integers(0, 15, size=(50, 15))
    kappas = _kappa_rows(
        np.searchsorted(scale, judge)[idx], np.searchsorted(scale, human)[idx], 5, ordinal
    )
    rhos = _spearman_rows(judge[idx], human[idx])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row, kappa, rho in zip(idx, kappas, rhos, strict=True):
            expected = cohen_kappa_score(
                judge[row], human[row], labels=LEVELS, weights="quadratic" if ordinal else None
            )
            assert kappa == pytest.approx(expected, nan_ok=True)
            assert rho == pytest.approx(
                stats.spearmanr(judge[row], human[row]).statistic, nan_ok=True
            )


def test_constant_resamples_are_dropped_not_propagated() -> None:
    # With 3 items, some resamples repeat one item: both raters constant there, so kappa and
    # Spearman are nan for those resamples; the interval is still finite.
    result = agreement("r", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], resamples=500)
    assert result.kappa_low == pytest.approx(1.0)
    assert result.spearman_high == pytest.approx(1.0)


def test_same_seed_same_interval_and_seed_changes_it() -> None:
    rng = np.random.default_rng(3)
    judge, human = _joint(rng, 60)
    a = agreement("r", list(judge), list(human), seed=4)
    b = agreement("r", list(judge), list(human), seed=4)
    c = agreement("r", list(judge), list(human), seed=5)
    assert a == b
    assert (a.kappa_low, a.kappa_high) != (c.kappa_low, c.kappa_high)
    assert a.kappa == c.kappa


def test_agreements_are_per_rubric_sorted_and_to_row_is_flat() -> None:
    rng = np.random.default_rng(4)
    good = _joint(rng, 40)
    bad = (rng.choice(LEVELS, size=40), rng.choice(LEVELS, size=40))
    rows = agreements(
        {"tone": (list(bad[0]), list(bad[1])), "accuracy": (list(good[0]), list(good[1]))},
        levels=LEVELS,
        resamples=200,
    )
    assert [r.rubric for r in rows] == ["accuracy", "tone"]
    assert rows[0].kappa > rows[1].kappa
    row = rows[0].to_row()
    assert row["rubric"] == "accuracy"
    assert row["n"] == 40
    assert row["weights"] == "quadratic"
    assert set(row) == {f.name for f in Agreement.__dataclass_fields__.values()}
    assert all(not isinstance(v, dict | list) for v in row.values())
    assert agreements({}) == []


@pytest.mark.parametrize(
    ("judge", "human", "kwargs", "message"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], {}, "got 3 judge and 2 human ratings"),
        ([1.0], [1.0], {}, "need at least 2 rated items, got 1"),
        ([1.0, math.nan], [1.0, 2.0], {}, "judge rating 1 is not finite, got nan"),
        ([1.0, 2.0], [math.inf, 2.0], {}, "human rating 0 is not finite, got inf"),
        ([1.0, 6.0], [1.0, 2.0], {"levels": LEVELS}, "judge rating 6.0 is not one of the levels"),
        ([1.0, 2.0], [1.0, 2.0], {"levels": [1.0, 1.0, 2.0]}, r"got \[1.0, 1.0, 2.0\]"),
        ([1.0, 2.0], [1.0, 2.0], {"confidence": 1.0}, r"confidence must be in \(0, 1\), got 1.0"),
        ([1.0, 2.0], [1.0, 2.0], {"resamples": 0}, "resamples must be at least 1, got 0"),
    ],
)
def test_errors_name_the_bad_value(
    judge: list[float], human: list[float], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        agreement("clarity", judge, human, **kwargs)  # type: ignore[arg-type]


def test_errors_name_the_rubric() -> None:
    with pytest.raises(ValueError, match="rubric 'clarity'"):
        agreements({"clarity": ([1.0, 2.0], [1.0])})
