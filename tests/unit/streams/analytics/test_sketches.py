"""LatencySketch: same bins as ddsketch.DDSketch(0.01), exact merges, 1% quantiles, bad input."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from ddsketch import DDSketch
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.analytics.sketches import (
    GAMMA,
    MIN_INDEXABLE_VALUE,
    RELATIVE_ACCURACY,
    LatencySketch,
    SketchState,
    bin_key,
    bin_value,
)

QUANTILES = (0.0, 0.001, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)
# Floating-point slack on top of the 1% bound: a value on a bin boundary is off by exactly alpha.
FLOAT_SLACK = 1e-12


# Found by search on the dev machine: numpy's SIMD log differs from libm's in the last bit for
# these values and the key computed from numpy's log lands in the next bin.
NUMPY_LOG_DISAGREES = (1.8915176545413322e17, 1.1674887516807324e18)


def _boundary_values() -> npt.NDArray[np.float64]:
    """Values on and one ulp either side of bin boundaries, where rounding decides the key."""
    keys = np.arange(-3000, 3000, dtype=np.float64)
    edges = GAMMA**keys
    return np.concatenate(
        [edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf), NUMPY_LOG_DISAGREES]
    )


def _values(kind: str) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(7)
    if kind == "lognormal":
        return rng.lognormal(mean=5.0, sigma=1.5, size=20_000)
    if kind == "log_uniform_wide":
        return np.exp(rng.uniform(-690.0, 690.0, size=20_000))
    if kind == "integers_ms":
        return rng.integers(0, 5_000, size=20_000).astype(np.float64)
    if kind == "bin_boundaries":
        return _boundary_values()
    raise AssertionError(kind)


KINDS = ("lognormal", "log_uniform_wide", "integers_ms", "bin_boundaries")


def _reference(values: npt.NDArray[np.float64]) -> DDSketch:
    reference = DDSketch(RELATIVE_ACCURACY)
    for value in values.tolist():
        reference.add(value)
    return reference


def _reference_bins(reference: DDSketch) -> dict[int, int]:
    store = reference._store
    return {i + store.offset: int(n) for i, n in enumerate(store.bins) if n}


def test_constants_match_ddsketch_mapping() -> None:
    mapping = DDSketch(RELATIVE_ACCURACY)._mapping
    assert mapping.gamma == GAMMA
    assert mapping.min_possible == MIN_INDEXABLE_VALUE
    assert math.isclose(GAMMA, (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY), rel_tol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_scalar_key_and_value_match_ddsketch(kind: str) -> None:
    mapping = DDSketch(RELATIVE_ACCURACY)._mapping
    values = [v for v in _values(kind).tolist() if v > MIN_INDEXABLE_VALUE]
    assert [bin_key(v) for v in values] == [mapping.key(v) for v in values]
    keys = sorted({bin_key(v) for v in values})
    assert [bin_value(k) for k in keys] == [mapping.value(k) for k in keys]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batched", [False, True], ids=["add", "add_many"])
def test_bins_identical_to_ddsketch(kind: str, batched: bool) -> None:
    values = _values(kind)
    sketch = LatencySketch()
    if batched:
        sketch.add_many(values)
    else:
        for value in values.tolist():
            sketch.add(value)
    reference = _reference(values)
    state = sketch.to_state()
    assert state.bins == _reference_bins(reference)
    assert state.zero_count == reference._zero_count
    assert state.count == reference.count == values.size
    assert state.sum == pytest.approx(reference.sum, rel=1e-9)
    assert (state.min, state.max) == (values.min(), values.max())


@pytest.mark.parametrize("kind", KINDS)
def test_quantiles_equal_ddsketch(kind: str) -> None:
    values = np.concatenate([_values(kind), np.zeros(50)])
    sketch = LatencySketch()
    sketch.add_many(values)
    reference = _reference(values)
    got = [sketch.quantile(q) for q in QUANTILES]
    assert got == [reference.get_quantile_value(q) for q in QUANTILES]


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        # Values in (0, MIN_INDEXABLE_VALUE] (subnormals) are reported as 0 by design.
        st.one_of(st.just(0.0), st.floats(min_value=1e-300, max_value=1e9)),
        min_size=1,
        max_size=300,
    ),
    q=st.floats(min_value=0.0, max_value=1.0),
)
def test_quantile_within_relative_accuracy_of_exact(values: list[float], q: float) -> None:
    sketch = LatencySketch()
    sketch.add_many(values)
    # The sketch's rank is floor(q * (n - 1)), which is numpy's "lower" method.
    exact = float(np.quantile(np.asarray(values), q, method="lower"))
    got = sketch.quantile(q)
    assert got is not None
    assert abs(got - exact) <= (RELATIVE_ACCURACY + FLOAT_SLACK) * exact


@pytest.mark.parametrize("parts", [2, 7, 50])
def test_merge_equals_sketch_of_union(parts: int) -> None:
    values = np.concatenate([_values("lognormal"), np.zeros(30), _values("integers_ms")])
    np.random.default_rng(parts).shuffle(values)
    merged = LatencySketch()
    for piece in np.array_split(values, parts):
        part = LatencySketch()
        part.add_many(piece)
        merged.merge(part)
    whole = LatencySketch()
    whole.add_many(values)
    got, want = merged.to_state(), whole.to_state()
    assert (got.bins, got.zero_count, got.count) == (want.bins, want.zero_count, want.count)
    assert (got.min, got.max) == (want.min, want.max)
    assert got.sum == pytest.approx(want.sum, rel=1e-12)
    assert [merged.quantile(q) for q in QUANTILES] == [whole.quantile(q) for q in QUANTILES]


def test_merge_into_empty_and_of_empty() -> None:
    full = LatencySketch()
    full.add_many([1.0, 2.0, 0.0])
    empty = LatencySketch()
    empty.merge(full)
    full.merge(LatencySketch())
    assert empty.to_state() == full.to_state()


def test_state_round_trip() -> None:
    sketch = LatencySketch()
    sketch.add_many(np.concatenate([_values("lognormal"), np.zeros(3)]))
    state = sketch.to_state()
    again = LatencySketch.from_state(state)
    assert again.to_state() == state
    assert [again.quantile(q) for q in QUANTILES] == [sketch.quantile(q) for q in QUANTILES]
    sketch.add(1.0)
    assert state.count == sketch.count - 1, "to_state must copy, not alias"


def test_from_state_drops_empty_bins() -> None:
    state = SketchState(bins={3: 2, 4: 0}, zero_count=1, count=3, sum=3.0, min=0.0, max=1.1)
    assert LatencySketch.from_state(state).to_state().bins == {3: 2}


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (SketchState(bins={1: 2}, zero_count=0, count=5), "got 5"),
        (SketchState(bins={1: -1}, zero_count=0, count=-1), r"\{1: -1\}"),
    ],
)
def test_from_state_rejects_inconsistent_counts(state: SketchState, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LatencySketch.from_state(state)


@pytest.mark.parametrize("value", [-1.0, -1e-300, math.nan, math.inf])
def test_add_rejects_bad_values(value: float) -> None:
    sketch = LatencySketch()
    with pytest.raises(ValueError, match=repr(value)):
        sketch.add(value)
    assert sketch.count == 0


@pytest.mark.parametrize("value", [-2.5, math.nan, -math.inf])
def test_add_many_rejects_whole_batch(value: float) -> None:
    sketch = LatencySketch()
    with pytest.raises(ValueError, match=rf"got {value!r} at index 2"):
        sketch.add_many([1.0, 2.0, value, 3.0])
    assert (sketch.count, sketch.num_bins) == (0, 0)


@pytest.mark.parametrize("q", [-0.01, 1.01, math.nan])
def test_quantile_rejects_q_outside_unit_interval(q: float) -> None:
    sketch = LatencySketch()
    sketch.add(1.0)
    with pytest.raises(ValueError, match=repr(q)):
        sketch.quantile(q)


def test_empty_sketch() -> None:
    sketch = LatencySketch()
    sketch.add_many([])
    assert sketch.quantile(0.5) is None
    assert sketch.to_state() == SketchState()


def test_zeros_only() -> None:
    sketch = LatencySketch()
    sketch.add_many([0.0, 0.0])
    sketch.add(0.0)
    assert (sketch.zero_count, sketch.num_bins, sketch.quantile(1.0)) == (3, 0, 0.0)
