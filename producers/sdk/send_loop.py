"""The SDK's background thread: check and encode what ``emit`` queued, pack batches per key bucket,
produce them.

Guarantees:
- All the per-event work happens here, not on the app's thread: encoding (``producers.sdk.encoding``:
  defaults, event ids, the text-capture policy, the record size check) and the byte bound
  (``Counters.accept``). Events are taken from the inbox in chunks of :data:`TAKE_CHUNK`, at most
  :data:`MAX_EVENTS_PER_TURN` per turn, in the order they were queued. Between events the thread
  gives the GIL back to the app's threads once it has run for :data:`GIL_SLICE_S` (see
  :meth:`SendLoop._yield_gil`), so an app thread waiting for the GIL waits about that long, not the
  interpreter's switch interval (5 ms), which the SDK leaves alone.
- A flush request (:class:`Barrier`) is served only once every event queued before it was taken,
  checked and, if accepted, batched; then the pending batches are produced and librdkafka flushed.
- A batch record holds at most ``batch_max_events`` events and ``batch_max_bytes`` bytes (a single
  larger event goes alone) and waits at most ``flush_interval_s`` plus one tick
  (:data:`TICK_S`) before it is produced.
- When librdkafka's buffer is full (``BufferError``), the thread serves delivery reports and retries for
  up to ``buffer_full_timeout_s``, then drops the batch (counted as ``dropped_buffer_full``). While it
  retries it still takes and checks queued events (so the inbox stays short and the app's objects are
  not kept alive) but builds no batches: a long broker outage ends in ``dropped_queue_bytes`` or
  ``dropped_queue_full`` (counted here or at ``emit``) rather than in unbounded memory.
- Delivery reports count every event of a record as delivered or failed. On stop, the thread checks
  and sends queued events until the stop deadline and counts those left as ``dropped_closed``;
  whatever librdkafka still holds at the deadline is purged and counted as failed, so no event goes
  uncounted.
  The thread keeps its own count of the events each producer holds (:class:`Handed`): what a retired
  producer never reports within :data:`RETIRE_WAIT_S` is counted as failed by that count, and its late
  reports, if any, are ignored, so no event is counted twice or left unsettled.
- What an event counted against the SDK's bounds when it was accepted here (``Counters.accept``: one
  event and its bytes) is released exactly once, when its batch is handed to librdkafka (whose buffer
  ``queue.buffering.max.kbytes`` bounds) or dropped.
- A fatal librdkafka error (the idempotent producer fenced after an outage longer than
  ``message.timeout.ms``) replaces the producer, so events emitted after the broker is back are
  delivered again; what the old producer held is counted as ``delivery_failed``, and
  ``producer_restarts`` counts the replacements.
- The thread survives its own errors (logged); it only blocks itself.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from producers.sdk.batching import Batch, Batcher, bucket_key, held_bytes
from producers.sdk.config import PublisherConfig
from producers.sdk.encoding import EventDefaults, Rejected, encode_event
from producers.sdk.stats import Counters, DropReporter
from producers.wire import encode_batch_raw

__all__ = [
    "GIL_SLICE_S",
    "TICK_S",
    "Barrier",
    "ControlItem",
    "Record",
    "SendLoop",
    "create_producer",
]

log = logging.getLogger("producers.sdk")

# How often the thread takes queued events, serves delivery reports and sends due batches.
TICK_S: Final = 0.05
# Events taken from the inbox in one turn before due batches and delivery reports are served.
MAX_EVENTS_PER_TURN: Final = 2_000
# Events taken from the inbox under one acquisition of the counters' lock.
TAKE_CHUNK: Final = 64
# The longest stretch of per-event Python work (checking, encoding, batching) the thread runs before
# it gives the GIL back to the app's threads; see SendLoop._yield_gil.
GIL_SLICE_S: Final = 200e-6
# How long the thread sleeps to give the GIL away: long enough for a thread waiting for the GIL to
# wake up and take it (a zero sleep releases the GIL but takes it back before a waiter wakes).
GIL_YIELD_S: Final = 20e-6
BUFFER_RETRY_POLL_S: Final = 0.05
ERROR_PAUSE_S: Final = 0.1
# How long a producer being retired (replaced, or at stop) may take to report its purged records.
RETIRE_WAIT_S: Final = 1.0
# Errors after which the producer's identity (producer id and epoch) is spent: librdkafka fails every
# later record with them without marking them fatal (seen with Tansu after a long outage), so the
# thread replaces the producer, as it does on a fatal error.
_PRODUCER_IDENTITY_ERRORS: Final = frozenset(
    {
        KafkaError.PRODUCER_FENCED,
        KafkaError._FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.INVALID_PRODUCER_ID_MAPPING,
    }
)


def _earliest(*deadlines: float | None) -> float | None:
    known = [d for d in deadlines if d is not None]
    return min(known) if known else None


class Barrier:
    """A flush request: settled when every record produced before it was acknowledged.

    ``mark``: ``Counters.taken_mark()`` when it was made; the thread serves it once it has taken that
    many events from the inbox."""

    def __init__(self, deadline: float, mark: int = 0) -> None:
        self.deadline = deadline
        self.mark = mark
        self.done = threading.Event()
        self.settled = False

    def finish(self, settled: bool) -> None:
        self.settled = settled
        self.done.set()


def create_producer(
    config: PublisherConfig, error_cb: Callable[[KafkaError], None] | None = None
) -> Producer:
    """A confluent-kafka Producer for ``config``; a bad setting raises ValueError naming it.

    ``error_cb`` receives librdkafka's client-level errors unless ``producer_config`` sets its own."""
    settings = config.kafka_config()
    if error_cb is not None:
        settings.setdefault("error_cb", error_cb)
    try:
        return Producer(settings)
    except Exception as exc:  # KafkaException / TypeError / ValueError from librdkafka's config
        raise ValueError(f"invalid Kafka producer configuration: {exc}") from exc


