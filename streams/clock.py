"""The clock the stream's long-lived state is checked against: a callable returning epoch milliseconds.

The burn-rate evaluator (``streams.slo.burnrate``) and the top-K (``streams.analytics.topk``) keep event-time
watermarks (the newest event time seen). One event stamped by a broken clock (say the year 2100) would
move such a watermark decades ahead and empty every window. With a :data:`Clock`, an event whose time
lies more than ``max_future_ms`` after ``clock()`` is counted apart and ignored, so no watermark can pass
``clock() + max_future_ms``; and a row too old for any window at ``clock()`` is not counted in one.

The worker passes :func:`wall_clock_ms`; tests inject a fixed or stepping clock. Reading it is cheap
(~0.1 µs) and never blocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

__all__ = ["DEFAULT_MAX_FUTURE_MS", "Clock", "wall_clock_ms"]

Clock = Callable[[], int]  # epoch milliseconds (UTC)

# How far after the clock an event time may lie before it is treated as a broken producer clock.
DEFAULT_MAX_FUTURE_MS: Final = 5 * 60_000


def wall_clock_ms() -> int:
    """The wall clock, in epoch milliseconds."""
    return time.time_ns() // 1_000_000
