"""Small, fast samplers over an injected ``random.Random`` (no global random state).

- :class:`HeavyTail`: a multiplier with median ~1: a lognormal body and, with probability ``tail_share``,
  a Pareto tail that starts at the body's ``1 - tail_share`` quantile, capped at ``cap``.
- :class:`Weighted`: a weighted choice via precomputed cumulative weights (O(log n) per draw).
- :func:`zipf_weights`: popularity weights ``1 / rank**s`` for Zipf-like user activity.
- :func:`hex_id`: a random lower-case hex id of a given number of bits.

Every function draws only from the ``random.Random`` it is given, so a seeded generator gives the same
sequence on every run and platform (CPython's Mersenne Twister is portable).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from statistics import NormalDist
from typing import Final, Generic, TypeVar

__all__ = ["HeavyTail", "Weighted", "hex_id", "lognormal", "zipf_weights"]

T = TypeVar("T")

BODY_SIGMA: Final = 0.45
TAIL_SHARE: Final = 0.03
TAIL_ALPHA: Final = 1.6
TAIL_CAP: Final = 40.0


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    """A lognormal draw with the given median (``exp(mu)``) and log-space spread."""
    return median * math.exp(rng.gauss(0.0, sigma))


def hex_id(rng: random.Random, bits: int) -> str:
    return format(rng.getrandbits(bits), f"0{bits // 4}x")


def zipf_weights(count: int, exponent: float) -> list[float]:
    """Weights of ranks 1..count under Zipf's law; rank 1 is the most active."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count!r}")
    return [1.0 / (rank**exponent) for rank in range(1, count + 1)]


@dataclass(frozen=True, slots=True)
class HeavyTail:
    """A latency multiplier: lognormal body (median 1) plus a Pareto tail with probability tail_share."""

    sigma: float = BODY_SIGMA
    tail_share: float = TAIL_SHARE
    alpha: float = TAIL_ALPHA
    cap: float = TAIL_CAP
    tail_start: float = field(init=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.tail_share < 1.0:
            raise ValueError(f"tail_share must be within (0, 1), got {self.tail_share!r}")
        if not (self.sigma > 0 and self.alpha > 0 and self.cap > 1):
            raise ValueError(
                f"need sigma > 0, alpha > 0, cap > 1, got sigma={self.sigma!r}, "
                f"alpha={self.alpha!r}, cap={self.cap!r}"
            )
        z = NormalDist().inv_cdf(1.0 - self.tail_share)
        object.__setattr__(self, "tail_start", math.exp(self.sigma * z))

    def __call__(self, rng: random.Random) -> float:
        if rng.random() < self.tail_share:
            return min(self.cap, self.tail_start * rng.paretovariate(self.alpha))
        return math.exp(rng.gauss(0.0, self.sigma))


class Weighted(Generic[T]):
    """Draws one of ``items`` with probability proportional to its weight."""

    __slots__ = ("_cumulative", "_items", "_total")

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        if not items or len(items) != len(weights):
            raise ValueError(
                f"need as many weights as items (at least one), got {len(items)} items "
                f"and {len(weights)} weights"
            )
        self._items = tuple(items)
        self._cumulative = list(accumulate(weights))
        self._total = self._cumulative[-1]

    def index(self, rng: random.Random) -> int:
        position = bisect_right(self._cumulative, rng.random() * self._total)
        return min(position, len(self._items) - 1)

    def __call__(self, rng: random.Random) -> T:
        return self._items[self.index(rng)]

    @property
    def items(self) -> tuple[T, ...]:
        return self._items
