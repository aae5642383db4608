"""The samplers: heavy-tail shape, weighted choice, Zipf weights, ids."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from itertools import pairwise

import pytest

from producers.simulator.sampling import HeavyTail, Weighted, hex_id, lognormal, zipf_weights


@pytest.fixture(scope="module")
def tail_draws() -> list[float]:
    rng = random.Random(1)
    sampler = HeavyTail()
    return sorted(sampler(rng) for _ in range(50_000))


def test_heavy_tail_body_has_median_one(tail_draws: list[float]) -> None:
    assert 0.9 < statistics.median(tail_draws) < 1.1


def test_heavy_tail_p99_is_far_above_the_median(tail_draws: list[float]) -> None:
    p99 = tail_draws[int(0.99 * len(tail_draws))]
    assert p99 / statistics.median(tail_draws) > 4


def test_heavy_tail_is_capped(tail_draws: list[float]) -> None:
    assert max(tail_draws) <= HeavyTail().cap
    assert max(tail_draws) > 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"tail_share": 0.0}, "got 0.0"), ({"tail_share": 1.0}, "got 1.0"), ({"cap": 1.0}, "cap=1.0")],
)
def test_heavy_tail_rejects_bad_parameters(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HeavyTail(**kwargs)


def test_lognormal_has_the_requested_median() -> None:
    rng = random.Random(2)
    assert 95 < statistics.median(lognormal(rng, 100.0, 0.8) for _ in range(20_000)) < 105


def test_weighted_follows_the_weights() -> None:
    rng = random.Random(3)
    pick = Weighted(["a", "b", "c"], [6.0, 3.0, 1.0])
    counts = Counter(pick(rng) for _ in range(20_000))
    assert 0.57 < counts["a"] / 20_000 < 0.63
    assert 0.08 < counts["c"] / 20_000 < 0.12


def test_weighted_rejects_mismatched_weights() -> None:
    with pytest.raises(ValueError, match="got 2 items and 1 weights"):
        Weighted(["a", "b"], [1.0])


def test_zipf_weights_decrease_with_rank() -> None:
    weights = zipf_weights(100, 1.0)
    assert weights[0] == 1.0 and weights[9] == pytest.approx(0.1)
    assert all(a > b for a, b in pairwise(weights))


def test_zipf_weights_reject_empty_populations() -> None:
    with pytest.raises(ValueError, match="got 0"):
        zipf_weights(0, 1.0)


@pytest.mark.parametrize("bits", [64, 96, 128])
def test_hex_ids_have_fixed_width(bits: int) -> None:
    rng = random.Random(4)
    ids = [hex_id(rng, bits) for _ in range(200)]
    assert all(len(i) == bits // 4 and int(i, 16) >= 0 for i in ids)
    assert len(set(ids)) == 200
