"""The judge service (``llmwatch judge``): judge requests in, scores (or dead letters) out, at least once.

One consumer group (:data:`DEFAULT_JUDGE_GROUP`) reads the ``judge_requests`` topic; it scales by
partitions like the other consumers. Each record is decoded into a :class:`JudgeRequest` and handed to
the injected scorer (:data:`ScoreFn`, in practice ``streams.evaluation.scoring.RubricJudge.score``),
whose scores go to the ``scores`` topic as ONE record per request (key: the request's trace id, else
its event id; value: ``encode_scores``; split into one record per score only if too large for one).
On the embedded Tansu broker a JoinGroup is held for half the session timeout: pass a short
``session_timeout_ms`` there (6 s, as ``Settings.session_timeout_s``).

Guarantees:
- Bounded work: at most ``concurrency`` scorer calls run at once (a semaphore) and at most
  ``max_in_flight`` records are unfinished; at that bound the consumer pauses its partitions (it keeps
  polling, so it stays in the group) until some finish.
- At-least-once: an item is *finished* only when the broker acknowledged its outputs (its scores
  record, or its dead letter); a send that fails is retried with backoff until acknowledged. The
  committed offset of a partition is the end of its longest finished contiguous prefix
  (``streams.evaluation.offsets.OffsetTracker``): items finish out of order, but the commit never
  passes an unfinished one. A restart re-reads the unfinished items, and possibly some finished after
  them: duplicates, which are harmless because ``llm_scores`` keeps the newest row per (target, name,
  source, evaluator).
- Poison items: the scorer raises :class:`PoisonItem` for a request that can never be scored (the
  judge's output unparseable after its retries, a permanent judge error); a record that is not a
  judge request is poison too. Both become dead letters on the ``dlq`` topic that keep NO payload (the
  request carries prompt and output text): the reason holds only the record's size and sha256.
- Transient failures: any other exception of the scorer (judge endpoint down, 429s and 5xx past the
  client's own retries) leaves the item unfinished and retries it later with backoff, forever. A long
  endpoint outage therefore STALLS the partition (its committed offset stays at the first unfinished
  item, and once ``max_in_flight`` items are stuck, polling pauses) rather than losing items.
- Rebalances: on revoke the finished prefix of the revoked partitions is committed and their tracking
  dropped; their items still running may produce results (at-least-once duplication, see above) but
  are not retried any further nor counted as finished. On a lost assignment nothing is committed.

Threads: :meth:`JudgeService.run` runs its own asyncio loop in the calling thread. Kafka's blocking
calls (``consume``, ``commit``, ``close``, the producer's ``poll`` and ``flush``) run in worker threads
(``asyncio.to_thread``), never on the loop; rebalance callbacks therefore run in a worker thread and
share the offset state with the loop under one lock. What can block: ``run`` until ``stop`` is set,
then up to about ``poll_timeout_s``, a final flush of at most :data:`CLOSE_FLUSH_S`, and the final
commit and group leave (broker round trips). Kafka clients log through librdkafka; the consumer's
``log_level`` override applies to the producer too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from pydantic import ValidationError

from streams.clock import Clock, wall_clock_ms
from streams.evaluation.items import JudgeRequest, Score, encode_scores
from streams.evaluation.offsets import OffsetTracker
from streams.heartbeat import touch_heartbeat
from streams.ingest.records import DeadLetter
from streams.kafka_settings import acked_producer_settings, group_consumer_settings
from streams.text.consumer import NO_PAYLOAD
from streams.topics import MAX_RECORD_BYTES, TopicLayout

__all__ = [
    "DEFAULT_JUDGE_GROUP",
    "JudgeService",
    "JudgeServiceConfig",
    "PoisonItem",
    "ScoreFn",
    "decode_request",
]

log = logging.getLogger(__name__)

DEFAULT_JUDGE_GROUP: Final = "llmwatch-judge"
DEFAULT_CONCURRENCY: Final = 4
DEFAULT_MAX_IN_FLIGHT: Final = 64
POLL_TIMEOUT_S: Final = 0.5
DEFAULT_SESSION_TIMEOUT_MS: Final = 45_000
FLUSH_TIMEOUT_S: Final = 30.0
# Waits before a transiently failed item is scored again (the last one repeats, forever), each
# multiplied by a jitter in [ITEM_JITTER_MIN, 1] so that items failed together do not retry together.
ITEM_RETRY_BACKOFF_S: Final = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
ITEM_JITTER_MIN: Final = 0.5
# Waits before unacknowledged outputs are sent again (the last one repeats).
SEND_RETRY_BACKOFF_S: Final = (0.5, 1.0, 2.0, 5.0)
# How long one producer poll waits for delivery reports, and the final flush at stop.
DELIVERY_POLL_S: Final = 0.1
CLOSE_FLUSH_S: Final = 5.0
# Most records taken by one consume call (fewer when close to max_in_flight).
CONSUME_BATCH_MAX: Final = 64
_BUFFER_FULL_WAIT_S: Final = 0.05

ScoreFn = Callable[[JudgeRequest], Awaitable[Sequence[Score]]]
# (topic, key, value) of one record to publish.
Output = tuple[str, bytes | None, bytes]


class PoisonItem(Exception):
    """Raised by a scorer for a request that can never be scored; the item becomes a dead letter
    with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class JudgeServiceConfig:
    bootstrap: str
    layout: TopicLayout
    group_id: str = DEFAULT_JUDGE_GROUP
    concurrency: int = DEFAULT_CONCURRENCY
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    poll_timeout_s: float = POLL_TIMEOUT_S
    # Tansu holds a JoinGroup for half the session timeout: embedded mode wants a short one (6 s).
    session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS
    # Bounds one delivery attempt of an output (librdkafka's message.timeout.ms); then it is resent.
    flush_timeout_s: float = FLUSH_TIMEOUT_S
    consumer_overrides: dict[str, Any] = field(default_factory=dict)
    # Touched every loop turn (at least every ``poll_timeout_s``), for container health checks.
    heartbeat_path: Path | None = None

    def __post_init__(self) -> None:
        if not self.bootstrap:
            raise ValueError(f"bootstrap must be non-empty, got {self.bootstrap!r}")
        if not self.group_id:
            raise ValueError(f"group_id must be non-empty, got {self.group_id!r}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency!r}")
        if self.max_in_flight < self.concurrency:
            raise ValueError(
                f"max_in_flight must be >= concurrency ({self.concurrency}), "
                f"got {self.max_in_flight!r}"
            )
        if self.session_timeout_ms < 1:
            raise ValueError(f"session_timeout_ms must be >= 1, got {self.session_timeout_ms!r}")
        if not self.poll_timeout_s > 0:
            raise ValueError(f"poll_timeout_s must be > 0, got {self.poll_timeout_s!r}")
        if not self.flush_timeout_s > 0:
            raise ValueError(f"flush_timeout_s must be > 0, got {self.flush_timeout_s!r}")


