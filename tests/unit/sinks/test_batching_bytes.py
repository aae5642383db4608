"""Pending rows are bounded by bytes as well as by rows: the byte count, flush-due, and the setting."""

from __future__ import annotations

from typing import Any, Final

import pytest

from sinks.batching import Chunk, PendingBatches
from sinks.writer import DEFAULT_BATCH_MAX_BYTES, SinkConfig

NEVER: Final = 1 << 40  # a bound that never binds
STILL: Final = 100.0  # the clock never moves: only size can make a flush due


def _batches() -> PendingBatches:
    return PendingBatches(lambda: STILL)


def _add(batches: PendingBatches, table: str, partition: int, offset: int, size: int) -> None:
    """One record of ``size`` bytes that produced one row."""
    batches.add(table, Chunk("a", partition, offset, [{"i": offset}], b"v" * size))
    batches.consumed("a", partition, offset)


@pytest.mark.parametrize(
    ("sizes", "due"),
    [([999], False), ([1_000], True), ([400, 599], False), ([400, 600], True), ([5_000], True)],
    ids=["under", "at", "two-under", "two-at", "one-huge-record"],
)
def test_due_by_bytes_before_the_row_bound(sizes: list[int], due: bool) -> None:
    batches = _batches()
    for offset, size in enumerate(sizes):
        _add(batches, "t", 0, offset, size)
    assert batches.byte_count == sum(sizes)
    assert batches.full(max_rows=NEVER, max_bytes=1_000) is due
    assert batches.due(max_rows=NEVER, max_age_s=60.0, max_bytes=1_000) is due


@pytest.mark.parametrize(
    ("max_rows", "max_bytes", "due"),
    [(2, NEVER, True), (NEVER, 300, True), (3, 301, False)],
    ids=["rows-bind", "bytes-bind", "neither"],
)
def test_either_bound_makes_a_flush_due(max_rows: int, max_bytes: int, due: bool) -> None:
    batches = _batches()
    _add(batches, "t", 0, 0, 100)
    _add(batches, "t", 0, 1, 200)
    assert batches.full(max_rows, max_bytes) is due
    assert batches.due(max_rows, 60.0, max_bytes=max_bytes) is due


def test_written_and_dropped_chunks_release_their_bytes() -> None:
    batches = _batches()
    _add(batches, "calls", 0, 0, 100)
    _add(batches, "calls", 1, 0, 20)
    _add(batches, "dlq", 1, 1, 3)
    batches.add("calls", Chunk("a", 0, 1, [], b"x" * 50))  # no rows: holds nothing
    assert batches.byte_count == 123
    assert batches.drop([("a", 1)]) == 2
    assert batches.byte_count == 100
    batches.written("calls")
    assert batches.byte_count == 0
    assert not batches.full(max_rows=1, max_bytes=1)


def test_a_record_feeding_several_tables_counts_once_per_table() -> None:
    # The documented approximation: it errs high, so the bound holds.
    batches = _batches()
    value = b"r" * 70
    batches.add("rollups_1m", Chunk("a", 0, 0, [{"k": 1}], value))
    batches.add("user_cost_1h", Chunk("a", 0, 0, [{"k": 2}], value))
    assert batches.byte_count == 140
    batches.written("rollups_1m")
    assert batches.byte_count == 70


def test_sink_config_defaults_to_a_named_byte_bound() -> None:
    assert SinkConfig(bootstrap="b:9092").batch_max_bytes == DEFAULT_BATCH_MAX_BYTES


@pytest.mark.parametrize("value", [0, -1, float("nan")], ids=repr)
def test_a_bad_byte_bound_is_named(value: Any) -> None:
    with pytest.raises(ValueError, match="batch_max_bytes") as info:
        SinkConfig(bootstrap="b:9092", batch_max_bytes=value)
    assert f"got {value!r}" in str(info.value)
