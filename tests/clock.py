"""Test times relative to the wall clock, so no test depends on the calendar day it runs.

Rows stamped on fixed dates expire once a table's TTL passes them (llm_dlq 30 d, llm_calls 90 d, rollups
400 d) and events on fixed dates fall outside the worker's accepted window (now - 30 d .. now + 1 h).
Every test time therefore derives from one reading of the clock: the ``clock`` fixture in
tests/conftest.py (one reading per test), or ``Clock.read()`` where a module needs times at import
(parametrize arguments). Times are floored to a whole minute (or hour) so that minute buckets, windows
and partitions line up the same way on every run. ``make test`` runs the time-sensitive tests with the
clock shifted a year ahead (scripts/test-clock-shift.sh) to keep it so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ["HOUR", "MINUTE", "Clock", "floor_time", "to_ms"]

MINUTE: Final = timedelta(minutes=1)
HOUR: Final = timedelta(hours=1)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime (exact: no float rounding)."""
    if moment.tzinfo is None:
        raise ValueError(f"expected an aware datetime, got {moment!r}")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def floor_time(moment: datetime, step: timedelta = MINUTE) -> datetime:
    """``moment`` floored to a whole multiple of ``step`` since the epoch (UTC)."""
    if step <= timedelta(0):
        raise ValueError(f"step must be positive, got {step!r}")
    return moment - (moment - _EPOCH) % step


@dataclass(frozen=True)
class Clock:
    """One reading of the wall clock (UTC); every time a test uses derives from ``now``."""

    now: datetime

    @classmethod
    def read(cls) -> Clock:
        return cls(datetime.now(UTC))

    @property
    def now_ms(self) -> int:
        return to_ms(self.now)

    def ago(
        self,
        *,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        step: timedelta = MINUTE,
    ) -> datetime:
        """``now`` minus the span, floored to ``step`` (a minute unless told)."""
        span = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        return floor_time(self.now - span, step)

    def ago_ms(
        self, *, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0
    ) -> int:
        """``ago(...)`` (floored to the minute) in epoch milliseconds."""
        return to_ms(self.ago(days=days, hours=hours, minutes=minutes, seconds=seconds))
