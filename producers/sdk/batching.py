"""Message keys and batch packing for the SDK. Pure: no I/O, no threads, no clock reads.

Key choice: every record's key is ``tb-<n>`` with ``n = crc32(trace_id) % TRACE_KEY_BUCKETS``
(:func:`bucket_for`, :func:`bucket_key`). All spans of one trace, from any process, carry the same key
and so land on one partition: trace-level processing stays local to one worker and events from one
process keep their order within a trace. 32 buckets spread the load over partitions while letting the
SDK keep one pending batch per bucket, so records stay big. Events without a trace id are bucketed by
their event id.

Guarantees of :class:`Batcher`: a batch never holds more than ``max_events`` events, and its encoded
envelope (``producers.wire.encode_batch_raw``) never exceeds ``max_bytes`` unless it is a single event
that is larger on its own (sent alone). Events keep their arrival order within a bucket.

Memory accounting: an event held by the SDK costs :func:`held_bytes` (its JSON plus
:data:`EVENT_OVERHEAD_BYTES` of CPython objects around it); :attr:`Batch.held_bytes` is the sum over a
batch, so what the SDK reserves per event is exactly what it releases per batch.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "ENVELOPE_OVERHEAD_BYTES",
    "EVENT_OVERHEAD_BYTES",
    "TRACE_KEY_BUCKETS",
    "Batch",
    "Batcher",
    "bucket_for",
    "bucket_key",
    "held_bytes",
]

TRACE_KEY_BUCKETS: Final = 32
# Upper bound of the envelope's bytes around the events: marker, version, sent_at_ms and brackets.
ENVELOPE_OVERHEAD_BYTES: Final = 96
# CPython's cost of holding one event besides its JSON: the bytes header (33), the staged record's
# tuple (56) and the deque and batch list slots (8 + 8), rounded up.
EVENT_OVERHEAD_BYTES: Final = 128
_KEYS: Final[tuple[bytes, ...]] = tuple(b"tb-%d" % n for n in range(TRACE_KEY_BUCKETS))


def bucket_for(routing_id: str) -> int:
    """The key bucket of a trace id (or, for events without one, an event id)."""
    return zlib.crc32(routing_id.encode("utf-8", "surrogatepass")) % TRACE_KEY_BUCKETS


def bucket_key(bucket: int) -> bytes:
    """The Kafka message key of a bucket: ``b"tb-<n>"``."""
    if not 0 <= bucket < TRACE_KEY_BUCKETS:
        raise ValueError(f"bucket must be in [0, {TRACE_KEY_BUCKETS}), got {bucket!r}")
    return _KEYS[bucket]


def held_bytes(payload: bytes) -> int:
    """What holding one encoded event costs against the SDK's byte limit."""
    return len(payload) + EVENT_OVERHEAD_BYTES


@dataclass(slots=True)
class Batch:
    """Events (already JSON) bound for one key, oldest first."""

    bucket: int
    opened_at: float
    events: list[bytes] = field(default_factory=list)
    size: int = ENVELOPE_OVERHEAD_BYTES

    def add(self, payload: bytes) -> None:
        self.size += len(payload) + 1  # +1 for the separating comma
        self.events.append(payload)

    @property
    def held_bytes(self) -> int:
        """The sum of :func:`held_bytes` over the batch's events."""
        count = len(self.events)
        return self.size - ENVELOPE_OVERHEAD_BYTES - count + count * EVENT_OVERHEAD_BYTES


class Batcher:
    """One pending batch per key bucket, closed by count, bytes or age."""

    def __init__(self, max_events: int, max_bytes: int, max_age_s: float) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be >= 1, got {max_events!r}")
        if max_bytes <= ENVELOPE_OVERHEAD_BYTES:
            raise ValueError(f"max_bytes must be > {ENVELOPE_OVERHEAD_BYTES}, got {max_bytes!r}")
        if max_age_s < 0:
            raise ValueError(f"max_age_s must be >= 0, got {max_age_s!r}")
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._pending: dict[int, Batch] = {}

    @property
    def pending_events(self) -> int:
        return sum(len(b.events) for b in self._pending.values())

    def add(self, bucket: int, payload: bytes, now: float) -> list[Batch]:
        """Add one event; return the batches that are now complete (usually none)."""
        ready: list[Batch] = []
        batch = self._pending.get(bucket)
        if batch is not None and batch.size + len(payload) + 1 > self.max_bytes:
            ready.append(self._pending.pop(bucket))
            batch = None
        if batch is None:
            batch = self._pending[bucket] = Batch(bucket=bucket, opened_at=now)
        batch.add(payload)
        if len(batch.events) >= self.max_events or batch.size >= self.max_bytes:
            ready.append(self._pending.pop(bucket))
        return ready

    def due(self, now: float) -> list[Batch]:
        """Remove and return the batches older than ``max_age_s``."""
        expired = [
            b for b, batch in self._pending.items() if now - batch.opened_at >= self.max_age_s
        ]
        return [self._pending.pop(b) for b in expired]

    def drain(self) -> list[Batch]:
        """Remove and return every pending batch."""
        batches = list(self._pending.values())
        self._pending.clear()
        return batches

    def next_deadline(self) -> float | None:
        """When the oldest pending batch becomes due (same clock as ``now``), or None."""
        if not self._pending:
            return None
        return min(b.opened_at for b in self._pending.values()) + self.max_age_s
