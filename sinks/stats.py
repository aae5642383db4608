"""Counters of the ClickHouse sink, readable from any thread as a frozen snapshot.

The sink's thread updates a :class:`StatsRecorder`; other threads (CLI, health checks, tests) call
:meth:`StatsRecorder.snapshot` and get a :class:`SinkStats` that never changes under them. Insert
latency percentiles are over the last :data:`LATENCY_WINDOW` inserts.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

__all__ = ["LATENCY_WINDOW", "SinkStats", "StatsRecorder"]

LATENCY_WINDOW: Final = 1_000
P99: Final = 0.99


@dataclass(frozen=True, slots=True)
class SinkStats:
    records_consumed: int = 0
    rows_written: MappingProxyType[str, int] = field(default_factory=lambda: MappingProxyType({}))
    batches: int = 0  # successful inserts (one per table per flush)
    insert_failures: int = 0  # failed insert attempts (each is retried)
    commits: int = 0
    commit_failures: int = 0
    dead_letters: int = 0  # records the sink itself sent to llm_dlq (undecodable or rejected)
    rows_dropped_on_revoke: int = (
        0  # in-flight rows of revoked partitions (re-read by the new owner)
    )
    last_insert_ms: float | None = None
    p99_insert_ms: float | None = None
    paused: bool = False  # inserts are failing: consumption paused, retrying with backoff

    def written(self, table: str) -> int:
        return self.rows_written.get(table, 0)


class StatsRecorder:
    """Mutable counters behind a lock; :meth:`snapshot` copies them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, int] = {}
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._counts: dict[str, int] = dict.fromkeys(
            (
                "records_consumed",
                "batches",
                "insert_failures",
                "commits",
                "commit_failures",
                "dead_letters",
                "rows_dropped_on_revoke",
            ),
            0,
        )
        self._paused = False

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            if name not in self._counts:
                raise KeyError(f"unknown sink counter {name!r}; known: {sorted(self._counts)}")
            self._counts[name] += n

    def inserted(self, table: str, rows: int, latency_ms: float) -> None:
        with self._lock:
            self._rows[table] = self._rows.get(table, 0) + rows
            self._counts["batches"] += 1
            self._latencies.append(latency_ms)

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            self._paused = paused

    def snapshot(self) -> SinkStats:
        with self._lock:
            latencies = sorted(self._latencies)
            p99 = latencies[max(0, math.ceil(P99 * len(latencies)) - 1)] if latencies else None
            return SinkStats(
                rows_written=MappingProxyType(dict(self._rows)),
                last_insert_ms=self._latencies[-1] if self._latencies else None,
                p99_insert_ms=p99,
                paused=self._paused,
                records_consumed=self._counts["records_consumed"],
                batches=self._counts["batches"],
                insert_failures=self._counts["insert_failures"],
                commits=self._counts["commits"],
                commit_failures=self._counts["commit_failures"],
                dead_letters=self._counts["dead_letters"],
                rows_dropped_on_revoke=self._counts["rows_dropped_on_revoke"],
            )
