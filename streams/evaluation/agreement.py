"""Agreement between an LLM judge and human raters on the items that have both, per rubric.

Input per rubric: the judge's and the human's rating of the same items, in the same item order. A rubric
is either *ordinal* (a 1-5 score: a near miss is a smaller disagreement than a far one) or *nominal*
(labels coded as numbers, where any disagreement counts the same).

What :func:`agreement` reports:

- Cohen's kappa (``sklearn.metrics.cohen_kappa_score``), quadratic-weighted for ordinal rubrics and
  unweighted for nominal ones. ``levels`` (the rubric's scale) is passed as sklearn's ``labels``, so a
  level nobody used in this sample still counts: the quadratic weight of a disagreement is the squared
  distance between the two levels' *positions* on the scale, which is the squared distance between the
  values themselves (up to a constant factor, which cancels) when the scale is equally spaced. Without
  ``levels`` the scale is the values seen in either rater's ratings.
- Spearman's rank correlation (``scipy.stats.spearmanr``, average ranks for ties). For nominal labels
  with more than two categories it depends on the arbitrary numeric coding and is only informative as
  a sanity check.
- Percentile bootstrap confidence intervals of both, resampling items (judge and human rating of an
  item stay together) ``resamples`` times with ``numpy.random.default_rng(seed)``, so the same input
  gives the same interval. A resample in which a rater gives every item the same rating has an undefined
  Spearman (and, if both raters are constant on the same level, an undefined kappa); such resamples are
  dropped for that statistic only, and the interval is taken over the rest (nan if none is left). The
  resampled statistics are computed vectorised in numpy from the same definitions (confusion matrix
  with sklearn's weights; Pearson correlation of average ranks); the tests check them against sklearn
  and scipy.

The point estimates are nan when undefined on the whole sample (e.g. both raters always give the same
rating), and then :meth:`Agreement.passes` is False.

Quadratic kappa from moments (used by the ClickHouse agreement query, guarded by the tests): for numeric
ratings ``x`` (judge) and ``y`` (human) on an equally spaced scale whose levels all appear in the sample
(or are passed as ``levels``),

    kappa_quadratic = 1 - mean((x - y)^2) / (var_x + var_y + (mean_x - mean_y)^2)

with population variances (divide by n). The denominator is the expected squared difference if the two
raters were independent with their observed marginals, so a SQL query needs only sums of x, y, x^2, y^2
and (x - y)^2. :func:`quadratic_kappa_moments` computes it.

Gate: :meth:`Agreement.passes` is True iff ``n >= MIN_PAIRS`` and the point kappa ``>= min_kappa``.

Errors name the bad value: raters of different lengths, fewer than 2 items, non-finite ratings, ratings
outside ``levels``, a confidence outside (0, 1), a non-positive resample count. Pure; nothing here does
I/O and nothing blocks.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy import stats
from sklearn.metrics import cohen_kappa_score

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "CONFIDENCE",
    "MIN_PAIRS",
    "Agreement",
    "agreement",
    "agreements",
    "quadratic_kappa_moments",
]

# Below 20 paired items the gate never passes: even at 20, the 95% interval of a quadratic kappa near 0.7
# on 1-5 ratings is about 0.44 wide (median of 100 simulated samples with this module), so a kappa from
# fewer items says too little about whether the judge can be trusted to let its scores drive alerts.
MIN_PAIRS: Final = 20
CONFIDENCE: Final = 0.95
BOOTSTRAP_RESAMPLES: Final = 2000
BOOTSTRAP_SEED: Final = 0
QUADRATIC: Final = "quadratic"


@dataclass(frozen=True, slots=True)
class Agreement:
    """One rubric: judge-versus-human kappa and Spearman with their bootstrap intervals."""

    rubric: str
    n: int
    kappa: float
    kappa_low: float
    kappa_high: float
    spearman: float
    spearman_low: float
    spearman_high: float
    weights: str | None  # "quadratic" for ordinal rubrics, None for nominal labels

    def passes(self, min_kappa: float) -> bool:
        """True iff there are at least ``MIN_PAIRS`` items and the point kappa is at least ``min_kappa``.

        The point estimate, not the interval's lower end, is compared: ``MIN_PAIRS`` already keeps the
        estimate from resting on a handful of items, and the interval is reported alongside for anyone
        who wants the stricter reading. A nan kappa never passes."""
        if not -1.0 <= min_kappa <= 1.0:
            raise ValueError(f"min_kappa must be in [-1, 1], got {min_kappa!r}")
        return self.n >= MIN_PAIRS and self.kappa >= min_kappa

    def to_row(self) -> dict[str, str | int | float | None]:
        """The fields as a flat dict (one table row)."""
        return dataclasses.asdict(self)


def quadratic_kappa_moments(judge: Sequence[float], human: Sequence[float]) -> float:
    """Quadratic-weighted kappa from moments (module docstring); nan when both raters are constant
    on the same value."""
    x, y = _arrays(judge, human)
    expected = float(np.var(x) + np.var(y) + (np.mean(x) - np.mean(y)) ** 2)
    if expected == 0.0:
        return math.nan
    return 1.0 - float(np.mean((x - y) ** 2)) / expected


def agreement(
    rubric: str,
    judge: Sequence[float],
    human: Sequence[float],
    *,
    ordinal: bool = True,
    levels: Sequence[float] | None = None,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Agreement:
    """Kappa and Spearman of the judge against the human on one rubric (see the module docstring)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples!r}")
    try:
        x, y = _arrays(judge, human)
    except ValueError as err:
        raise ValueError(f"rubric {rubric!r}: {err}") from None
    scale = _scale(rubric, x, y, levels)
    weights = QUADRATIC if ordinal else None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kappa = float(cohen_kappa_score(x, y, labels=scale, weights=weights))
        rho = float(stats.spearmanr(x, y).statistic)

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(resamples, len(x)))
    kappas = _kappa_rows(
        np.searchsorted(scale, x)[idx], np.searchsorted(scale, y)[idx], len(scale), ordinal
    )
    rhos = _spearman_rows(x[idx], y[idx])
    k_low, k_high = _percentile(kappas, confidence)
    r_low, r_high = _percentile(rhos, confidence)
    return Agreement(
        rubric=rubric,
        n=len(x),
        kappa=kappa,
        kappa_low=k_low,
        kappa_high=k_high,
        spearman=rho,
        spearman_low=r_low,
        spearman_high=r_high,
        weights=weights,
    )