class Handed:
    """The events handed to one producer whose delivery reports have not come yet.

    librdkafka does not always report purged in-flight records (seen after a fencing error on Tansu),
    so the thread cannot rely on their reports to settle them."""

    __slots__ = ("events", "retired", "texts")

    def __init__(self) -> None:
        self.events = 0
        self.texts = 0  # text records (texts topic), counted apart from events
        self.retired = False


# An encoded event (b"" for none), its key bucket and its text record (or None).
Record = tuple[bytes, int, bytes | None]
# What the app's threads hand the thread besides events: a side record (feedback, already encoded and
# counted against the bounds) or a flush request.
ControlItem = Record | Barrier


class SendLoop:
    """The thread-side state. Only the thread touches the batcher, the staged records and the
    producer."""

    def __init__(
        self,
        config: PublisherConfig,
        counters: Counters,
        control: deque[ControlItem],
        producer: Producer | None,
        defaults: EventDefaults,
        *,
        keepalive: object = None,
    ) -> None:
        self.config = config
        self.counters = counters
        self.control = control
        self.producer = producer
        self.defaults = defaults
        self.keepalive = keepalive
        self.batcher = Batcher(
            config.batch_max_events, config.batch_max_bytes, config.flush_interval_s
        )
        # Text records go to their own topic in their own batches, keyed like their events.
        self.text_batcher = Batcher(
            config.batch_max_events, config.batch_max_bytes, config.flush_interval_s
        )
        # Accepted records taken from the inbox while a produce waited for librdkafka's buffer; they
        # go to the batchers, in order, before anything taken later.
        self.staged: deque[Record] = deque()
        # Events taken from the inbox, not checked yet (Counters counts them as queued).
        self._hand: deque[object] = deque()
        self.reporter = DropReporter(counters)
        self.stop_deadline = math.inf
        self.final_ok = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._backlog = False
        self._slice_ends = 0.0
        self._fatal: KafkaError | None = None  # set by librdkafka's callbacks on this thread
        self._handed = Handed()  # for the current producer

    def wake(self) -> None:
        """Make the thread take a turn now (flush and close call this; ``emit`` does not)."""
        self._wake.set()

    def request_stop(self, deadline: float) -> None:
        self.stop_deadline = deadline
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        try:
            if self.producer is None:
                self.producer = self._create_producer()
            while not self._stop.is_set():
                try:
                    self._turn()
                except Exception:
                    log.exception("llmwatch: error in the SDK's background thread")
                    time.sleep(ERROR_PAUSE_S)
            self._shutdown()
        finally:
            self.producer = None
            self.keepalive = None

    def _create_producer(self) -> Producer | None:
        try:
            return create_producer(self.config, self._on_error)
        except ValueError:
            log.exception("llmwatch: cannot create the Kafka producer; events will be lost")
            return None

    def _turn(self) -> None:
        # The thread sleeps on a timer, not on the inbox: ``emit`` then never wakes it, and events
        # are taken in bulk, which keeps the app's threads and this one from trading the GIL.
        if not self._backlog:
            deadline = _earliest(self.batcher.next_deadline(), self.text_batcher.next_deadline())
            wait = TICK_S if deadline is None else min(TICK_S, deadline - time.monotonic())
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()
        self._slice_ends = time.perf_counter() + GIL_SLICE_S
        self._batch_staged()
        taken = 0
        while taken < MAX_EVENTS_PER_TURN and not self._stop.is_set():
            taken += self._take_chunk()
            if not self._hand:
                break
            self._check_and_batch_hand()
        self._backlog = taken >= MAX_EVENTS_PER_TURN
        self._serve_control()
        now = time.monotonic()
        for batch in self.batcher.due(now):
            self._send(batch)
        for batch in self.text_batcher.due(now):
            self._send(batch, texts=True)
        if self.producer is not None:
            self.producer.poll(0)
        if self._fatal is not None:
            self._replace_producer()
        self.reporter.report(now)

    def _yield_gil(self) -> None:
        """Give the GIL to the app's threads once the current slice of work is over.

        CPython hands the GIL to a waiting thread only after the holder kept it for the switch
        interval (5 ms by default, process-wide: not ours to change) or when the holder blocks. An app
        thread that had to wait for this one would wait that long; sleeping briefly after each slice
        of :data:`GIL_SLICE_S` lets it in sooner. Uncontended, this costs a few percent of the
        thread's throughput."""
        if time.perf_counter() >= self._slice_ends:
            time.sleep(GIL_YIELD_S)
            self._slice_ends = time.perf_counter() + GIL_SLICE_S

    def _check(self, item: object) -> Record | None:
        """Encode one queued event and hold it against the bounds; None if it is dropped (counted)."""
        encoded = encode_event(item, self.defaults)
        if isinstance(encoded, Rejected):
            self.counters.drop("dropped_invalid", 1, encoded.reason, checked=1)
            return None
        payload, text = encoded.payload, encoded.text
        size = held_bytes(payload) if text is None else held_bytes(payload) + held_bytes(text)
        config = self.config
        if not self.counters.accept(
            size, config.queue_max_events, config.queue_max_bytes, checked=True
        ):
            return None  # accept() counted the drop
        return payload, encoded.bucket, text

    def _take_chunk(self) -> int:
        chunk = self.counters.take(TAKE_CHUNK)
        self._hand.extend(chunk)
        return len(chunk)

    def _check_and_batch_hand(self) -> None:
        """Check and batch the events in hand, then what a produce staged meanwhile, in order."""
        hand = self._hand
        while hand:
            record = self._check(hand.popleft())
            if record is not None:
                self._batch(record)  # a full librdkafka buffer: _absorb takes the rest of the hand
            self._yield_gil()
        self._batch_staged()

    def _absorb(self) -> None:
        """While a produce waits for librdkafka's buffer: check the events in hand and in the inbox,
        and stage the accepted ones (they are batched once the produce is done)."""
        hand = self._hand
        while hand or self._take_chunk():
            record = self._check(hand.popleft())
            if record is not None:
                self.staged.append(record)
            self._yield_gil()

    def _batch_staged(self) -> None:
        staged = self.staged
        while staged:
            self._batch(staged.popleft())

    def _serve_control(self) -> None:
        """Side records and flush requests; a flush waits until the events queued before it were
        taken (and, taken, they were batched)."""
        control = self.control
        while control:
            item = control[0]
            if isinstance(item, Barrier):
                if self.counters.taken < item.mark:
                    return  # events queued before the flush are still in the inbox
                control.popleft()
                self._batch_staged()
                self._settle(item)
            else:
                control.popleft()
                self._batch(item)

    def _batch(self, record: Record) -> None:
        payload, bucket, text = record
        now = time.monotonic()
        if payload:  # empty: a side record (feedback) without an event
            for batch in self.batcher.add(bucket, payload, now):
                self._send(batch)
        if text is not None:
            for batch in self.text_batcher.add(bucket, text, now):
                self._send(batch, texts=True)

    def _send_pending(self) -> None:
        for batch in self.batcher.drain():
            self._send(batch)
        for batch in self.text_batcher.drain():
            self._send(batch, texts=True)

    def _settle(self, barrier: Barrier) -> None:
        self._send_pending()
        left = 0
        if self.producer is not None:
            left = self.producer.flush(max(0.0, barrier.deadline - time.monotonic()))
        barrier.finish(left == 0)

    def _send(self, batch: Batch, texts: bool = False) -> None:
        try:
            self._produce(batch, texts)
        finally:
            # A text record's event is released with the event's own batch.
            self.counters.release(batch.held_bytes, 0 if texts else len(batch.events))

    def _produce(self, batch: Batch, texts: bool) -> None:
        count = len(batch.events)
        failed = "texts_failed" if texts else "delivery_failed"
        if self.producer is None:
            self.counters.drop(failed, count, "no Kafka producer")
            return
        value = encode_batch_raw(batch.events)
        handed = self._handed
        topic = self.config.texts_topic if texts else self.config.topic
        on_delivery = functools.partial(self._on_delivery, handed, count, texts)
        give_up = time.monotonic() + self.config.buffer_full_timeout_s
        while True:
            try:
                self.producer.produce(
                    topic, value, key=bucket_key(batch.bucket), on_delivery=on_delivery
                )
            except BufferError:
                if time.monotonic() >= min(give_up, self.stop_deadline):  # close() may lower it
                    full = "texts_failed" if texts else "dropped_buffer_full"
                    self.counters.drop(full, count, "librdkafka queue full")
                    return
                self.producer.poll(BUFFER_RETRY_POLL_S)
                self._absorb()
                self.reporter.report(time.monotonic())
                continue
            except KafkaException as exc:
                self.counters.drop(failed, count, f"produce failed: {exc}")
                return
            if texts:
                handed.texts += count
            else:
                handed.events += count
            self.counters.add("batches_sent")
            return

    def _on_delivery(
        self, handed: Handed, count: int, texts: bool, err: KafkaError | None, _msg: Message
    ) -> None:
        if handed.retired:
            return  # already counted as failed when its producer was retired
        if texts:
            handed.texts -= count
            if err is None:
                self.counters.add("texts_delivered", count)
            else:
                self.counters.drop("texts_failed", count, str(err))
        else:
            handed.events -= count
            if err is None:
                self.counters.add("delivered", count)
            else:
                self.counters.drop("delivery_failed", count, str(err))
        if err is not None:
            self._on_error(err)

    def _on_error(self, err: KafkaError) -> None:
        if (err.fatal() or err.code() in _PRODUCER_IDENTITY_ERRORS) and self._fatal is None:
            self._fatal = err

    def _replace_producer(self) -> None:
        """A fatal error (e.g. the idempotent producer fenced after an outage longer than
        ``message.timeout.ms``) makes librdkafka fail every later record: replace the producer.
        What the old one still holds is purged and counted as failed."""
        err, self._fatal = self._fatal, None
        log.warning("llmwatch: the Kafka producer hit a fatal error (%s); replacing it", err)
        if self.producer is not None:
            self._retire(self.producer, f"producer replaced after a fatal error: {err}")
        self.producer = self._create_producer()
        self._handed = Handed()
        self._fatal = None  # reports from the old producer are no reason to replace the new one
        self.counters.add("producer_restarts")

    def _retire(self, producer: Producer, reason: str) -> None:
        """Purge ``producer``, serve the reports it gives within :data:`RETIRE_WAIT_S`, and count
        the events it never reported as failed."""
        handed = self._handed
        producer.purge()
        give_up = time.monotonic() + RETIRE_WAIT_S
        while (handed.events > 0 or handed.texts > 0) and time.monotonic() < give_up:
            producer.poll(BUFFER_RETRY_POLL_S)
        if handed.events > 0:
            self.counters.drop("delivery_failed", handed.events, reason)
        if handed.texts > 0:
            self.counters.drop("texts_failed", handed.texts, reason)
        handed.events = handed.texts = 0
        handed.retired = True

    def _shutdown(self) -> None:
        """Send what is left, wait for acks until the stop deadline, count the rest as failed."""
        self._slice_ends = time.perf_counter() + GIL_SLICE_S
        self._check_and_batch_hand()
        while time.monotonic() < self.stop_deadline and self._take_chunk():
            self._check_and_batch_hand()
        unchecked = self.counters.take(len(self.counters.inbox))
        if unchecked:
            reason = "closed before the SDK's thread took it"
            self.counters.drop("dropped_closed", len(unchecked), reason, checked=len(unchecked))
        barriers: list[Barrier] = []
        while self.control:
            item = self.control.popleft()
            if isinstance(item, Barrier):
                barriers.append(item)
            else:
                self._batch(item)
        self._send_pending()
        while self.staged:  # accepted while a produce above waited for librdkafka's buffer
            self._batch_staged()
            self._send_pending()
        left = 0
        if self.producer is not None:
            left = self.producer.flush(max(0.0, self.stop_deadline - time.monotonic()))
            left = max(left, self._handed.events + self._handed.texts)
            if left:
                self._retire(self.producer, "not acknowledged before close gave up")
        self.final_ok = left == 0
        self.reporter.report(math.inf)
        for barrier in barriers:
            barrier.finish(self.final_ok)
