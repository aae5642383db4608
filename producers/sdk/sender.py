"""The inbox ``emit`` fills and the background thread that turns its events into Kafka records.

Guarantees:
- :meth:`Sender.offer` (what ``Publisher.emit`` calls) never blocks and never raises, and does the
  least it can on the app's thread: a type check, one bound check read without a lock
  (``Counters.load``) and a ``deque.append`` of a reference to the event. It takes no lock, copies
  nothing (a copy per event is a tracked object that, piled up in the inbox, triggers the garbage
  collector on the app's thread) and encodes nothing; the thread checks and encodes
  (``producers.sdk.send_loop``). So the SDK reads a dict after ``emit`` returns, when its thread
  takes it (at its next turn, :data:`~producers.sdk.send_loop.TICK_S`, or later while it works off a
  backlog): the app must not change a dict, nor the values in it, after passing it to ``emit``. The
  SDK never changes it. Mappings other than dicts are copied into a dict here. It starts the
  background thread on first use, also in a forked child.
- What the SDK holds is bounded twice. By events: the inbox plus the accepted events never exceed
  ``queue_max_events``, checked at ``offer`` (an event over it is dropped there and counted as
  ``dropped_queue_full``; concurrent ``emit`` calls can overshoot by one event each, and the thread's
  own check then drops the excess). By bytes: accepted events (their JSON, ``held_bytes``) never exceed
  ``queue_max_bytes``, checked when the thread accepts each event (``dropped_queue_bytes``). Events in
  the inbox are the app's own objects, kept alive until the thread takes them: at its next turn
  (:data:`~producers.sdk.send_loop.TICK_S`), also while librdkafka's buffer is full.
- Delivery is at-least-once per record from librdkafka's point of view, and with the idempotent
  producer no record is duplicated or reordered within a partition by retries. Every event ``offer``
  queued is eventually counted: accepted (then delivered or lost) or dropped (see
  ``producers.sdk.stats``).
- :meth:`Sender.flush` returns within ``timeout``. It is True iff every event queued before the call
  was accepted and delivered and no accepted event was lost since the previous ``flush`` (a loss of an
  event emitted concurrently with the flush can make it False). Events the thread drops at its
  checks (invalid, over the byte bound) are counted, not reported by ``flush``.
- :meth:`Sender.close` is idempotent; it waits at most ``timeout`` plus :data:`JOIN_GRACE_S`. Queued
  events the thread did not take before the stop deadline, or that were emitted while closing, are
  counted as ``dropped_closed``; the latter make it return False.
- After ``os.fork()`` the child gets a new inbox, counters and thread, and a new producer on first use;
  events pending in the parent stay with the parent. The inherited librdkafka handle is deliberately
  leaked in the child: destroying it there waits ~1 s for threads that do not exist after fork.

What can block: only the background thread (``producer.flush`` / ``poll``) and the caller of
``flush`` / ``close``, each bounded by its timeout.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from typing import Final

from confluent_kafka import Producer

from producers.events import LlmCallEvent
from producers.sdk.batching import held_bytes
from producers.sdk.config import PublisherConfig
from producers.sdk.encoding import EventDefaults
from producers.sdk.send_loop import Barrier, ControlItem, SendLoop
from producers.sdk.stats import Counters, PublisherStats

__all__ = ["JOIN_GRACE_S", "THREAD_NAME", "Sender"]

JOIN_GRACE_S: Final = 0.25
THREAD_NAME: Final = "llmwatch-sdk-sender"

_SENDERS: weakref.WeakSet[Sender] = weakref.WeakSet()


def _leak(handle: object) -> None:
    """Never destroy ``handle`` (an inherited librdkafka client in a forked child)."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(handle))


