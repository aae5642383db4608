"""Per-SLO event-time buckets: what ``streams.slo.burnrate`` counts, prunes and sums over its windows.

One :class:`SloWindows` per SLO holds 1-minute buckets (for the alert windows) and 1-hour buckets (for
the error budget over the SLO period) of good / total counts, or of spent USD and unpriced calls for
cost SLIs. The definitions of windows, burn rates, lateness and budget are in ``streams.slo.config`` and
``streams.slo.burnrate``. Memory per SLO is ``O((longest window + lateness) / 1 min + period / 1 h)``
buckets of ~170 bytes each. Nothing here blocks or does I/O; not thread-safe.

State: :meth:`SloWindows.dump` / :meth:`SloWindows.load` carry the buckets and horizons across a worker
restart (``streams.state``) as plain JSON values; a dump is only loaded into an SLO with the same
:attr:`SloWindows.fingerprint` (same SLI and selector, so the counts mean the same thing).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streams.slo.config import (
    GUARDRAIL_FLAGS,
    HOUR_MS,
    MINUTE_MS,
    CostSli,
    GuardrailSli,
    LatencySli,
    Slo,
    TtftSli,
    cost_burn_rate,
    floor_minute,
    ratio_burn_rate,
    window_bounds,
)

__all__ = ["Row", "SloWindows", "WindowMeasure"]

Row = Mapping[str, Any]


class _Bucket:
    __slots__ = ("good", "spent", "total", "unpriced")

    def __init__(self) -> None:
        self.good = 0
        self.total = 0
        self.spent = 0.0
        self.unpriced = 0


@dataclass(frozen=True, slots=True)
class WindowMeasure:
    good: int
    total: int
    spent_usd: float
    unpriced: int
    burn_rate: float


def _bucket_bytes(buckets: dict[int, _Bucket]) -> int:
    size = sys.getsizeof(buckets)
    for key, bucket in buckets.items():
        size += sys.getsizeof(key) + sys.getsizeof(bucket) + sys.getsizeof(bucket.spent)
    return size


def _count(buckets: dict[int, _Bucket], key: int, good: bool, spent: float, unpriced: bool) -> None:
    bucket = buckets.get(key)
    if bucket is None:
        bucket = buckets[key] = _Bucket()
    bucket.total += 1
    bucket.good += good
    bucket.spent += spent
    bucket.unpriced += unpriced


def _count_many(
    buckets: dict[int, _Bucket], key: int, good: int, total: int, spent: float, unpriced: int
) -> None:
    bucket = buckets.get(key)
    if bucket is None:
        bucket = buckets[key] = _Bucket()
    bucket.total += total
    bucket.good += good
    bucket.spent += spent
    bucket.unpriced += unpriced


def _dump_buckets(buckets: dict[int, _Bucket]) -> list[list[float]]:
    return [[k, b.good, b.total, b.spent, b.unpriced] for k, b in sorted(buckets.items())]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _load_buckets(doc: Any, what: str) -> dict[int, _Bucket]:
    """Buckets from :func:`_dump_buckets`; raises ValueError naming the malformed entry."""
    if not isinstance(doc, list):
        raise ValueError(f"{what} must be a list of buckets, got {doc!r:.80}")
    buckets: dict[int, _Bucket] = {}
    for item in doc:
        if not (
            isinstance(item, list)
            and len(item) == 5
            and all(_is_int(v) and v >= 0 for v in (item[1], item[2], item[4]))
            and _is_int(item[0])
            and isinstance(item[3], int | float)
            and not isinstance(item[3], bool)
        ):
            raise ValueError(
                f"{what} bucket must be [start, good, total, spent, unpriced], got {item!r:.80}"
            )
        bucket = buckets[item[0]] = _Bucket()
        bucket.good, bucket.total, bucket.spent, bucket.unpriced = (
            item[1],
            item[2],
            float(item[3]),
            item[4],
        )
    return buckets


def _optional_int(doc: dict[str, Any], key: str, what: str) -> int | None:
    value = doc.get(key)
    if value is not None and not _is_int(value):
        raise ValueError(f"{what}: {key} must be an integer or null, got {value!r:.80}")
    return value


def _drop(buckets: dict[int, _Bucket], old: int | None, new: int, step: int) -> None:
    """Delete the buckets at or before ``new``; those at or before ``old`` are already gone."""
    if old is None or (new - old) // step > len(buckets):
        for key in [k for k in buckets if k <= new]:
            del buckets[key]
    else:
        for key in range(old + step, new + step, step):
            buckets.pop(key, None)


class SloWindows:
    """Buckets and counters of one SLO."""

    def __init__(self, slo: Slo) -> None:
        self.slo = slo
        self.checks = slo.selector.column_checks()
        self.model = slo.selector.model
        self.sli = slo.sli
        self.longest_ms = slo.longest_window_ms
        self.period_ms = slo.period_ms
        self.minutes: dict[int, _Bucket] = {}
        self.hours: dict[int, _Bucket] = {}
        self.horizon: int | None = None  # buckets b <= horizon are late / pruned
        self.hour_horizon: int | None = None
        self.matched = 0
        self.late = 0

    @property
    def fingerprint(self) -> str:
        """Identifies what the buckets count: the SLI and the selector (not objective or rules)."""
        definition = self.sli.model_dump_json() + self.slo.selector.model_dump_json()
        return hashlib.sha256(definition.encode()).hexdigest()[:16]

    def dump(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "horizon": self.horizon,
            "hour_horizon": self.hour_horizon,
            "minutes": _dump_buckets(self.minutes),
            "hours": _dump_buckets(self.hours),
        }

    def load(self, doc: Any) -> None:
        """Replace buckets and horizons with a :meth:`dump` of the same fingerprint.

        Raises ValueError naming the malformed part (then nothing is changed)."""
        what = f"state of SLO {self.slo.name!r}"
        if not isinstance(doc, dict) or doc.get("fingerprint") != self.fingerprint:
            raise ValueError(f"{what} is for another SLI or selector, got {doc!r:.80}")
        horizon = _optional_int(doc, "horizon", what)
        hour_horizon = _optional_int(doc, "hour_horizon", what)
        minutes = _load_buckets(doc.get("minutes"), f"{what}: minutes")
        hours = _load_buckets(doc.get("hours"), f"{what}: hours")
        self.horizon, self.hour_horizon, self.minutes, self.hours = (
            horizon,
            hour_horizon,
            minutes,
            hours,
        )

    def matches(self, row: Row) -> bool:
        for column, value in self.checks:
            if row[column] != value:
                return False
        return self.model is None or (row["request_model"] or row["response_model"]) == self.model

    def _classify(self, row: Row) -> tuple[bool, float, bool] | None:
        """(good, spent USD, unpriced) of a matching row, or None when the SLI does not count it."""
        sli = self.sli
        if isinstance(sli, CostSli):
            cost = row["cost_usd"]
            return (False, 0.0, True) if cost is None else (True, cost, False)
        if isinstance(sli, LatencySli):
            return row["duration_ms"] <= sli.threshold_ms, 0.0, False
        if isinstance(sli, TtftSli):
            ttft = row["time_to_first_token_ms"]
            return None if ttft is None else (ttft <= sli.threshold_ms, 0.0, False)
        if isinstance(sli, GuardrailSli):
            flags = row.get(GUARDRAIL_FLAGS)  # only the text-analysis consumer's rows have them
            return None if flags is None else (sli.category not in flags, 0.0, False)
        return row["status"] == "ok", 0.0, False

    def add(self, bucket_ms: int, row: Row) -> None:
        """Count a matching row whose minute bucket is after the horizon."""
        counted = self._classify(row)
        if counted is None:
            return
        _count(self.minutes, bucket_ms, *counted)
        hour_ms = bucket_ms // HOUR_MS * HOUR_MS
        if self.hour_horizon is None or hour_ms > self.hour_horizon:
            _count(self.hours, hour_ms, *counted)

    def add_many(self, rows: Sequence[Row], buckets: Sequence[int]) -> list[int]:
        """:meth:`add` for many matching rows (``buckets[i]`` is row i's minute bucket), summed per
        bucket first; returns the positions of the rows that are late (bucket at or before the
        horizon), which are not counted. The counts equal those of :meth:`add` row by row."""
        horizon = self.horizon
        late: list[int] = []
        sums: dict[int, list[Any]] = {}
        for position, (row, bucket_ms) in enumerate(zip(rows, buckets, strict=True)):
            if horizon is not None and bucket_ms <= horizon:
                late.append(position)
                continue
            counted = self._classify(row)
            if counted is None:
                continue
            good, spent, unpriced = counted
            entry = sums.get(bucket_ms)
            if entry is None:
                sums[bucket_ms] = [good, 1, spent, unpriced]
            else:
                entry[0] += good
                entry[1] += 1
                entry[2] += spent
                entry[3] += unpriced
        for bucket_ms, (good, total, spent, unpriced) in sums.items():
            _count_many(self.minutes, bucket_ms, good, total, spent, unpriced)
            hour_ms = bucket_ms // HOUR_MS * HOUR_MS
            if self.hour_horizon is None or hour_ms > self.hour_horizon:
                _count_many(self.hours, hour_ms, good, total, spent, unpriced)
        return late

    def prune(self, lateness_floor: int) -> None:
        """Move the horizons to ``lateness_floor`` (watermark - lateness, floored) and drop buckets."""
        horizon = lateness_floor - self.longest_ms
        hour_horizon = lateness_floor // HOUR_MS * HOUR_MS - self.period_ms
        _drop(self.minutes, self.horizon, horizon, MINUTE_MS)
        _drop(self.hours, self.hour_horizon, hour_horizon, HOUR_MS)
        self.horizon, self.hour_horizon = horizon, hour_horizon

    def measure(self, now_ms: int, window_ms: int) -> WindowMeasure:
        lo, hi = window_bounds(now_ms, window_ms)
        good = total = unpriced = 0
        spent = 0.0
        for key in range(lo, hi, MINUTE_MS):
            bucket = self.minutes.get(key)
            if bucket is not None:
                good += bucket.good
                total += bucket.total
                spent += bucket.spent
                unpriced += bucket.unpriced
        return WindowMeasure(
            good, total, spent, unpriced, self._burn(good, total, spent, window_ms)
        )

    def _burn(self, good: int, total: int, spent: float, window_ms: int) -> float:
        if isinstance(self.sli, CostSli):
            return cost_burn_rate(spent, window_ms, self.sli.usd_per_hour)
        assert self.slo.objective is not None
        return ratio_burn_rate(good, total, self.slo.objective)

    def budget(self, now_ms: int) -> tuple[float | None, int]:
        """(budget remaining, covered ms) over the hourly buckets of the period (streams.slo.burnrate)."""
        end_hour = floor_minute(now_ms) // HOUR_MS * HOUR_MS
        good = total = 0
        spent = 0.0
        oldest: int | None = None
        for hour, bucket in self.hours.items():
            if end_hour - self.period_ms < hour <= end_hour:
                good += bucket.good
                total += bucket.total
                spent += bucket.spent
                oldest = hour if oldest is None else min(oldest, hour)
        if oldest is None:
            return None, 0
        covered = min(self.period_ms, floor_minute(now_ms) + MINUTE_MS - oldest)
        if isinstance(self.sli, CostSli):
            return 1.0 - spent / (self.sli.usd_per_hour * self.period_ms / HOUR_MS), covered
        if total == 0:
            return None, covered
        assert self.slo.objective is not None
        return 1.0 - ratio_burn_rate(good, total, self.slo.objective), covered

    def memory_bytes(self) -> int:
        return _bucket_bytes(self.minutes) + _bucket_bytes(self.hours)
