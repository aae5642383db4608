"""The local queue and the background thread that turns queued events into Kafka records.

Guarantees:
- :meth:`Sender.submit` never blocks and never raises. What the SDK holds (queue + pending batches) is
  bounded twice: by ``queue_max_events`` events and by ``queue_max_bytes`` bytes
  (``producers.sdk.batching.held_bytes`` per event). An event that would exceed either bound is
  dropped and counted (``dropped_queue_full`` / ``dropped_queue_bytes``). Both checks and the count
  take one short lock (``Counters.accept``); the queue itself is an unbounded ``SimpleQueue``, whose
  ``put`` is ~15x cheaper than ``queue.Queue``'s. It starts the background thread on first use, also
  in a forked child.
- Delivery is at-least-once per record from librdkafka's point of view, and with the idempotent
  producer no record is duplicated or reordered within a partition by retries. Every accepted event is
  eventually counted as delivered or lost (see ``producers.sdk.stats``).
- :meth:`Sender.flush` returns within ``timeout``. It is True iff every event accepted before the call
  was delivered and no accepted event was lost since the previous ``flush`` (a loss of an event
  emitted concurrently with the flush can make it False).
- :meth:`Sender.close` is idempotent; it waits at most ``timeout`` plus :data:`JOIN_GRACE_S`.
- After ``os.fork()`` the child gets a new queue, counters and thread, and a new producer on first use;
  events pending in the parent stay with the parent. The inherited librdkafka handle is deliberately
  leaked in the child: destroying it there waits ~1 s for threads that do not exist after fork.

What can block: only the background thread (``producer.flush`` / ``poll``) and the caller of
``flush`` / ``close``, each bounded by its timeout.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import queue
import threading
import time
import weakref
from typing import Final

from confluent_kafka import Producer

from producers.sdk.batching import held_bytes
from producers.sdk.config import PublisherConfig
from producers.sdk.send_loop import Barrier, QueueItem, SendLoop
from producers.sdk.stats import Counters, PublisherStats

__all__ = ["JOIN_GRACE_S", "THREAD_NAME", "Sender"]

JOIN_GRACE_S: Final = 0.25
THREAD_NAME: Final = "llmwatch-sdk-sender"

_SENDERS: weakref.WeakSet[Sender] = weakref.WeakSet()


def _leak(handle: object) -> None:
    """Never destroy ``handle`` (an inherited librdkafka client in a forked child)."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(handle))


class Sender:
    """The app-facing half of the pipeline: queue, thread lifecycle, flush and close."""

    def __init__(self, config: PublisherConfig, producer: Producer | None = None) -> None:
        self.config = config
        self.closing = False
        self._producer = producer
        self._init_runtime()
        _SENDERS.add(self)

    def _init_runtime(self) -> None:
        self.counters = Counters()
        # Unbounded: Counters.accept bounds what goes in (events and bytes); flush barriers are free.
        self.queue: queue.SimpleQueue[QueueItem] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._loop: SendLoop | None = None
        self._thread: threading.Thread | None = None
        self._lost_mark = 0

    @property
    def stats(self) -> PublisherStats:
        return self.counters.snapshot()

    def submit(self, payload: bytes, bucket: int, text: bytes | None = None) -> bool:
        """Queue one encoded event (and its text record, if any). Never blocks; False if dropped.

        An empty ``payload`` queues ``text`` alone (a feedback record for the texts topic)."""
        if self.closing:
            self.counters.add("dropped_closed")
            return False
        if self._thread is None:
            try:
                self._start()
            except RuntimeError as exc:  # "can't create new thread at interpreter shutdown"
                self.counters.drop("dropped_closed", 1, f"cannot start the SDK thread: {exc}")
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
        self.queue.put((payload, bucket, text))
        return True

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self.closing:
                return
            producer, self._producer = self._producer, None
            # The send loop holds this Sender so that atexit still finds it (and joins the thread)
            # while a garbage-collected Publisher's thread is finishing its last flush.
            loop = SendLoop(self.config, self.counters, self.queue, producer, keepalive=self)
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
            barrier = Barrier(deadline)
            self.queue.put(barrier)
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
        leftover = 0
        while True:  # events that raced with close: accepted, but never sent
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, tuple):
                leftover += 1
                self.counters.release(held_bytes(item[0]), 1)
        if leftover:
            self.counters.drop("delivery_failed", leftover, "emitted while closing")
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