class Sender:
    """The app-facing half of the pipeline: inbox, thread lifecycle, flush and close."""

    def __init__(
        self,
        config: PublisherConfig,
        producer: Producer | None = None,
        defaults: EventDefaults | None = None,
    ) -> None:
        self.config = config
        self.defaults = defaults or EventDefaults(
            service=config.service_name,
            environment=config.environment,
            text_capture=config.text_capture,
        )
        self.closing = False
        self._producer = producer
        self._max_events = config.queue_max_events
        self._init_runtime()
        _SENDERS.add(self)

    def _init_runtime(self) -> None:
        self.counters = Counters()
        # Side records (feedback) and flush requests; events go to counters.inbox.
        self.control: deque[ControlItem] = deque()
        self._lock = threading.Lock()
        self._loop: SendLoop | None = None
        self._thread: threading.Thread | None = None
        self._lost_mark = 0

    @property
    def stats(self) -> PublisherStats:
        return self.counters.snapshot()

    def offer(self, event: object) -> bool:
        """Queue one event (a dict, another mapping or an ``LlmCallEvent``) for the thread to check
        and send. Never blocks, never raises, takes no lock; False if it was dropped (counted).

        A dict is queued as it is (a reference, see the module docstring); another mapping is copied
        into a dict here."""
        if self.closing:
            self.counters.add("dropped_closed")
            return False
        if self._thread is None and not self._start_thread():
            return False
        if type(event) is dict or isinstance(event, LlmCallEvent):  # an LlmCallEvent is frozen
            item: object = event
        elif isinstance(event, Mapping):
            try:
                item = dict(event)
            except Exception as exc:  # a foreign Mapping that raises
                self.counters.drop("dropped_invalid", 1, f"{type(exc).__name__}: {exc}")
                return False
        else:
            reason = f"expected an LlmCallEvent or a mapping, got {type(event).__name__}"
            self.counters.drop("dropped_invalid", 1, reason)
            return False
        counters = self.counters
        if counters.load() >= self._max_events:
            counters.drop("dropped_queue_full", 1, f"{self._max_events} events held")
            return False
        counters.inbox.append(item)
        return True

    def submit(self, payload: bytes, bucket: int, text: bytes | None = None) -> bool:
        """Queue one encoded record (and its text record, if any). Never blocks; False if dropped.

        An empty ``payload`` queues ``text`` alone (a feedback record for the texts topic). Unlike
        :meth:`offer` it checks the byte bound here, under the counters' lock."""
        if self.closing:
            self.counters.add("dropped_closed")
            return False
        if self._thread is None and not self._start_thread():
            return False
        config = self.config
        size = held_bytes(payload) if payload else 0
        if text is not None:
            size += held_bytes(text)
        # An empty payload: a side record (feedback) alone on the texts topic, without an event.
        held = self.counters.accept(
            size, config.queue_max_events, config.queue_max_bytes, event=bool(payload)
        )
        if not held:
            return False  # accept() counted the drop
        self.control.append((payload, bucket, text))
        return True

    def _start_thread(self) -> bool:
        try:
            self._start()
        except RuntimeError as exc:  # "can't create new thread at interpreter shutdown"
            self.counters.drop("dropped_closed", 1, f"cannot start the SDK thread: {exc}")
            return False
        if self._thread is None:  # closed meanwhile
            self.counters.add("dropped_closed")
            return False
        return True

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self.closing:
                return
            producer, self._producer = self._producer, None
            # The send loop holds this Sender so that atexit still finds it (and joins the thread)
            # while a garbage-collected Publisher's thread is finishing its last flush.
            loop = SendLoop(
                self.config, self.counters, self.control, producer, self.defaults, keepalive=self
            )
            name = f"{THREAD_NAME}:{self.config.topic}"
            thread = threading.Thread(target=loop.run, name=name, daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread

    def flush(self, timeout: float) -> bool:
        """Send everything queued so far and wait up to ``timeout`` s for the broker's acks."""
        deadline = time.monotonic() + max(0.0, timeout)
        settled = True
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            barrier = Barrier(deadline, self.counters.taken_mark())
            self.control.append(barrier)
            loop.wake()
            settled = barrier.done.wait(max(0.0, deadline - time.monotonic()))
            settled = settled and barrier.settled
        return self._no_new_losses() and settled

    def _no_new_losses(self) -> bool:
        with self._lock:
            lost = self.counters.snapshot().lost
            unchanged, self._lost_mark = lost == self._lost_mark, lost
        return unchanged

    def stop(self, timeout: float) -> None:
        """Begin closing without waiting (idempotent): later events are dropped as closed."""
        with self._lock:
            if self.closing:
                return
            self.closing = True
            if self._loop is not None:
                self._loop.request_stop(time.monotonic() + max(0.0, timeout))

    def close(self, timeout: float) -> bool:
        """Flush within ``timeout``, stop the thread; True iff everything accepted was delivered."""
        self.stop(timeout)
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return self._no_new_losses()
        thread.join(max(0.0, loop.stop_deadline - time.monotonic()) + JOIN_GRACE_S)
        if thread.is_alive():
            return False
        # Queued while closing, after the thread's last look: never taken, never accepted.
        leftover = len(self.counters.take(len(self.counters.inbox)))
        if leftover:
            self.counters.drop(
                "dropped_closed", leftover, "emitted while closing", checked=leftover
            )
        while self.control:  # side records (accepted, counted as held) queued while closing
            item = self.control.popleft()
            if isinstance(item, tuple):
                payload, _bucket, text = item
                size = (held_bytes(payload) if payload else 0) + (
                    held_bytes(text) if text is not None else 0
                )
                self.counters.release(size, 1 if payload else 0)
                if payload:
                    self.counters.drop("delivery_failed", 1, "emitted while closing")
                    leftover += 1
                if text is not None:
                    self.counters.drop("texts_failed", 1, "sent while closing")
            else:
                item.finish(False)
        return self._no_new_losses() and loop.final_ok and not leftover

    def _after_fork_in_child(self) -> None:
        for handle in (self._producer, self._loop and self._loop.producer):
            if handle is not None:
                _leak(handle)
        self._producer = None
        self._init_runtime()


def _after_fork_in_child() -> None:
    for sender in list(_SENDERS):
        sender._after_fork_in_child()


def _close_all_at_exit() -> None:
    for sender in list(_SENDERS):
        sender.close(sender.config.shutdown_timeout_s)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all_at_exit)
