"""Counters of the SDK's event fates, and the rate-limited warning that reports drops.

Every event passed to ``Publisher.emit`` lands in exactly one counter once the SDK's background thread
has checked it (``queued`` says how many it has not checked yet):
- not accepted: ``dropped_invalid`` (not a mapping or an ``LlmCallEvent``, could not be serialized,
  or larger than one Kafka record), ``dropped_queue_full`` (the SDK already holds ``queue_max_events``
  events), ``dropped_queue_bytes`` (the event would take the SDK's hold over ``queue_max_bytes``) or
  ``dropped_closed`` (the publisher was closed, or closed before the thread took the event);
- accepted (``emitted``), then once settled: ``delivered`` (acknowledged by the broker),
  ``delivery_failed`` (not acknowledged within ``message.timeout.ms``, or still unsent when ``close``
  gave up) or ``dropped_buffer_full`` (librdkafka's buffer stayed full).
``emit`` itself counts only what it refuses on the spot (``dropped_closed``, ``dropped_queue_full``,
``dropped_invalid`` for a wrong type); the other outcomes are counted by the background thread.
An accepted event's text record (``producers.texts``) is counted apart: ``texts_delivered`` or
``texts_failed`` (not acknowledged, purged, or dropped with a full buffer); its bytes count against
``queue_max_bytes`` with the event's.
Counts are exact; a snapshot takes one short lock.

Gauges, not counts: ``queued`` (events ``emit`` queued that the thread has not checked yet: in the
inbox or in its hands), ``held_events`` and ``held_bytes`` (the accepted events the SDK holds now,
encoded and waiting in batches, and their bytes, ``producers.sdk.batching.held_bytes``). A snapshot is
consistent: the thread takes events from the inbox and accounts for them under the counters' lock, so
an event is never in two of ``queued``, ``emitted`` and the drop counters, nor in none.
:meth:`Counters.accept` checks both bounds, raises both gauges and counts ``emitted`` under one
acquisition of the lock, so concurrent callers never overshoot a bound together.
:meth:`Counters.release` lowers them when the background thread hands a batch to librdkafka or drops
it. :meth:`Counters.load` reads ``queued + held_events`` without the lock, for ``emit``'s bound check.

Drops are logged by the background thread, never by the app's thread: one warning per kind at most
once per :data:`DROP_LOG_INTERVAL_S`, with the count since the previous warning and the last reason.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, fields
from typing import Final

__all__ = ["DROP_LOG_INTERVAL_S", "Counters", "DropReporter", "PublisherStats"]

log = logging.getLogger("producers.sdk")

DROP_LOG_INTERVAL_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class PublisherStats:
    """A snapshot of one Publisher's counters (per process: a forked child starts from zero)."""

    emitted: int = 0
    dropped_queue_full: int = 0
    dropped_queue_bytes: int = 0
    dropped_invalid: int = 0
    dropped_closed: int = 0
    dropped_buffer_full: int = 0
    delivered: int = 0
    delivery_failed: int = 0
    batches_sent: int = 0
    producer_restarts: int = (
        0  # producers replaced after a fatal error (e.g. fenced after an outage)
    )
    # Text records (texts topic) of accepted events: acknowledged, or not (counted like events).
    texts_delivered: int = 0
    texts_failed: int = 0
    held_events: int = 0  # a gauge: accepted events the SDK holds right now (encoded, batching)
    held_bytes: int = 0  # a gauge: their bytes
    queued: int = 0  # a gauge: events emit queued that the SDK's thread has not checked yet

    @property
    def lost(self) -> int:
        """Accepted events that will never be delivered."""
        return self.dropped_buffer_full + self.delivery_failed

    @property
    def rejected(self) -> int:
        """Events the SDK did not accept (refused by ``emit`` or by the thread's checks)."""
        return (
            self.dropped_queue_full
            + self.dropped_queue_bytes
            + self.dropped_invalid
            + self.dropped_closed
        )

    @property
    def in_flight(self) -> int:
        """Accepted events not settled yet (batching or awaiting the broker); see also ``queued``."""
        return self.emitted - self.delivered - self.lost


_GAUGES: Final = frozenset({"queued"})  # computed by the snapshot, not kept in the counters' dict
_FIELDS: Final = tuple(f.name for f in fields(PublisherStats) if f.name not in _GAUGES)
_EMITTED: Final = "emitted"
_HELD_EVENTS: Final = "held_events"
_HELD_BYTES: Final = "held_bytes"
_COUNT_DROPS: Final = "dropped_queue_full"
_BYTE_DROPS: Final = "dropped_queue_bytes"


