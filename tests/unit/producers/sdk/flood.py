"""Flood a Publisher with large events and measure what the SDK holds while ``emit`` runs.

Used by the byte-limit tests (unit: broker down; integration: the real Tansu broker). Memory is measured
two ways: the peak of Python allocations (``tracemalloc``, what the SDK's queue and batches hold; excludes
librdkafka's own C buffer) and the growth of the process RSS (everything, allocator slack included).
"""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from producers.sdk import Publisher, PublisherStats
from tests.unit.producers.sdk.conftest import event

__all__ = ["TEXT_BYTES", "Flood", "flood", "large_text", "rss_bytes"]

TEXT_BYTES: Final = 1_000_000
_PAGE: Final = 4096
_RSS_SAMPLE_EVERY: Final = 50


def large_text(size: int = TEXT_BYTES) -> str:
    """``size`` characters of prose-like text (compressible, like real prompts)."""
    words = "the quick brown fox jumps over the lazy dog while a model answers questions "
    return (words * (size // len(words) + 1))[:size]


def rss_bytes() -> int:
    """This process's resident set size now (Linux)."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * _PAGE


@dataclass(frozen=True, slots=True)
class Flood:
    stats: PublisherStats  # right after the last emit
    max_emit_s: float
    p99_emit_s: float
    traced_peak_bytes: int  # peak of Python allocations during the flood, above the start
    rss_growth_bytes: int  # highest sampled RSS during the flood, above the start


def flood(publisher: Publisher, events: int, text: str) -> Flood:
    """Emit ``events`` events carrying ``text`` as fast as possible; measure time and memory."""
    publisher.emit(event())  # starts the SDK's thread and producer outside the measurement
    rss_start = rss_max = rss_bytes()
    tracemalloc.start()
    try:
        traced_start, _ = tracemalloc.get_traced_memory()
        durations_ns = [0] * events
        for n in range(events):
            data = event(input_text=text)
            started = time.perf_counter_ns()
            publisher.emit(data)
            durations_ns[n] = time.perf_counter_ns() - started
            if n % _RSS_SAMPLE_EVERY == 0:
                rss_max = max(rss_max, rss_bytes())
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    durations_ns.sort()
    return Flood(
        stats=publisher.stats,
        max_emit_s=durations_ns[-1] / 1e9,
        p99_emit_s=durations_ns[int(events * 0.99)] / 1e9,
        traced_peak_bytes=traced_peak - traced_start,
        rss_growth_bytes=max(rss_max, rss_bytes()) - rss_start,
    )
