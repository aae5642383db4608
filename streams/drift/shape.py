"""Drift of the call's shape: token counts, latency, finish-reason and outcome mix, per scope.

Every normalized call row has these fields, so this needs no text. A :class:`ShapeWindow` keeps, per
scope (service, request model, span kind), binned counts only: numbers go to fixed log-spaced bins
(:data:`EDGES`, ~19% wide, so a window is a few hundred counters however many calls it saw, and windows
merge by adding). :func:`compare` tests a current window against a reference one, feature by feature:

- the test: Pearson's chi-square test of homogeneity on the 2 x K table of bin counts, with bins whose
  expected count is below :data:`MIN_EXPECTED` merged (the test's validity condition);
- the effect size: the population stability index (PSI) over those bins grouped into
  :data:`PSI_BINS` groups of equal reference mass (the usual deciles), smoothed by
  :data:`PSI_EPSILON`; 0.1 is the usual "moderate shift", 0.25 "major";
- a minimum of ``min_samples`` calls in both windows before a scope is tested at all.

:func:`flag` applies Benjamini-Hochberg across every test of one evaluation (all scopes and features)
and flags a result when its adjusted p-value is at most ``fdr`` and its PSI at least ``min_psi``. With
the effect floor, a huge window never flags a shift too small to matter, and under stationarity the
share of flagged (scope, feature) results is at most ``fdr`` (BH's guarantee for independent tests).

The motivating case: a provider updates a model behind an unchanged model id and answers get longer;
``output_tokens`` of that scope shifts while nothing else does. Pure computation; nothing blocks.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

__all__ = [
    "CATEGORICAL",
    "EDGES",
    "NUMERIC",
    "DriftResult",
    "Scope",
    "ShapeWindow",
    "compare",
    "flag",
]

# Bin edges for counts and milliseconds: 2^(k/4), from 1 to 2^26 (~67M): 105 bins.
EDGES: Final = np.power(2.0, np.arange(0, 26.25, 0.25))
NUMERIC: Final = ("input_tokens", "output_tokens", "duration_ms", "time_to_first_token_ms")
CATEGORICAL: Final = ("finish_reason", "outcome")
MIN_EXPECTED: Final = 5.0
PSI_EPSILON: Final = 1e-4
PSI_BINS: Final = 10
NONE: Final = "none"

Scope = tuple[str, str, str]  # service, request model, span kind


def _bin(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if value <= 0:
        return "0"
    return f"b{int(np.searchsorted(EDGES, value, side='right'))}"


def _categories(row: Mapping[str, Any]) -> dict[str, str]:
    reasons = row.get("finish_reasons") or []
    first = reasons[0] if isinstance(reasons, list) and reasons else NONE
    outcome = "ok" if row.get("status") != "error" else str(row.get("error_type") or "error")
    return {"finish_reason": str(first), "outcome": outcome}


def scope_of(row: Mapping[str, Any]) -> Scope:
    return (
        str(row.get("service") or ""),
        str(row.get("request_model") or ""),
        str(row.get("span_kind") or ""),
    )


@dataclass(slots=True)
class ShapeWindow:
    """Binned counts per scope and feature over one window of calls; mergeable by :meth:`merge`."""

    calls: Counter[Scope] = field(default_factory=Counter)
    counts: dict[Scope, dict[str, Counter[str]]] = field(default_factory=dict)

    def add(self, row: Mapping[str, Any]) -> None:
        scope = scope_of(row)
        self.calls[scope] += 1
        features = self.counts.setdefault(scope, {})
        for name in NUMERIC:
            key = _bin(row.get(name))
            if key is not None:
                features.setdefault(name, Counter())[key] += 1
        for name, value in _categories(row).items():
            features.setdefault(name, Counter())[value] += 1

    def add_all(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.add(row)

    def merge(self, other: ShapeWindow) -> None:
        self.calls.update(other.calls)
        for scope, features in other.counts.items():
            mine = self.counts.setdefault(scope, {})
            for name, counter in features.items():
                mine.setdefault(name, Counter()).update(counter)


@dataclass(frozen=True, slots=True)
class DriftResult:
    scope: Scope
    feature: str
    test: str
    statistic: float
    p_value: float
    psi: float
    reference_n: int
    current_n: int
    top_shift: str  # the bin or category whose share moved most, and how ("b40: 12% -> 31%")
    q_value: float = math.nan
    flagged: bool = False


def _pooled(reference: Counter[str], current: Counter[str]) -> tuple[np.ndarray, list[str]]:
    """A 2 x K table with bins of expected count < MIN_EXPECTED merged into their neighbours."""
    keys = sorted(set(reference) | set(current), key=_order)
    ref_total, cur_total = sum(reference.values()), sum(current.values())
    share = cur_total / (ref_total + cur_total)
    columns: list[list[int]] = []
    names: list[str] = []
    pending = [0, 0]
    pending_names: list[str] = []
    for key in keys:
        pending[0] += reference.get(key, 0)
        pending[1] += current.get(key, 0)
        pending_names.append(key)
        total = pending[0] + pending[1]
        if min(total * share, total * (1 - share)) >= MIN_EXPECTED:
            columns.append(pending)
            names.append(
                pending_names[0] if len(pending_names) == 1 else "+".join(pending_names[:2])
            )
            pending, pending_names = [0, 0], []
    if pending[0] + pending[1] > 0:
        if columns:
            columns[-1] = [columns[-1][0] + pending[0], columns[-1][1] + pending[1]]
        else:
            columns.append(pending)
            names.append("all")
    return np.asarray(columns, dtype=np.float64).T, names


def _order(key: str) -> tuple[int, float, str]:
    if key == "0":
        return (0, 0.0, key)
    if key.startswith("b") and key[1:].isdigit():
        return (1, float(key[1:]), key)
    return (2, 0.0, key)


def _coarse(table: np.ndarray) -> np.ndarray:
    """At most :data:`PSI_BINS` groups of adjacent columns of ~equal reference mass (PSI's usual
    deciles of the reference): fine bins would make PSI's noise floor depend on the bin count."""
    if table.shape[1] <= PSI_BINS:
        return table
    before = np.concatenate(([0.0], np.cumsum(table[0])[:-1])) / table[0].sum()
    groups = np.minimum((before * PSI_BINS).astype(int), PSI_BINS - 1)
    out = np.zeros((2, PSI_BINS))
    np.add.at(out[0], groups, table[0])
    np.add.at(out[1], groups, table[1])
    return out[:, out.sum(axis=0) > 0]


