"""Shape drift over event-time windows: calls in, one ``llm_drift`` row per tested feature out.

Calls are grouped into tumbling windows of ``window_ms`` by their start time. A window closes once the
watermark is ``grace_ms`` past its end (calls later than that are counted as ``late`` and dropped).
The watermark is the oldest of the sources' (partitions') newest start times, leaving out sources
that are idle (read to their end); so a partition read ahead of the others closes nothing early, and
an idle one holds nothing back. A closed window is compared with its **reference**: the merge of the
``reference_windows`` windows
closed before it (a trailing reference: it follows slow seasonal change and flags what is new within the
last hour), or a pinned baseline window when one is given (a frozen reference: everything is compared
with a known-good period). The comparison and the multiple-testing control are ``streams.drift.shape``'s.

Determinism: windows are defined by event time and a window's rows depend only on the calls in it and
in its reference, so a replay of the same calls gives the same rows (the table collapses them). Memory:
a window is a few hundred counters per scope. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from streams.drift.shape import ShapeWindow, compare, flag
from streams.drift.watermark import Watermark

__all__ = [
    "DRIFT_FIELDS",
    "DriftConfig",
    "ShapeDriftMonitor",
    "TestedResult",
    "WindowConfig",
    "WindowSpan",
    "drift_row",
]

DIRECTION_NONE: Final = ""
DRIFT_FIELDS: Final = (
    "window_start",
    "window_end",
    "reference_start",
    "reference_end",
    "reference_kind",
    "service",
    "model",
    "span_kind",
    "direction",
    "feature",
    "test",
    "statistic",
    "p_value",
    "q_value",
    "effect",
    "reference_n",
    "current_n",
    "top_shift",
    "flagged",
    "evaluated_at",
)


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """What every drift monitor's windows need: their length, the trailing reference, the grace for
    late calls, the minimum sample per scope, and the false discovery rate."""

    window_ms: int = 600_000
    reference_windows: int = 6
    grace_ms: int = 60_000
    min_samples: int = 200
    fdr: float = 0.01

    def __post_init__(self) -> None:
        for name in ("window_ms", "reference_windows", "min_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.grace_ms < 0:
            raise ValueError(f"grace_ms must be >= 0, got {self.grace_ms!r}")


@dataclass(frozen=True, slots=True)
class DriftConfig(WindowConfig):
    min_psi: float = 0.1


@dataclass(slots=True)
class ShapeDriftMonitor:
    config: DriftConfig = field(default_factory=DriftConfig)
    pinned: ShapeWindow | None = None
    pinned_span: tuple[int, int] = (0, 0)
    open: dict[int, ShapeWindow] = field(default_factory=dict)
    closed: deque[tuple[int, ShapeWindow]] = field(default_factory=deque)
    watermark: Watermark = field(default_factory=Watermark)
    late: int = 0

    @property
    def newest_ms(self) -> int:
        return self.watermark.newest_ms

    def expect(self, source: int) -> None:
        """A source (partition) that will deliver: nothing closes until it did or went idle."""
        self.watermark.expect(source)

    def idle(self, source: int) -> None:
        """A source read to its end: it holds the watermark back no longer."""
        self.watermark.idle(source)

    def add(self, row: Mapping[str, Any], source: int = 0) -> None:
        """Add one call read from ``source`` (its partition)."""
        start = row.get("start_time")
        if not isinstance(start, int) or isinstance(start, bool):
            return
        window = start - start % self.config.window_ms
        if window + self.config.window_ms + self.config.grace_ms <= self.newest_ms:
            self.late += 1
            return
        self.watermark.observe(source, start)
        self.open.setdefault(window, ShapeWindow()).add(row)

    def close_due(self, evaluated_at_ms: int) -> list[dict[str, Any]]:
        """Close every window past its grace; return the rows of their comparisons."""
        rows: list[dict[str, Any]] = []
        due = sorted(
            w for w in self.open
            if w + self.config.window_ms + self.config.grace_ms <= self.newest_ms
        )  # fmt: skip
        for start in due:
            rows.extend(self._close(start, self.open.pop(start), evaluated_at_ms))
        return rows

    def _reference(self) -> tuple[ShapeWindow, int, int, str] | None:
        if self.pinned is not None:
            return self.pinned, *self.pinned_span, "pinned"
        if len(self.closed) < self.config.reference_windows:
            return None
        merged = ShapeWindow()
        for _start, window in self.closed:
            merged.merge(window)
        first = self.closed[0][0]
        return merged, first, self.closed[-1][0] + self.config.window_ms, "trailing"

    def _close(self, start: int, window: ShapeWindow, evaluated_at_ms: int) -> list[dict[str, Any]]:
        reference = self._reference()
        rows: list[dict[str, Any]] = []
        if reference is not None:
            ref_window, ref_start, ref_end, kind = reference
            results = flag(
                compare(ref_window, window, min_samples=self.config.min_samples),
                fdr=self.config.fdr,
                min_psi=self.config.min_psi,
            )
            span = WindowSpan(
                start, start + self.config.window_ms, ref_start, ref_end, kind, evaluated_at_ms
            )
            rows = [drift_row(span, (*r.scope, DIRECTION_NONE), r, r.psi) for r in results]
        self.closed.append((start, window))
        while len(self.closed) > self.config.reference_windows:
            self.closed.popleft()
        return rows


class TestedResult(Protocol):
    """What every drift test result has (shape and embedding results alike)."""

    @property
    def feature(self) -> str: ...
    @property
    def test(self) -> str: ...
    @property
    def statistic(self) -> float: ...
    @property
    def p_value(self) -> float: ...
    @property
    def q_value(self) -> float: ...
    @property
    def reference_n(self) -> int: ...
    @property
    def current_n(self) -> int: ...
    @property
    def top_shift(self) -> str: ...
    @property
    def flagged(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class WindowSpan:
    """A closed window, the reference it was compared with, and when."""

    start: int
    end: int
    reference_start: int
    reference_end: int
    reference_kind: str
    evaluated_at: int


def drift_row(
    span: WindowSpan, scope: tuple[str, str, str, str], result: TestedResult, effect: float
) -> dict[str, Any]:
    """The ``llm_drift`` row of one result; ``scope`` is (service, model, span kind, direction)."""
    service, model, span_kind, direction = scope
    return {
        "window_start": span.start,
        "window_end": span.end,
        "reference_start": span.reference_start,
        "reference_end": span.reference_end,
        "reference_kind": span.reference_kind,
        "service": service,
        "model": model,
        "span_kind": span_kind,
        "direction": direction,
        "feature": result.feature,
        "test": result.test,
        "statistic": result.statistic,
        "p_value": result.p_value,
        "q_value": result.q_value,
        "effect": effect,
        "reference_n": result.reference_n,
        "current_n": result.current_n,
        "top_shift": result.top_shift,
        "flagged": result.flagged,
        "evaluated_at": span.evaluated_at,
    }
