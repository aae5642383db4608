"""The batching Kafka -> ClickHouse sink (confluent-kafka consumer, clickhouse-connect client).

One consumer in group ``llmwatch-sink`` reads the topics of its route table (``sinks.routes``: calls ->
``llm_calls``, dlq -> ``llm_dlq``; rollups and alerts are one more route each) and inserts their rows
in column-oriented batches.

Guarantees:
- Batches flush by size, as soon as ``batch_max_rows`` rows or ``batch_max_bytes`` bytes are pending
  (bytes: the Kafka record sizes of the pending rows, see ``sinks.batching``), so an insert holds at
  most that many rows or bytes plus one record's; and by time (the oldest unflushed record is
  ``flush_interval_s`` old, by its Kafka timestamp but counted from no earlier than the last flush's
  start, so records that queued up during an insert do not wait a whole interval more), so a row waits
  at most about ``flush_interval_s`` + one insert. A poll never waits past that deadline, and
  time-based flushes start at most once per ``flush_interval_s`` whatever the timestamps say. Records
  read ahead but not handled yet are bounded by librdkafka (``queued.max.messages.kbytes``) and by
  :data:`CONSUME_MAX_RECORDS` per poll.
- Kafka offsets are committed only after the insert succeeded: a synchronous commit of exactly the
  consumed positions (last offset + 1 per partition) once every row of every record up to them is in
  ClickHouse. Delivery is therefore at-least-once; a replay re-inserts rows, which the
  ReplacingMergeTree tables collapse (exact queries read with FINAL, see ``sinks.schema``).
- When an insert (or the commit) fails, the sink pauses its whole assignment, retries with exponential
  backoff (``retry_initial_s`` doubling up to ``retry_max_s``) while still polling, so it stays in the
  group, and commits nothing until the retry succeeds; then it resumes.
- On partition revocation (or loss), in-flight rows and positions of the revoked partitions are
  dropped, not inserted: their new owner re-reads them from the last committed offset.
- Nothing is lost to bad data: a record a route cannot decode, or whose values cannot go into their
  columns (found by checking the rows against the columns' types after a failed insert, see
  ``sinks.rows``), becomes one ``llm_dlq`` row holding the record's bytes (redacted and capped, see
  ``streams.ingest.deadletter``) and the reason, and the rest of the batch is inserted.
- :meth:`ClickHouseSink.run` returns after ``stop`` is set: it flushes and commits what it holds
  (retrying for up to ``close_timeout_s``; what is still not inserted then is left uncommitted, to be
  re-read), then closes the consumer, leaving the group.

What can block: :meth:`ClickHouseSink.run` blocks its thread until stopped. Each loop iteration waits
at most :data:`MAX_POLL_WAIT_S` for records plus one insert (as long as ClickHouse takes). A heartbeat
file (``heartbeat_path``) is touched every iteration so a health check can test its freshness.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)

from sinks.batching import Chunk, PendingBatches
from sinks.health import DEFAULT_METRICS_INTERVAL_S, SinkHealthPublisher
from sinks.migrate import apply_migrations
from sinks.routes import Route, TablesRoute, dead_letter_row, default_routes
from sinks.rows import insert_groups
from sinks.schema import DEFAULT_DATABASE, DLQ_COLUMNS, DLQ_TABLE, validate_database
from sinks.stats import SinkStats, StatsRecorder
from streams.faust_transport import FETCH_MAX_WAIT_MS
from streams.topics import TopicLayout

__all__ = [
    "DEFAULT_BATCH_MAX_BYTES",
    "DEFAULT_BATCH_MAX_ROWS",
    "DEFAULT_FLUSH_INTERVAL_S",
    "DEFAULT_GROUP_ID",
    "DEFAULT_SESSION_TIMEOUT_MS",
    "MAX_POLL_WAIT_S",
    "ClickHouseSink",
    "SinkConfig",
]

log = logging.getLogger(__name__)

DEFAULT_GROUP_ID: Final = "llmwatch-sink"
DEFAULT_BATCH_MAX_ROWS: Final = 10_000
# 32 MiB of record bytes: 10,000 call rows with short text are ~12 MiB, so the row bound binds first
# unless rows carry large captured text (then an insert stays near 32 MiB, not 10,000 x 2 MiB).
DEFAULT_BATCH_MAX_BYTES: Final = 32 * 1024 * 1024
DEFAULT_FLUSH_INTERVAL_S: Final = 1.0
# Short enough for fast rebalances on the embedded Tansu broker (it holds a JoinGroup for half of it).
DEFAULT_SESSION_TIMEOUT_MS: Final = 6_000
DEFAULT_RETRY_INITIAL_S: Final = 0.5
DEFAULT_RETRY_MAX_S: Final = 30.0
DEFAULT_CLOSE_TIMEOUT_S: Final = 10.0
# Longest wait for records in one loop iteration: bounds flush lateness and stop latency.
MAX_POLL_WAIT_S: Final = 0.1
CONSUME_MAX_RECORDS: Final = 500
# The sink owns these consumer settings; its guarantees depend on them.
_OWNED_SETTINGS: Final = frozenset({"enable.auto.commit", "group.id", "bootstrap.servers"})
# Errors that mean "ClickHouse or Kafka did not take it, try again later".
_RETRYABLE: Final = (ClickHouseError, OSError, KafkaException)


@dataclass(frozen=True, slots=True)
class SinkConfig:
    bootstrap: str
    layout: TopicLayout = field(default_factory=TopicLayout)
    group_id: str = DEFAULT_GROUP_ID
    database: str = DEFAULT_DATABASE
    batch_max_rows: int = DEFAULT_BATCH_MAX_ROWS
    batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES
    flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S
    session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS
    # Extra librdkafka settings (security.protocol, sasl.*, ...); cannot override _OWNED_SETTINGS.
    consumer_config: Mapping[str, Any] = field(default_factory=dict)
    retry_initial_s: float = DEFAULT_RETRY_INITIAL_S
    retry_max_s: float = DEFAULT_RETRY_MAX_S
    close_timeout_s: float = DEFAULT_CLOSE_TIMEOUT_S
    heartbeat_path: Path | None = None
    metrics_interval_s: float = DEFAULT_METRICS_INTERVAL_S
    migrate: bool = True  # apply the schema migrations when run() starts

    def __post_init__(self) -> None:
        validate_database(self.database)
        if self.batch_max_rows < 1:
            raise ValueError(f"batch_max_rows must be >= 1, got {self.batch_max_rows!r}")
        if not self.batch_max_bytes >= 1:  # "not >=" also rejects NaN
            raise ValueError(f"batch_max_bytes must be >= 1, got {self.batch_max_bytes!r}")
        if self.flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be > 0, got {self.flush_interval_s!r}")
        if not 0 < self.retry_initial_s <= self.retry_max_s:
            raise ValueError(
                "need 0 < retry_initial_s <= retry_max_s, "
                f"got {self.retry_initial_s!r} and {self.retry_max_s!r}"
            )
        owned = sorted(_OWNED_SETTINGS & set(self.consumer_config))
        if owned:
            raise ValueError(f"consumer_config cannot set {owned}; use the SinkConfig fields")

    def consumer_settings(self) -> dict[str, Any]:
        return {
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": max(100, self.session_timeout_ms // 3),
            "auto.offset.reset": "earliest",
            # A broker that holds an empty fetch for the whole wait (Tansu) adds it to freshness.
            "fetch.wait.max.ms": FETCH_MAX_WAIT_MS,
            **self.consumer_config,
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group_id,
            "enable.auto.commit": False,
        }


class ClickHouseSink:
    """Consume the routed topics and insert their rows into ClickHouse (see the module docstring)."""

    def __init__(
        self,
        config: SinkConfig,
        client: Client,
        routes: Mapping[str, Route | TablesRoute] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._client = client
        self._routes = dict(routes if routes is not None else default_routes(config.layout))
        self._columns = _table_columns(self._routes)
        self._clock = clock
        self._batches = PendingBatches(clock)
        self._stats = StatsRecorder()
        self._retry_at: float | None = None
        self._failures = 0  # consecutive failed flushes
        self._cycle_started = clock()  # when the last flush began (or the sink started)
        self._paused = False
        self._newly_assigned: list[TopicPartition] = []
        self._heartbeat_warned = False
        self._health = SinkHealthPublisher(client, config.database, config.metrics_interval_s)

    def stats(self) -> SinkStats:
        return self._stats.snapshot()

    def run(self, stop: threading.Event) -> None:
        """Consume, insert and commit until ``stop`` is set; then flush, commit and close."""
        if self._config.migrate:
            apply_migrations(self._client, self._config.database)
        if self._config.heartbeat_path is not None:
            self._config.heartbeat_path.parent.mkdir(parents=True, exist_ok=True)
        consumer = Consumer(self._config.consumer_settings())
        consumer.subscribe(
            list(self._routes),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        log.info("sink consuming %s into database %s", list(self._routes), self._config.database)
        try:
            while not stop.is_set():
                self._beat()
                self._poll(consumer, self._poll_wait())
                if self._flush_due():
                    self._flush(consumer)
                self._health.maybe_publish(consumer, self.stats())
            self._final_flush(consumer)
            self._health.publish(consumer, self.stats())
        finally:
            consumer.close()
            log.info("sink stopped: %s", self.stats())

    # Consuming.

    def _poll_wait(self) -> float:
        """At most :data:`MAX_POLL_WAIT_S`, and no later than the time-based flush is due: a poll
        returns early only with a full batch of records, so a fixed wait would delay the flush."""
        if self._retry_at is not None:
            return MAX_POLL_WAIT_S
        due = self._batches.seconds_until_due(self._config.flush_interval_s)
        return MAX_POLL_WAIT_S if due is None else min(MAX_POLL_WAIT_S, due)

    def _poll(self, consumer: Consumer, timeout_s: float) -> None:
        if self._newly_assigned:
            # librdkafka keeps a partition's pause flag across rebalances: set it explicitly.
            if self._paused:
                consumer.pause(self._newly_assigned)
            else:
                consumer.resume(self._newly_assigned)
            self._newly_assigned = []
        for message in consumer.consume(num_messages=CONSUME_MAX_RECORDS, timeout=timeout_s):
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                log.warning("consumer error: %s", error)
                continue
            self._handle(message)
            self._stats.count("records_consumed")
            # Flush by size as soon as a batch is full, so inserts stay near their bounds.
            if self._retry_at is None and self._size_bound_reached():
                self._flush(consumer)

    def _handle(self, message: Message) -> None:
        topic, partition, offset = _position(message)
        value = message.value()
        route = self._routes[topic]
        try:
            per_table = route.split(value)
        except Exception as exc:  # any decoder failure dead-letters the record; nothing is lost
            reason = f"cannot decode {topic} record for {route.table}: {exc}"
            self._dead_letter(Chunk(topic, partition, offset, [], value), reason)
        else:
            for table, rows in per_table.items():
                self._batches.add(table, Chunk(topic, partition, offset, rows, value))
        self._batches.consumed(topic, partition, offset, self._arrival(message))

    def _arrival(self, message: Message) -> float:
        """When ``message`` reached the broker, on the sink's clock, from its Kafka timestamp: a record
        that waited in the consumer's queue during an insert is that much older. Never later than now,
        and never before the current flush cycle began (a skewed producer clock, or a backlog read at
        start-up, cannot make every poll flush)."""
        now = self._clock()
        kind, stamp_ms = message.timestamp()
        if kind == TIMESTAMP_NOT_AVAILABLE or stamp_ms <= 0:
            return now
        age_s = max(0.0, time.time() - stamp_ms / 1000.0)
        return max(now - age_s, self._cycle_started)

    def _dead_letter(self, chunk: Chunk, reason: str) -> None:
        log.warning(
            "dead-lettering %s[%d]@%d: %s", chunk.topic, chunk.partition, chunk.offset, reason
        )
        row = dead_letter_row(reason, chunk.topic, chunk.partition, chunk.offset, chunk.value)
        dead = Chunk(
            chunk.topic, chunk.partition, chunk.offset, [row], value=chunk.value, synthesized=True
        )
        self._batches.add(DLQ_TABLE, dead)
        self._stats.count("dead_letters")

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", _names(partitions))
        self._newly_assigned = list(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        dropped = self._batches.drop((tp.topic, tp.partition) for tp in partitions)
        self._stats.count("rows_dropped_on_revoke", dropped)
        log.info("revoked %s, dropped %d in-flight rows", _names(partitions), dropped)

    def _beat(self) -> None:
        path = self._config.heartbeat_path
        if path is None:
            return
        try:
            path.touch()
        except OSError as exc:
            if not self._heartbeat_warned:
                log.warning("cannot touch heartbeat file %s: %s", path, exc)
                self._heartbeat_warned = True

    # Flushing.

    def _size_bound_reached(self) -> bool:
        return self._batches.full(self._config.batch_max_rows, self._config.batch_max_bytes)

    def _flush_due(self) -> bool:
        if self._retry_at is not None:
            return self._clock() >= self._retry_at
        config = self._config
        return self._batches.due(
            config.batch_max_rows, config.flush_interval_s, max_bytes=config.batch_max_bytes
        )

    def _flush(self, consumer: Consumer) -> bool:
        """Insert everything pending, then commit; on failure pause and schedule a retry."""
        self._cycle_started = self._clock()
        try:
            self._insert_pending()
            self._commit(consumer)
        except _RETRYABLE as exc:
            self._failures += 1
            delay = min(
                self._config.retry_initial_s * 2 ** (self._failures - 1), self._config.retry_max_s
            )
            self._retry_at = self._clock() + delay
            if not self._paused:
                consumer.pause(consumer.assignment())
                self._set_paused(True)
            log.warning(
                "flush failed (attempt %d), paused, retrying in %.2f s: %s",
                self._failures,
                delay,
                exc,
            )
            return False
        if self._paused:
            consumer.resume(consumer.assignment())
            self._set_paused(False)
            log.info("flush succeeded after %d failed attempts, resumed", self._failures)
        self._retry_at = None
        self._failures = 0
        return True

    def _set_paused(self, paused: bool) -> None:
        self._paused = paused
        self._stats.set_paused(paused)

    def _insert_pending(self) -> None:
        while (table := _next_table(self._batches.tables())) is not None:
            chunks = self._batches.chunks(table)
            started = time.perf_counter()
            try:
                rejected = insert_groups(
                    self._client,
                    self._config.database,
                    table,
                    [chunk.rows for chunk in chunks],
                    self._columns[table],
                )
            except _RETRYABLE:
                self._stats.count("insert_failures")
                raise
            latency_ms = (time.perf_counter() - started) * 1000.0
            total = self._batches.written(table)
            lost = sum(len(chunks[index].rows) for index, _ in rejected)
            self._stats.inserted(table, total - lost, latency_ms)
            for index, exc in rejected:
                self._reject(table, chunks[index], exc)

    def _reject(self, table: str, chunk: Chunk, exc: Exception) -> None:
        if chunk.synthesized:
            # The sink builds these rows itself with valid types; this is a schema bug.
            raise RuntimeError(f"{DLQ_TABLE} rejected the sink's own dead letter: {exc}") from exc
        self._dead_letter(chunk, f"{table} rejected the record's rows: {exc}")

    def _commit(self, consumer: Consumer) -> None:
        positions = self._batches.commit_ready()
        if not positions:
            return
        offsets = [TopicPartition(topic, part, pos) for (topic, part), pos in positions.items()]
        try:
            result = consumer.commit(offsets=offsets, asynchronous=False)
            for tp in result or ():
                if tp.error is not None:
                    raise KafkaException(tp.error)
        except KafkaException:
            self._stats.count("commit_failures")
            raise
        self._batches.committed(positions)
        self._stats.count("commits")

    def _final_flush(self, consumer: Consumer) -> None:
        deadline = self._clock() + self._config.close_timeout_s
        while not self._batches.empty:
            if self._flush(consumer):
                return
            remaining = deadline - self._clock()
            if remaining <= 0:
                log.error(
                    "stopping with %d rows not inserted; their offsets are not committed, "
                    "the next consumer re-reads them",
                    self._batches.row_count,
                )
                return
            wait = min(remaining, max(0.0, (self._retry_at or 0.0) - self._clock()))
            self._poll(consumer, wait)


def _next_table(tables: list[str]) -> str | None:
    """Route tables first; the dead-letter table last, since inserting others can add to it."""
    for table in tables:
        if table != DLQ_TABLE:
            return table
    return DLQ_TABLE if DLQ_TABLE in tables else None


def _table_columns(routes: Mapping[str, Route | TablesRoute]) -> dict[str, tuple[str, ...]]:
    columns: dict[str, tuple[str, ...]] = {DLQ_TABLE: DLQ_COLUMNS}
    for topic, route in routes.items():
        for table, wanted in route.tables.items():
            known = columns.setdefault(table, wanted)
            if known != wanted:
                raise ValueError(
                    f"route for topic {topic!r} inserts {table!r} with columns "
                    f"{wanted!r}, another route uses {known!r}"
                )
    return columns


def _position(message: Message) -> tuple[str, int, int]:
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise KafkaException(f"record without a position: {topic!r}[{partition!r}]@{offset!r}")
    return topic, partition, offset


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]
