"""The event-time watermark of a drift monitor: the oldest of its sources' newest start times.

A source is a partition. A source read to its end is *idle* and holds the watermark back no longer, so
a partition read ahead of the others closes nothing early and an idle one blocks nothing. The watermark
never moves back. Pure bookkeeping; nothing blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Watermark"]


@dataclass(slots=True)
class Watermark:
    newest_ms: int = 0
    newest_by_source: dict[int, int] = field(default_factory=dict)
    idle_sources: set[int] = field(default_factory=set)

    def expect(self, source: int) -> None:
        """A source that will deliver: nothing closes until it did or went idle."""
        self.newest_by_source.setdefault(source, 0)

    def idle(self, source: int) -> None:
        """A source read to its end."""
        self.idle_sources.add(source)
        self._advance()

    def observe(self, source: int, start_ms: int) -> None:
        self.idle_sources.discard(source)
        self.newest_by_source[source] = max(self.newest_by_source.get(source, 0), start_ms)
        self._advance()

    def _advance(self) -> None:
        active = [t for s, t in self.newest_by_source.items() if s not in self.idle_sources]
        candidate = min(active) if active else max(self.newest_by_source.values(), default=0)
        self.newest_ms = max(self.newest_ms, candidate)