class Counters:
    """Thread-safe mutable counters behind :class:`PublisherStats`, plus the last drop reasons.

    Also owns the inbox: the deque where ``emit`` appends events (without the lock; a deque append is
    atomic) and from which the SDK's thread :meth:`take` s them under the lock, so that a snapshot
    never sees an event both queued and counted, or neither."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(_FIELDS, 0)
        # Kind of drop -> the most recent reason (a plain assignment: cheap, last writer wins).
        self.last_reason: dict[str, str] = {}
        self.inbox: deque[object] = deque()
        self._in_hand = 0  # taken from the inbox, not accounted yet
        self._taken = 0  # taken from the inbox since the start

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._values[name] += n

    def drop(self, name: str, n: int, reason: str, *, checked: int = 0) -> None:
        """Count ``n`` events dropped as ``name``; ``checked`` of them were taken from the inbox."""
        self.last_reason[name] = reason
        with self._lock:
            self._values[name] += n
            self._in_hand -= checked

    def load(self) -> int:
        """Events the SDK holds now (queued, in the thread's hands, accepted), read without the lock.

        Read from upstream to downstream while events only move downstream (and each move raises the
        next gauge before lowering the previous one), so a concurrent move can make it count an event
        twice, never miss one: a bound checked against it is never overshot by one emitting thread."""
        return len(self.inbox) + self._in_hand + self._values[_HELD_EVENTS]

    def take(self, limit: int) -> list[object]:
        """Take up to ``limit`` of the oldest queued events (the SDK's thread only)."""
        with self._lock:
            count = min(limit, len(self.inbox))  # appends only make it longer meanwhile
            self._in_hand += count  # raised before the inbox shrinks: see load()
            self._taken += count
            popleft = self.inbox.popleft
            return [popleft() for _ in range(count)]

    def taken_mark(self) -> int:
        """How many events will have been taken once everything queued now is taken."""
        with self._lock:
            return self._taken + len(self.inbox)

    @property
    def taken(self) -> int:
        return self._taken

    def accept(
        self,
        nbytes: int,
        max_events: int,
        max_bytes: int,
        *,
        event: bool = True,
        checked: bool = False,
    ) -> bool:
        """Hold one more event of ``nbytes`` and count it emitted if both bounds allow; else count
        the drop (``dropped_queue_full`` or ``dropped_queue_bytes``) and return False.

        ``event=False``: a record without an event (feedback on the texts topic), held by its bytes
        only and settled as a text record (``texts_delivered`` / ``texts_failed``). ``checked``: the
        event was taken from the inbox (:meth:`take`) and leaves the thread's hands."""
        with self._lock:
            values = self._values
            accepted = False
            if values[_HELD_EVENTS] >= max_events:
                values[_COUNT_DROPS] += 1
            elif values[_HELD_BYTES] + nbytes > max_bytes:
                values[_BYTE_DROPS] += 1
            else:
                values[_HELD_BYTES] += nbytes
                if event:
                    values[_HELD_EVENTS] += 1  # raised before _in_hand is lowered: see load()
                    values[_EMITTED] += 1
                accepted = True
            if checked:
                self._in_hand -= 1
            return accepted

    def release(self, nbytes: int, events: int) -> None:
        """``events`` accepted events of ``nbytes`` are no longer held (sent to librdkafka or dropped)."""
        with self._lock:
            self._values[_HELD_BYTES] -= nbytes
            self._values[_HELD_EVENTS] -= events

    def snapshot(self) -> PublisherStats:
        with self._lock:
            return PublisherStats(**self._values, queued=len(self.inbox) + self._in_hand)


# Kind of drop -> the warning's text (takes the new count, the total and the last reason).
_DROP_MESSAGES: Final = {
    _COUNT_DROPS: "llmwatch: dropped %d events (%d in total): local queue full%s",
    _BYTE_DROPS: "llmwatch: dropped %d events (%d in total): local queue over its byte limit%s",
    "dropped_invalid": "llmwatch: dropped %d events (%d in total): not serializable%s",
    "dropped_buffer_full": "llmwatch: dropped %d events (%d in total): producer buffer full%s",
    "delivery_failed": "llmwatch: lost %d events (%d in total): not acknowledged%s",
    "texts_failed": "llmwatch: lost %d text records (%d in total): not acknowledged%s",
}


class DropReporter:
    """Logs one warning per kind of drop whose count grew, at most once per interval."""

    def __init__(self, counters: Counters, interval_s: float = DROP_LOG_INTERVAL_S) -> None:
        self._counters = counters
        self._interval_s = interval_s
        self._reported = dict.fromkeys(_DROP_MESSAGES, 0)
        self._last_at: float | None = None

    def report(self, now: float) -> None:
        if self._last_at is not None and now - self._last_at < self._interval_s:
            return
        snap = self._counters.snapshot()
        for name, message in _DROP_MESSAGES.items():
            count: int = getattr(snap, name)
            new = count - self._reported[name]
            if new > 0:
                self._last_at = now
                self._reported[name] = count
                reason = self._counters.last_reason.get(name)
                log.warning(message, new, count, f"; last: {reason}" if reason else "")
