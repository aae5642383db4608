"""Top-K users by cost over a trailing hour, in bounded memory: Space-Saving per minute bucket.

Algorithm: Metwally, Agrawal, El Abbadi, "Efficient Computation of Frequent and Top-k Elements in Data
Streams" (2005), weighted by cost. Each 1-minute bucket keeps at most ``capacity`` users; when a new user
arrives at a full bucket, it replaces the user with the smallest total and inherits that total as its
over-estimation error. Guarantees, per bucket and so for their sum over the hour:
- a user's reported cost is never below its true cost and exceeds it by at most ``error_bound_usd``;
- any user whose true cost exceeds (bucket total / capacity) is present.
Memory: at most ``capacity`` entries x 60 buckets. Cost per event: one dict update (O(1)), plus
O(capacity) for an eviction, which only happens once a bucket is full.

Buckets are keyed by event time; the trailing hour ends at the newest event time seen (the watermark),
so tests and replays need no wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_CAPACITY", "TopUser", "TopUsers"]

DEFAULT_CAPACITY: Final = 1_000
BUCKET_MS: Final = 60_000
HOUR_MS: Final = 3_600_000

UserKey = tuple[str, str]  # (tenant_id, user_id)


@dataclass(frozen=True, slots=True)
class TopUser:
    tenant_id: str
    user_id: str
    cost_usd: float
    requests: int
    error_bound_usd: float


class _Bucket:
    __slots__ = ("capacity", "entries")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # user -> [cost, requests, error]
        self.entries: dict[UserKey, list[float]] = {}

    def add(self, user: UserKey, cost: float) -> None:
        entry = self.entries.get(user)
        if entry is not None:
            entry[0] += cost
            entry[1] += 1
            return
        if len(self.entries) < self.capacity:
            self.entries[user] = [cost, 1, 0.0]
            return
        victim = min(self.entries, key=lambda k: self.entries[k][0])
        floor = self.entries.pop(victim)[0]
        self.entries[user] = [floor + cost, 1, floor]


class TopUsers:
    """Per-user cost over the trailing hour; :meth:`top` returns the K most expensive users."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, window_ms: int = HOUR_MS) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity!r}")
        if window_ms < BUCKET_MS or window_ms % BUCKET_MS:
            raise ValueError(
                f"window_ms must be a positive multiple of {BUCKET_MS}, got {window_ms!r}"
            )
        self.capacity = capacity
        self.window_ms = window_ms
        self.watermark_ms = 0
        self._buckets: dict[int, _Bucket] = {}

    def add(self, tenant_id: str, user_id: str, cost_usd: float | None, at_ms: int) -> None:
        """Count one call; calls without a user or with an unknown (NULL) cost add nothing."""
        if not user_id or cost_usd is None:
            return
        if cost_usd < 0:
            raise ValueError(f"cost_usd must be >= 0, got {cost_usd!r}")
        self.watermark_ms = max(self.watermark_ms, at_ms)
        start = at_ms // BUCKET_MS * BUCKET_MS
        if start <= self.watermark_ms - self.window_ms:
            return  # older than the trailing window: it still reaches llm_user_cost_1h
        bucket = self._buckets.get(start)
        if bucket is None:
            bucket = self._buckets[start] = _Bucket(self.capacity)
            self._prune()
        bucket.add((tenant_id, user_id), cost_usd)

    def _prune(self) -> None:
        oldest = self.watermark_ms - self.window_ms
        for start in [s for s in self._buckets if s <= oldest]:
            del self._buckets[start]

    def top(self, k: int) -> list[TopUser]:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k!r}")
        self._prune()
        merged: dict[UserKey, list[float]] = {}
        for bucket in self._buckets.values():
            for user, (cost, requests, error) in bucket.entries.items():
                acc = merged.setdefault(user, [0.0, 0, 0.0])
                acc[0] += cost
                acc[1] += requests
                acc[2] += error
        ranked = sorted(merged.items(), key=lambda item: (-item[1][0], item[0]))[:k]
        return [
            TopUser(tenant, user, cost, int(requests), error)
            for (tenant, user), (cost, requests, error) in ranked
        ]