def decode_request(value: bytes | None) -> JudgeRequest | str:
    """The judge request in a record, or why there is none (never quoting the record's text)."""
    if not value:
        return "empty judge request record"
    try:
        return JudgeRequest.from_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        return f"undecodable judge request: {where}: {first['msg']}"


@dataclass(slots=True)
class _Item:
    partition: int
    offset: int
    epoch: int
    value: bytes | None
    request: JudgeRequest | None  # None: not a judge request, see problem
    problem: str = ""


class JudgeService:
    """One process's share of the judge-requests topic (see the module docstring)."""

    def __init__(self, config: JudgeServiceConfig, score: ScoreFn, *, clock: Clock = wall_clock_ms):
        self.config = config
        self._score = score
        self._clock = clock
        self._topic = config.layout.judge_requests
        self.tracker = OffsetTracker()
        # Guards the tracker, epochs, committed offsets and counts: rebalance callbacks run in a
        # worker thread while the loop finishes items.
        self._lock = threading.Lock()
        self._epochs: dict[int, int] = {}  # bumped on every assign/revoke of the partition
        self._committed: dict[int, int] = {}
        self._delivering = False
        self._newly_assigned = False
        self.counts: dict[str, int] = {
            "requests": 0,
            "scores": 0,
            "dead_letters": 0,
            "retries": 0,
            "in_flight": 0,
        }

    # -- settings ------------------------------------------------------------------------------

    def _consumer_settings(self) -> dict[str, Any]:
        config = self.config
        return {
            **group_consumer_settings(config.bootstrap, config.group_id, config.session_timeout_ms),
            **config.consumer_overrides,
        }

    def _producer_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            **acked_producer_settings(self.config.bootstrap, MAX_RECORD_BYTES),
            "message.timeout.ms": int(self.config.flush_timeout_s * 1000),
        }
        if "log_level" in self.config.consumer_overrides:
            settings["log_level"] = self.config.consumer_overrides["log_level"]
        return settings

    # -- the loop ------------------------------------------------------------------------------

    def _beat(self) -> None:
        touch_heartbeat(self.config.heartbeat_path)

    def run(self, stop: threading.Event) -> None:
        """Consume, score, publish and commit until ``stop`` is set."""
        asyncio.run(self._run(stop))

    async def _run(self, stop: threading.Event) -> None:
        consumer = Consumer(self._consumer_settings())
        producer = Producer(self._producer_settings())
        consumer.subscribe(
            [self._topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        log.info("judging %s as group %s", self._topic, self.config.group_id)
        semaphore = asyncio.Semaphore(self.config.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        self._delivering = True
        delivery = asyncio.create_task(self._serve_deliveries(producer))
        paused = False
        try:
            while not stop.is_set():
                self._beat()
                room = self.config.max_in_flight - self._in_flight()
                if room <= 0:
                    # Full: stop fetching, keep polling (group membership), wake when one finishes.
                    consumer.pause(consumer.assignment())
                    paused = True
                    if tasks:
                        await asyncio.wait(
                            tasks,
                            timeout=self.config.poll_timeout_s,
                            return_when=asyncio.FIRST_COMPLETED,
                        )
                    else:
                        await asyncio.sleep(self.config.poll_timeout_s)
                    messages = await asyncio.to_thread(consumer.consume, 1, 0)
                else:
                    if paused or self._take_new_assignment():
                        # librdkafka keeps a partition's pause flag across rebalances: clear it
                        # on the whole (possibly new) assignment.
                        consumer.resume(consumer.assignment())
                        paused = False
                    messages = await asyncio.to_thread(
                        consumer.consume,
                        min(room, CONSUME_BATCH_MAX),
                        self.config.poll_timeout_s,
                    )
                for message in messages:
                    item = self._take(message)
                    if item is not None:
                        task = asyncio.create_task(self._handle(item, producer, semaphore))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                await self._commit(consumer)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._commit(consumer)
            self._delivering = False
            await delivery
            left = await asyncio.to_thread(producer.flush, CLOSE_FLUSH_S)
            if left:
                log.warning("%d judge outputs unacknowledged at stop (re-read at restart)", left)
            await asyncio.to_thread(consumer.close)  # revokes: commits the finished prefix
            log.info("judge stopped: %s", self.counts)

    def _take_new_assignment(self) -> bool:
        with self._lock:
            assigned, self._newly_assigned = self._newly_assigned, False
        return assigned

    def _in_flight(self) -> int:
        with self._lock:
            return self.tracker.unfinished()

    def _take(self, message: Message) -> _Item | None:
        """Track one consumed record as an unfinished item (None for consumer errors)."""
        error = message.error()
        if error is not None:
            if error.fatal():
                raise KafkaException(error)
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", error)
            return None
        partition, offset = message.partition(), message.offset()
        if partition is None or offset is None:
            raise KafkaException(f"record without a position: {partition!r}@{offset!r}")
        value = message.value()
        decoded = decode_request(value)
        with self._lock:
            epoch = self._epochs.get(partition, 0)
            if self.tracker.is_unfinished(partition, offset):
                return None  # delivered again while still being worked on: that work covers it
            self.tracker.add(partition, offset)
            self.counts["in_flight"] = self.tracker.unfinished()
            if isinstance(decoded, JudgeRequest):
                self.counts["requests"] += 1
                return _Item(partition, offset, epoch, value, decoded)
        return _Item(partition, offset, epoch, value, None, decoded)

    def _current(self, item: _Item) -> bool:
        """Whether ``item``'s partition is still ours in the assignment it was taken in."""
        with self._lock:
            return self._epochs.get(item.partition, 0) == item.epoch

    async def _handle(self, item: _Item, producer: Producer, semaphore: asyncio.Semaphore) -> None:
        try:
            outcome = await self._outcome(item, semaphore)
            if outcome is None:
                return  # the partition was revoked: the next owner scores the item
            outputs, scores, dead = outcome
            await self._send_until_acked(producer, outputs)
        except Exception:  # a bug, not a judge failure: the item stays unfinished, loudly
            log.exception(
                "judge item at partition %d offset %d failed; its partition stalls here",
                item.partition,
                item.offset,
            )
            return
        with self._lock:
            self.counts["scores"] += scores
            self.counts["dead_letters"] += dead
            if self._epochs.get(item.partition, 0) == item.epoch:
                self.tracker.finish(item.partition, item.offset)
                self.counts["in_flight"] = self.tracker.unfinished()

    async def _outcome(
        self, item: _Item, semaphore: asyncio.Semaphore
    ) -> tuple[list[Output], int, int] | None:
        """The item's outputs, its number of scores and of dead letters; None if no longer ours."""
        layout = self.config.layout
        request = item.request
        if request is None:
            return [(layout.dlq, None, self._dead_letter(item, item.problem))], 0, 1
        attempt = 0
        while True:
            try:
                async with semaphore:
                    if not self._current(item):
                        return None
                    scores = list(await self._score(request))
            except PoisonItem as exc:
                reason = f"poison judge request {request.event_id}: {exc.reason}"
                return [(layout.dlq, None, self._dead_letter(item, reason))], 0, 1
            except Exception as exc:
                with self._lock:
                    self.counts["retries"] += 1
                pause = ITEM_RETRY_BACKOFF_S[min(attempt, len(ITEM_RETRY_BACKOFF_S) - 1)]
                pause *= random.uniform(ITEM_JITTER_MIN, 1.0)
                attempt += 1
                log.warning(
                    "judge request %s (partition %d offset %d) failed (attempt %d), retrying in "
                    "%.1f s: %s: %s",
                    request.event_id,
                    item.partition,
                    item.offset,
                    attempt,
                    pause,
                    type(exc).__name__,
                    exc,
                )
                await asyncio.sleep(pause)
                if not self._current(item):
                    return None
                continue
            if not scores:
                return [], 0, 0
            key = (request.trace_id or request.event_id).encode()
            value = encode_scores(scores)
            if len(value) <= MAX_RECORD_BYTES:
                return [(layout.scores, key, value)], len(scores), 0
            # Too large together (many long explanations): one record per score instead.
            return [(layout.scores, key, encode_scores([s])) for s in scores], len(scores), 0

    def _dead_letter(self, item: _Item, reason: str) -> bytes:
        raw = item.value or b""
        return DeadLetter(
            failed_at=self._clock(),
            reason=f"{reason} (judge request record of {len(raw)} bytes, sha256 "
            f"{hashlib.sha256(raw).hexdigest()}; not kept: it carries text)",
            source_topic=self._topic,
            source_partition=item.partition,
            source_offset=item.offset,
            index_in_record=-1,
            payload=NO_PAYLOAD,
        ).to_json()

    # -- producing -----------------------------------------------------------------------------

    async def _send_until_acked(self, producer: Producer, outputs: list[Output]) -> None:
        pending = outputs
        attempt = 0
        while pending:
            futures = [await self._produce(producer, output) for output in pending]
            errors = await asyncio.gather(*futures)
            pending = [o for o, err in zip(pending, errors, strict=True) if err is not None]
            if pending:
                pause = SEND_RETRY_BACKOFF_S[min(attempt, len(SEND_RETRY_BACKOFF_S) - 1)]
                attempt += 1
                log.warning(
                    "%d judge outputs not acknowledged (%s); retrying in %.1f s",
                    len(pending),
                    next(e for e in errors if e is not None),
                    pause,
                )
                await asyncio.sleep(pause)

    async def _produce(self, producer: Producer, output: Output) -> asyncio.Future[Any]:
        """Hand one record to the producer; the future resolves to its delivery error or None."""
        loop = asyncio.get_running_loop()
        settled: asyncio.Future[Any] = loop.create_future()

        def settle(err: object) -> None:
            if not settled.done():
                settled.set_result(err)

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            # RuntimeError: the loop is gone (stopped), so nobody waits for this report any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, err)

        topic, key, value = output
        while True:
            try:
                producer.produce(topic, value, key=key, on_delivery=delivered)
                return settled
            except BufferError:
                await asyncio.sleep(_BUFFER_FULL_WAIT_S)
            except KafkaException as exc:  # refused locally (e.g. too large): resent after backoff
                settle(exc.args[0] if exc.args else exc)
                return settled

    async def _serve_deliveries(self, producer: Producer) -> None:
        """Serve the producer's delivery reports (they run in a worker thread) until stopped."""
        while self._delivering:
            await asyncio.to_thread(producer.poll, DELIVERY_POLL_S)

    # -- offsets -------------------------------------------------------------------------------

    async def _commit(self, consumer: Consumer) -> None:
        with self._lock:
            offsets = {
                p: o for p, o in self.tracker.committable().items() if self._committed.get(p) != o
            }
            epochs = {p: self._epochs.get(p, 0) for p in offsets}
        if not offsets:
            return
        try:
            result = await asyncio.to_thread(
                consumer.commit,
                offsets=[TopicPartition(self._topic, p, o) for p, o in offsets.items()],
                asynchronous=False,
            )
        except KafkaException as exc:
            log.warning("commit of %s failed (tried again after the next poll): %s", offsets, exc)
            return
        with self._lock:
            for tp in result or ():
                if tp.error is not None:
                    log.warning("commit of partition %d failed: %s", tp.partition, tp.error)
                elif self._epochs.get(tp.partition, 0) == epochs.get(tp.partition):
                    self._committed[tp.partition] = tp.offset

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        with self._lock:
            for tp in partitions:
                self._epochs[tp.partition] = self._epochs.get(tp.partition, 0) + 1
                self.tracker.drop(tp.partition)
                self._committed.pop(tp.partition, None)
            self._newly_assigned = True
        log.info("judge assigned partitions %s", sorted(tp.partition for tp in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        offsets = self._release(partitions)
        if offsets:
            try:
                consumer.commit(
                    offsets=[TopicPartition(self._topic, p, o) for p, o in offsets.items()],
                    asynchronous=False,
                )
            except KafkaException as exc:
                log.warning("commit at revoke of %s failed: %s", offsets, exc)
        log.info("judge revoked partitions %s", sorted(tp.partition for tp in partitions))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release(partitions)
        log.warning("judge lost partitions %s", sorted(tp.partition for tp in partitions))

    def _release(self, partitions: list[TopicPartition]) -> dict[int, int]:
        """Stop tracking ``partitions``; the offsets still to commit for them."""
        with self._lock:
            committable = self.tracker.committable()
            offsets: dict[int, int] = {}
            for tp in partitions:
                p = tp.partition
                if p in committable and self._committed.get(p) != committable[p]:
                    offsets[p] = committable[p]
                self._epochs[p] = self._epochs.get(p, 0) + 1
                self.tracker.drop(p)
                self._committed.pop(p, None)
            self.counts["in_flight"] = self.tracker.unfinished()
        return offsets
