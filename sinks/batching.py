"""The sink's in-flight state: rows waiting to be inserted, and Kafka positions waiting to be committed.

No I/O here; the consumer loop (``sinks.writer``) drives it. The bookkeeping that makes the sink
at-least-once:

- Every consumed record advances its partition's *position* (offset + 1), whether it produced rows
  or not. Positions are handed out for commit only once no rows are pending (:meth:`commit_ready`), i.e.
  after every row of every record up to that position was inserted.
- Rows are kept per table as :class:`Chunk` s (the rows of one record, with the record's source
  position and raw bytes), so a record whose rows ClickHouse rejects can be dead-lettered whole.
- :meth:`PendingBatches.drop` forgets everything of revoked partitions, rows and positions alike:
  their new owner re-reads them from the last committed offset.
- :meth:`PendingBatches.due` says when to flush: by size (:meth:`PendingBatches.full`: ``max_rows``
  pending rows or ``max_bytes`` pending bytes) or by time (the oldest unflushed record is ``max_age_s``
  old, counted from its arrival as the consumer loop estimates it, see :meth:`PendingBatches.consumed`).
- Bytes are an approximation that costs nothing to compute: each chunk counts its Kafka record's value
  size (:attr:`Chunk.nbytes`). A record that feeds several tables counts once per table, so the count
  errs high; decoded rows take a small multiple of their JSON size in Python, so the memory held is a
  small multiple of the pending bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

__all__ = ["Chunk", "PendingBatches", "TopicPartitionKey"]

TopicPartitionKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Chunk:
    """The rows one Kafka record produced for one table."""

    topic: str
    partition: int
    offset: int
    rows: list[dict[str, Any]] | pa.Table  # dicts, or the worker's Arrow calls
    value: bytes | None = (
        None  # the record's bytes, kept to dead-letter it if ClickHouse rejects it
    )
    synthesized: bool = False  # a dead letter the sink made itself

    @property
    def key(self) -> TopicPartitionKey:
        return (self.topic, self.partition)

    @property
    def nbytes(self) -> int:
        """The approximate size of the chunk's rows: its record's value size."""
        return len(self.value) if self.value is not None else 0


@dataclass(slots=True)
class PendingBatches:
    """Rows per table and uncommitted positions per partition."""

    clock: Callable[[], float]
    _chunks: dict[str, list[Chunk]] = field(default_factory=dict)
    _positions: dict[TopicPartitionKey, int] = field(default_factory=dict)
    _rows: int = 0
    _bytes: int = 0
    _since: float | None = None  # clock() when the oldest unflushed record arrived

    @property
    def row_count(self) -> int:
        return self._rows

    @property
    def byte_count(self) -> int:
        """Approximate bytes of the pending rows (see the module docstring)."""
        return self._bytes

    @property
    def empty(self) -> bool:
        """Nothing to insert and nothing to commit."""
        return not self._positions and not self._chunks

    def consumed(
        self, topic: str, partition: int, offset: int, arrived: float | None = None
    ) -> None:
        """Record that the record at ``offset`` was read (call once per record, in order).

        ``arrived``: when the record reached the sink's side, on :attr:`clock`, if earlier than now
        (e.g. it waited in the consumer's queue during an insert); the time-based flush counts from
        the oldest unflushed record's arrival."""
        if self._since is None:
            now = self.clock()
            self._since = now if arrived is None else min(arrived, now)
        self._positions[(topic, partition)] = offset + 1

    def add(self, table: str, chunk: Chunk) -> None:
        if chunk.rows:
            self._chunks.setdefault(table, []).append(chunk)
            self._rows += len(chunk.rows)
            self._bytes += chunk.nbytes

    def full(self, max_rows: int, max_bytes: int) -> bool:
        """A size bound is reached: ``max_rows`` pending rows or ``max_bytes`` pending bytes."""
        return self._rows >= max_rows or self._bytes >= max_bytes

    def due(self, max_rows: int, max_age_s: float, *, max_bytes: int) -> bool:
        """A flush is due: a size bound is reached or the oldest unflushed record is too old."""
        if self.full(max_rows, max_bytes):
            return True
        return self._since is not None and self.clock() - self._since >= max_age_s

    def seconds_until_due(self, max_age_s: float) -> float | None:
        """How long until the oldest unflushed record is ``max_age_s`` old (0 if it is); None when
        nothing is pending."""
        if self._since is None:
            return None
        return max(0.0, self._since + max_age_s - self.clock())

    def tables(self) -> list[str]:
        return list(self._chunks)

    def chunks(self, table: str) -> list[Chunk]:
        return list(self._chunks.get(table, ()))

    def written(self, table: str) -> int:
        """``table``'s chunks were inserted: forget them; return their row count."""
        done = self._chunks.pop(table, [])
        rows = sum(len(c.rows) for c in done)
        self._rows -= rows
        self._bytes -= sum(c.nbytes for c in done)
        return rows

    def commit_ready(self) -> dict[TopicPartitionKey, int]:
        """Positions safe to commit: all of them once no rows are pending, else none."""
        return {} if self._chunks else dict(self._positions)

    def committed(self, positions: dict[TopicPartitionKey, int]) -> None:
        """``positions`` were committed: forget the ones that did not move since."""
        for key, position in positions.items():
            if self._positions.get(key) == position:
                del self._positions[key]
        if self.empty:
            self._since = None

    def drop(self, partitions: Iterable[TopicPartitionKey]) -> int:
        """Forget rows and positions of ``partitions`` (revoked); return the rows dropped."""
        gone = set(partitions)
        dropped = 0
        for table in list(self._chunks):
            kept = [c for c in self._chunks[table] if c.key not in gone]
            lost = [c for c in self._chunks[table] if c.key in gone]
            dropped += sum(len(c.rows) for c in lost)
            self._bytes -= sum(c.nbytes for c in lost)
            if kept:
                self._chunks[table] = kept
            else:
                del self._chunks[table]
        for key in gone:
            self._positions.pop(key, None)
        self._rows -= dropped
        if self.empty:
            self._since = None
        return dropped
