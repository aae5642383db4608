"""Top-K users by cost over a trailing hour, in bounded memory: Space-Saving per minute bucket.

Algorithm: Metwally, Agrawal, El Abbadi, "Efficient Computation of Frequent and Top-k Elements in Data
Streams" (2005), weighted by cost. Each 1-minute bucket keeps at most ``capacity`` users; when a new user
arrives at a full bucket, it replaces the user with the smallest total and inherits that total as its
over-estimation error. Guarantees, per bucket and so for their sum over the hour:
- a user's reported cost is never below its true cost and exceeds it by at most ``error_bound_usd``;
- any user whose true cost exceeds (bucket total / capacity) is present.
Memory: at most ``capacity`` entries x 60 buckets (and a heap of about as many items once a bucket
is full). Cost per event: one dict update (O(1)), plus O(log capacity) amortized for an eviction, which
only happens once a bucket is full.

Time: buckets are keyed by event time (the call's start). The trailing hour ends at the reference time
``max(watermark, clock())``, where the watermark is the newest start time counted; without a clock it
is the watermark alone (tests and replays need no wall clock). With a clock (``streams.clock``), a call
starting more than ``max_future_ms`` after ``clock()`` is not counted (``future_events``): one event
stamped in the year 2100 cannot move the window away from the real users. A call starting at or before
the trailing hour is not counted either (``late_events``); it still reaches ``llm_user_cost_1h``.

State: :meth:`TopUsers.dump` / :meth:`TopUsers.load` carry the buckets across a worker restart
(``streams.state``). Nothing here blocks or does I/O; not thread-safe.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any, Final

from streams.clock import DEFAULT_MAX_FUTURE_MS, Clock

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
    """One minute's Space-Saving summary. Evictions take the smallest total from a lazy min-heap of
    ``(cost, insertion number, user)``, built when the bucket first fills: totals only grow, so a heap
    item whose cost is out of date is pushed again with the current one when it reaches the top, and
    an item of an evicted user is dropped. The victim is the one ``min(entries, key=cost)`` would pick
    (ties go to the earliest inserted), in O(log capacity) amortized rather than O(capacity)."""

    __slots__ = ("_heap", "_inserted", "_order", "capacity", "entries")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # user -> [cost, requests, error]
        self.entries: dict[UserKey, list[float]] = {}
        self._order: dict[UserKey, int] = {}  # user -> insertion number
        self._inserted = 0
        self._heap: list[tuple[float, int, UserKey]] | None = None

    def put(self, user: UserKey, cost: float, requests: int, error: float) -> None:
        """Insert a user not yet present (the caller keeps the bucket within capacity)."""
        self.entries[user] = [cost, requests, error]
        self._order[user] = order = self._inserted
        self._inserted += 1
        if self._heap is not None:
            heapq.heappush(self._heap, (cost, order, user))

    def add(self, user: UserKey, cost: float) -> None:
        entry = self.entries.get(user)
        if entry is not None:
            entry[0] += cost
            entry[1] += 1
            return
        if len(self.entries) < self.capacity:
            self.put(user, cost, 1, 0.0)
            return
        victim = self._smallest()
        floor = self.entries.pop(victim)[0]
        del self._order[victim]
        self.put(user, floor + cost, 1, floor)

    def _smallest(self) -> UserKey:
        heap = self._heap
        if heap is None:
            heap = self._heap = [(e[0], self._order[u], u) for u, e in self.entries.items()]
            heapq.heapify(heap)
        while True:
            cost, order, user = heap[0]
            entry = self.entries.get(user)
            if entry is None or self._order[user] != order:
                heapq.heappop(heap)  # an evicted user (or an earlier stay of a re-inserted one)
            elif entry[0] != cost:
                heapq.heapreplace(heap, (entry[0], order, user))  # its total grew since
            else:
                heapq.heappop(heap)
                return user


class TopUsers:
    """Per-user cost over the trailing hour; :meth:`top` returns the K most expensive users."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        window_ms: int = HOUR_MS,
        *,
        clock: Clock | None = None,
        max_future_ms: int = DEFAULT_MAX_FUTURE_MS,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity!r}")
        if window_ms < BUCKET_MS or window_ms % BUCKET_MS:
            raise ValueError(
                f"window_ms must be a positive multiple of {BUCKET_MS}, got {window_ms!r}"
            )
        if max_future_ms < 0:
            raise ValueError(f"max_future_ms must be >= 0, got {max_future_ms!r}")
        self.capacity = capacity
        self.window_ms = window_ms
        self.watermark_ms = 0
        self.future_events = 0
        self.late_events = 0
        self._clock = clock
        self._max_future_ms = max_future_ms
        self._buckets: dict[int, _Bucket] = {}

    def _reference(self, now_ms: int | None) -> int:
        """Where the trailing window ends: the watermark, or the clock if that is later."""
        return self.watermark_ms if now_ms is None else max(self.watermark_ms, now_ms)

    def add(self, tenant_id: str, user_id: str, cost_usd: float | None, at_ms: int) -> None:
        """Count one call; calls without a user or with an unknown (NULL) cost add nothing."""
        if not user_id or cost_usd is None:
            return
        if cost_usd < 0:
            raise ValueError(f"cost_usd must be >= 0, got {cost_usd!r}")
        now = None if self._clock is None else self._clock()
        if now is not None and at_ms > now + self._max_future_ms:
            self.future_events += 1
            return
        self.watermark_ms = max(self.watermark_ms, at_ms)
        start = at_ms // BUCKET_MS * BUCKET_MS
        if start <= self._reference(now) - self.window_ms:
            self.late_events += (
                1  # older than the trailing window: it still reaches llm_user_cost_1h
            )
            return
        bucket = self._buckets.get(start)
        if bucket is None:
            bucket = self._buckets[start] = _Bucket(self.capacity)
            self._prune(now)
        bucket.add((tenant_id, user_id), cost_usd)

    def _prune(self, now_ms: int | None) -> None:
        oldest = self._reference(now_ms) - self.window_ms
        for start in [s for s in self._buckets if s <= oldest]:
            del self._buckets[start]

    def top(self, k: int) -> list[TopUser]:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k!r}")
        self._prune(None if self._clock is None else self._clock())
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

    def dump(self) -> dict[str, Any]:
        """The buckets as plain JSON values (``[start, [[tenant, user, cost, requests, error]...]]``)."""
        return {
            "watermark": self.watermark_ms,
            "buckets": [
                [start, [[t, u, *entry] for (t, u), entry in bucket.entries.items()]]
                for start, bucket in sorted(self._buckets.items())
            ],
        }

    def load(self, doc: Any) -> None:
        """Replace the buckets with a :meth:`dump`; raises ValueError naming a malformed part."""
        if not isinstance(doc, dict) or not _is_int(doc.get("watermark")):
            raise ValueError(f"top-K state needs an integer watermark, got {doc!r:.80}")
        buckets_doc = doc.get("buckets")
        if not isinstance(buckets_doc, list):
            raise ValueError(f"top-K state needs a list of buckets, got {buckets_doc!r:.80}")
        buckets: dict[int, _Bucket] = {}
        for item in buckets_doc:
            if not (
                isinstance(item, list)
                and len(item) == 2
                and _is_int(item[0])
                and isinstance(item[1], list)
                and len(item[1]) <= self.capacity
            ):
                raise ValueError(
                    f"top-K bucket must be [start, at most {self.capacity} entries], "
                    f"got {item!r:.80}"
                )
            bucket = buckets[item[0]] = _Bucket(self.capacity)
            for entry in item[1]:
                tenant, user, cost, requests, error = _entry(entry)
                if (tenant, user) in bucket.entries:
                    raise ValueError(f"top-K bucket {item[0]} lists user {(tenant, user)!r} twice")
                bucket.put((tenant, user), cost, requests, error)
        self.watermark_ms = doc["watermark"]
        self._buckets = buckets
        self._prune(None if self._clock is None else self._clock())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry(entry: Any) -> tuple[str, str, float, int, float]:
    if not (
        isinstance(entry, list)
        and len(entry) == 5
        and all(isinstance(v, str) for v in entry[:2])
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in entry[2:])
    ):
        raise ValueError(
            f"top-K entry must be [tenant, user, cost, requests, error], got {entry!r:.80}"
        )
    return entry[0], entry[1], float(entry[2]), int(entry[3]), float(entry[4])
