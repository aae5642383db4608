"""Mergeable latency sketches with 1% relative accuracy (DDSketch, logarithmic mapping).

Guarantee: for any set of values that are 0 or above ``MIN_INDEXABLE_VALUE`` (~2.3e-308; smaller
ones count as 0), :meth:`LatencySketch.quantile` returns a value within 1%
(:data:`RELATIVE_ACCURACY`) of the exact value at rank ``floor(q * (count - 1))`` of the sorted
values (numpy's ``np.quantile(values, q, method="lower")``), however the values were split into
sketches and merged. Merging is exact: adding the bin counts of two sketches gives the sketch of
the union, so ClickHouse can merge stored states with ``sumMap(bins)`` / ``sum(zero_count)`` and
read quantiles with ``llmwatch_quantile`` (``sinks/migrations/0003_sketch_functions.sql``).

The mapping is bit-for-bit that of ``ddsketch.DDSketch(0.01)`` (``LogarithmicMapping``, no offset):
bin key ``ceil(log2(v) * multiplier)`` with ``gamma = 1 + 2a / (1 - a)`` (= (1 + a) / (1 - a)) and
``multiplier = log(2) / log1p(2a / (1 - a))``; a bin represents ``gamma**key * 2 / (1 + gamma)``;
values ``<= MIN_INDEXABLE_VALUE`` (~2.3e-308, i.e. exact zeros) are counted in ``zero_count``.
Quantiles use ddsketch's rank definition (``rank = q * (count - 1)``, first bin whose cumulative
count exceeds the rank), so results equal ``DDSketch.get_quantile_value`` exactly.

Cost: one bin per factor of ~1.0202 in value; 1 ms to 1 h spans 756 bins, stored in ClickHouse as
``Map(Int32, UInt64)`` at 12 bytes per non-empty bin uncompressed (9 KB if all 756 are hit). A
lognormal sketch of 1,000 latencies has ~220 non-empty bins: ~2.7 KB uncompressed, ~0.6 KB
compressed per row in ClickHouse. Measured (bench/bench_sketches.py, CPython 3.11, shared 2-core
machine): ``add`` ~0.28 us per value (ddsketch's own ``add`` ~0.5 us); ``add_many`` ~3 M values/s
in batches of 100, ~16 M/s in batches of 1,000; merging two 1,000-value sketches ~60 us; SQL
merge of 2,000 rows into 10 groups with 5 quantiles each ~15 ms.
numpy's ``log`` may differ from libm's in the last bit, so in the vectorised paths (``add_many``,
:func:`bin_keys`, :func:`grouped_bins`) values whose key lands within 1e-7 of a bin boundary are
re-keyed with the scalar path (bins stay identical to ddsketch's and to :meth:`LatencySketch.add`).

:func:`grouped_bins` builds the bins of many sketches at once (one log-index pass and one
``np.unique`` over (group, bin) pairs): each group's bins and zero count equal, including the
bins' insertion order, those of a fresh :class:`LatencySketch` fed that group's values one by one.

Input: values must be finite and ``>= 0`` (latency ms, TTFT ms, tokens/s); anything else raises
``ValueError`` naming the value. Nothing here does I/O or blocks.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "GAMMA",
    "MIN_INDEXABLE_VALUE",
    "RELATIVE_ACCURACY",
    "LatencySketch",
    "SketchState",
    "bin_key",
    "bin_keys",
    "bin_value",
    "check_values",
    "grouped_bins",
]

RELATIVE_ACCURACY: Final[float] = 0.01
"""Relative accuracy of every quantile ("alpha" in the DDSketch paper)."""

# Computed exactly as ddsketch.mapping.LogarithmicMapping does, so keys are bit-identical.
_GAMMA_MANTISSA: Final[float] = 2 * RELATIVE_ACCURACY / (1 - RELATIVE_ACCURACY)
GAMMA: Final[float] = 1 + _GAMMA_MANTISSA
"""Ratio between consecutive bin boundaries: (1 + a) / (1 - a)."""
_MULTIPLIER: Final[float] = (1 / math.log1p(_GAMMA_MANTISSA)) * math.log(2)
_LN2: Final[float] = math.log(2)
_VALUE_CORRECTION: Final[float] = 2.0 / (1 + GAMMA)
MIN_INDEXABLE_VALUE: Final[float] = sys.float_info.min * GAMMA
"""Values at or below this go to ``zero_count`` (ddsketch's ``min_possible``)."""

# A vectorized key within this distance of an integer is recomputed with libm (see docstring).
_BOUNDARY_SLACK: Final[float] = 1e-7


def bin_key(value: float) -> int:
    """The DDSketch bin key of a value ``> MIN_INDEXABLE_VALUE`` (ddsketch's ``mapping.key``)."""
    return math.ceil(math.log(value) / _LN2 * _MULTIPLIER)


def bin_value(key: int) -> float:
    """The value a bin represents (same as ddsketch's mapping.value): within 1% of its members."""
    return math.pow(2.0, key / _MULTIPLIER) * _VALUE_CORRECTION


def bin_keys(values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Vectorised :func:`bin_key` of values ``> MIN_INDEXABLE_VALUE``, identical for every value."""
    raw = np.log(values) / _LN2 * _MULTIPLIER
    keys = np.ceil(raw).astype(np.int64)
    near = np.flatnonzero(np.abs(raw - np.rint(raw)) < _BOUNDARY_SLACK)
    for i in near.tolist():
        keys[i] = bin_key(float(values[i]))
    return keys


def _bad_value(value: float) -> ValueError:
    return ValueError(f"sketch values must be finite and >= 0, got {value!r}")


def check_values(values: npt.NDArray[np.float64]) -> int:
    """The index of the first value a sketch refuses (NaN, infinite or negative), or -1."""
    bad = np.flatnonzero(~((values >= 0.0) & (values < math.inf)))
    return int(bad[0]) if bad.size else -1


def grouped_bins(
    group_ids: npt.NDArray[np.intp], values: npt.NDArray[np.float64], groups: int
) -> tuple[list[dict[int, int]], npt.NDArray[np.int64]]:
    """The bins and zero counts of ``groups`` sketches, value ``i`` going to ``group_ids[i]``.

    Same result as adding each group's values, in order, to its own :class:`LatencySketch`: equal
    bins (keys, counts and insertion order, i.e. the order in which each bin was first hit) and
    zero counts. ``group_ids`` must be in ``[0, groups)``. Raises ``ValueError`` naming the first
    value that is NaN, infinite or negative, before computing anything.
    """
    if group_ids.shape != values.shape:
        raise ValueError(
            f"group_ids and values must have the same shape, got {group_ids.shape} "
            f"and {values.shape}"
        )
    first_bad = check_values(values)
    if first_bad >= 0:
        raise _bad_value(float(values[first_bad]))
    positive = values > MIN_INDEXABLE_VALUE
    zero_counts = np.bincount(group_ids[~positive], minlength=groups).astype(np.int64)
    bins: list[dict[int, int]] = [{} for _ in range(groups)]
    if not positive.any():
        return bins, zero_counts
    keys = bin_keys(values[positive])
    low = int(keys.min())
    span = int(keys.max()) - low + 1
    # One code per (group, bin): sorted by group, then bin; first_seen orders bins by first hit.
    codes, first_seen, counts = np.unique(
        group_ids[positive].astype(np.int64) * span + (keys - low),
        return_index=True,
        return_counts=True,
    )
    pair_group = codes // span
    order = np.lexsort((first_seen, pair_group))
    for group, key, count in zip(
        pair_group[order].tolist(),
        (codes[order] % span + low).tolist(),
        counts[order].tolist(),
        strict=True,
    ):
        bins[group][key] = count
    return bins, zero_counts


@dataclass(frozen=True)
class SketchState:
    """Serializable sketch: one row of ``bins Map(Int32, UInt64), zero_count UInt64, ...``.

    States merge by adding ``bins`` counts key by key and adding ``zero_count``/``count``/``sum``;
    ``min``/``max`` merge with min/max. An empty state has ``min=inf`` and ``max=-inf``.
    """

    bins: dict[int, int] = field(default_factory=dict)
    zero_count: int = 0
    count: int = 0
    sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf


class LatencySketch:
    """A DDSketch over non-negative values with :data:`RELATIVE_ACCURACY`; not thread-safe."""

    __slots__ = ("_bins", "_count", "_max", "_min", "_sum", "_zero_count")

    def __init__(self) -> None:
        self._bins: dict[int, int] = {}
        self._zero_count = 0
        self._count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    @property
    def count(self) -> int:
        """Number of values added (including zeros)."""
        return self._count

    @property
    def zero_count(self) -> int:
        """Number of values ``<= MIN_INDEXABLE_VALUE``."""
        return self._zero_count

    @property
    def sum(self) -> float:
        """Sum of the values (exact up to floating-point rounding)."""
        return self._sum

    @property
    def min(self) -> float:
        """Smallest value added (``inf`` when empty)."""
        return self._min

    @property
    def max(self) -> float:
        """Largest value added (``-inf`` when empty)."""
        return self._max

    @property
    def num_bins(self) -> int:
        """Number of non-empty bins (the size of the stored map)."""
        return len(self._bins)

    def add(self, value: float) -> None:
        """Add one value (finite, ``>= 0``); raises ``ValueError`` naming a bad value."""
        if not 0.0 <= value < math.inf:
            raise _bad_value(value)
        if value > MIN_INDEXABLE_VALUE:
            key = math.ceil(math.log(value) / _LN2 * _MULTIPLIER)
            bins = self._bins
            bins[key] = bins.get(key, 0) + 1
        else:
            self._zero_count += 1
        self._count += 1
        self._sum += value
        if value < self._min:
            self._min = value
        if value > self._max:
            self._max = value

    def add_many(self, values: Iterable[float] | npt.ArrayLike) -> None:
        """Add a batch of values; all-or-nothing: a bad value raises before anything is added."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        if arr.size == 0:
            return
        bad = np.flatnonzero(~((arr >= 0.0) & (arr < math.inf)))
        if bad.size:
            first = int(bad[0])
            raise ValueError(
                f"sketch values must be finite and >= 0, got {float(arr[first])!r} at index {first}"
            )
        positive = arr[arr > MIN_INDEXABLE_VALUE]
        if positive.size:
            keys = bin_keys(positive)
            low = int(keys.min())
            counts = np.bincount(keys - low)
            bins = self._bins
            for offset in np.flatnonzero(counts).tolist():
                key = low + offset
                bins[key] = bins.get(key, 0) + int(counts[offset])
        self._zero_count += arr.size - positive.size
        self._count += arr.size
        self._sum += float(arr.sum())
        self._min = min(self._min, float(arr.min()))
        self._max = max(self._max, float(arr.max()))

    def merge(self, other: LatencySketch) -> None:
        """Add ``other``'s values to this sketch (exact: the result is the sketch of the union)."""
        bins = self._bins
        for key, n in other._bins.items():
            bins[key] = bins.get(key, 0) + n
        self._zero_count += other._zero_count
        self._count += other._count
        self._sum += other._sum
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` in [0, 1] (1% relative accuracy); ``None`` when empty.

        Same result as ``ddsketch.DDSketch.get_quantile_value`` and SQL ``llmwatch_quantile``.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], got {q!r}")
        if self._count == 0:
            return None
        rank = q * (self._count - 1)
        if rank < self._zero_count:
            return 0.0
        rank -= self._zero_count
        running = 0
        for key in sorted(self._bins):
            running += self._bins[key]
            if running > rank:
                return bin_value(key)
        return bin_value(max(self._bins))  # unreachable: counts add up to count - zero_count

    def to_state(self) -> SketchState:
        """A copy of the sketch as a :class:`SketchState` (one ClickHouse row)."""
        return SketchState(
            bins=dict(self._bins),
            zero_count=self._zero_count,
            count=self._count,
            sum=self._sum,
            min=self._min,
            max=self._max,
        )

    @classmethod
    def from_state(cls, state: SketchState) -> LatencySketch:
        """Rebuild a sketch (empty bins are dropped); ``ValueError`` if counts are inconsistent."""
        bad_bins = {k: n for k, n in state.bins.items() if n < 0}
        if bad_bins:
            raise ValueError(f"bin counts must be >= 0, got {bad_bins!r}")
        binned = sum(state.bins.values())
        if state.zero_count < 0 or binned + state.zero_count != state.count:
            raise ValueError(
                f"count must equal zero_count + sum of bins ({state.zero_count} + {binned}), "
                f"got {state.count!r}"
            )
        sketch = cls()
        sketch._bins = {int(k): int(n) for k, n in state.bins.items() if n}
        sketch._zero_count = int(state.zero_count)
        sketch._count = int(state.count)
        sketch._sum = float(state.sum)
        sketch._min = float(state.min)
        sketch._max = float(state.max)
        return sketch