def _psi(table: np.ndarray) -> float:
    coarse = _coarse(table)
    ref = coarse[0] / coarse[0].sum() + PSI_EPSILON
    cur = coarse[1] / coarse[1].sum() + PSI_EPSILON
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _compare_feature(
    scope: Scope, feature: str, reference: Counter[str], current: Counter[str]
) -> DriftResult | None:
    ref_n, cur_n = sum(reference.values()), sum(current.values())
    if ref_n == 0 or cur_n == 0:
        return None
    table, names = _pooled(reference, current)
    if table.shape[1] < 2:
        return DriftResult(scope, feature, "chi2", 0.0, 1.0, 0.0, ref_n, cur_n, "")
    statistic, p_value, _dof, _expected = stats.chi2_contingency(table, correction=False)
    shares = table / table.sum(axis=1, keepdims=True)
    moved = int(np.argmax(np.abs(shares[1] - shares[0])))
    top = f"{names[moved]}: {shares[0][moved]:.0%} -> {shares[1][moved]:.0%}"
    return DriftResult(
        scope, feature, "chi2", float(statistic), float(p_value), _psi(table), ref_n, cur_n, top
    )


def compare(reference: ShapeWindow, current: ShapeWindow, *, min_samples: int) -> list[DriftResult]:
    """Test every feature of every scope with at least ``min_samples`` calls in both windows."""
    if min_samples < 1:
        raise ValueError(f"min_samples must be >= 1, got {min_samples!r}")
    results = []
    for scope, calls in sorted(current.calls.items()):
        if calls < min_samples or reference.calls.get(scope, 0) < min_samples:
            continue
        ref_features = reference.counts.get(scope, {})
        for feature in (*NUMERIC, *CATEGORICAL):
            result = _compare_feature(
                scope,
                feature,
                ref_features.get(feature, Counter()),
                current.counts[scope].get(feature, Counter()),
            )
            if result is not None:
                results.append(result)
    return results


def flag(results: list[DriftResult], *, fdr: float, min_psi: float) -> list[DriftResult]:
    """Benjamini-Hochberg over ``results``; flagged when q <= ``fdr`` and PSI >= ``min_psi``."""
    if not 0.0 < fdr < 1.0:
        raise ValueError(f"fdr must be in (0, 1), got {fdr!r}")
    if min_psi < 0:
        raise ValueError(f"min_psi must be >= 0, got {min_psi!r}")
    if not results:
        return []
    _reject, q_values, _s, _b = multipletests([r.p_value for r in results], method="fdr_bh")
    out = []
    for result, q in zip(results, q_values, strict=True):
        flagged = bool(q <= fdr and result.psi >= min_psi)
        out.append(replace(result, q_value=float(q), flagged=flagged))
    return out