def agreements(
    pairs: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    ordinal: bool = True,
    levels: Sequence[float] | None = None,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> list[Agreement]:
    """:func:`agreement` for each rubric's (judge, human) ratings, sorted by rubric; [] for no rubrics."""
    return [
        agreement(
            rubric,
            judge,
            human,
            ordinal=ordinal,
            levels=levels,
            confidence=confidence,
            resamples=resamples,
            seed=seed,
        )
        for rubric, (judge, human) in sorted(pairs.items())
    ]


def _arrays(judge: Sequence[float], human: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    if len(judge) != len(human):
        raise ValueError(
            f"judge and human must rate the same items, got {len(judge)} judge and "
            f"{len(human)} human ratings"
        )
    if len(judge) < 2:
        raise ValueError(f"need at least 2 rated items, got {len(judge)}")
    x = np.asarray(judge, dtype=float)
    y = np.asarray(human, dtype=float)
    for who, values in (("judge", x), ("human", y)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(
                f"{who} rating {int(bad[0])} is not finite, got {float(values[bad[0]])!r}"
            )
    return x, y


def _scale(rubric: str, x: np.ndarray, y: np.ndarray, levels: Sequence[float] | None) -> np.ndarray:
    if levels is None:
        return np.unique(np.concatenate([x, y]))
    scale = np.asarray(levels, dtype=float)
    if scale.size == 0 or not np.all(np.isfinite(scale)) or np.unique(scale).size != scale.size:
        raise ValueError(
            f"rubric {rubric!r}: levels must be distinct finite values, got {list(levels)!r}"
        )
    scale = np.sort(scale)
    for who, values in (("judge", x), ("human", y)):
        outside = values[~np.isin(values, scale)]
        if outside.size:
            raise ValueError(
                f"rubric {rubric!r}: {who} rating {float(outside[0])!r} is not one of the "
                f"levels {list(levels)!r}"
            )
    return scale


def _kappa_rows(a: np.ndarray, b: np.ndarray, k: int, ordinal: bool) -> np.ndarray:
    """Cohen's kappa of each row pair of level positions (sklearn's definition and weights)."""
    rows, n = a.shape
    cells = (np.arange(rows)[:, None] * (k * k) + a * k + b).ravel()
    confusion = np.bincount(cells, minlength=rows * k * k).reshape(rows, k, k).astype(float)
    positions = np.arange(k, dtype=float)
    weight = (positions[:, None] - positions[None, :]) ** 2 if ordinal else 1.0 - np.eye(k)
    expected = confusion.sum(axis=2)[:, :, None] * confusion.sum(axis=1)[:, None, :] / n
    with np.errstate(divide="ignore", invalid="ignore"):
        result: np.ndarray = 1.0 - np.einsum("ij,rij->r", weight, confusion) / np.einsum(
            "ij,rij->r", weight, expected
        )
    return result


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair: Pearson correlation of average ranks (nan if a row is constant)."""
    rx = stats.rankdata(x, axis=1)
    ry = stats.rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        result: np.ndarray = (rx * ry).sum(axis=1) / np.sqrt(
            (rx * rx).sum(axis=1) * (ry * ry).sum(axis=1)
        )
    return result


def _percentile(values: np.ndarray, confidence: float) -> tuple[float, float]:
    kept = values[np.isfinite(values)]
    if kept.size == 0:
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(kept, [tail, 1.0 - tail])
    return float(low), float(high)
