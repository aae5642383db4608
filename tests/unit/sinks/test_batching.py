from __future__ import annotations

import pytest

from sinks.batching import Chunk, PendingBatches

BIG = (
    1 << 40
)  # a byte bound that never binds (tests/unit/sinks/test_batching_bytes.py covers bytes)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _rows(n: int) -> list[dict[str, object]]:
    return [{"i": i} for i in range(n)]


def _add(
    batches: PendingBatches, table: str, topic: str, partition: int, offset: int, n: int
) -> None:
    batches.add(table, Chunk(topic, partition, offset, _rows(n), b"v"))
    batches.consumed(topic, partition, offset)


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def batches(clock: FakeClock) -> PendingBatches:
    return PendingBatches(clock)


def test_new_batches_are_empty_and_not_due(batches: PendingBatches) -> None:
    assert batches.empty
    assert not batches.due(max_rows=1, max_age_s=0.0, max_bytes=BIG)
    assert batches.commit_ready() == {}


@pytest.mark.parametrize(("rows", "due"), [(9, False), (10, True), (25, True)])
def test_due_by_size(batches: PendingBatches, rows: int, due: bool) -> None:
    _add(batches, "t", "a", 0, 0, rows)
    assert batches.due(max_rows=10, max_age_s=60.0, max_bytes=BIG) is due


@pytest.mark.parametrize(("elapsed", "due"), [(0.5, False), (1.0, True), (3.0, True)])
def test_due_by_age_of_the_oldest_record(
    batches: PendingBatches, clock: FakeClock, elapsed: float, due: bool
) -> None:
    _add(batches, "t", "a", 0, 0, 1)
    clock.now += 0.4
    _add(batches, "t", "a", 0, 1, 1)
    clock.now += elapsed - 0.4
    assert batches.due(max_rows=1000, max_age_s=1.0, max_bytes=BIG) is due


def test_records_without_rows_still_need_a_commit(
    batches: PendingBatches, clock: FakeClock
) -> None:
    _add(batches, "t", "a", 0, 4, 0)
    assert batches.tables() == []
    assert not batches.empty
    clock.now += 1.0
    assert batches.due(max_rows=1000, max_age_s=1.0, max_bytes=BIG)
    assert batches.commit_ready() == {("a", 0): 5}


def test_positions_are_ready_only_when_every_table_is_written(batches: PendingBatches) -> None:
    _add(batches, "calls", "a", 0, 7, 3)
    _add(batches, "dlq", "b", 1, 2, 1)
    _add(batches, "calls", "a", 1, 9, 2)
    assert batches.row_count == 6
    assert batches.commit_ready() == {}
    assert batches.written("calls") == 5
    assert batches.commit_ready() == {}
    assert batches.written("dlq") == 1
    assert batches.commit_ready() == {("a", 0): 8, ("b", 1): 3, ("a", 1): 10}
    assert batches.row_count == 0


def test_committed_forgets_positions_that_did_not_move(batches: PendingBatches) -> None:
    _add(batches, "t", "a", 0, 0, 1)
    _add(batches, "t", "a", 1, 0, 1)
    batches.written("t")
    ready = batches.commit_ready()
    _add(batches, "t", "a", 1, 1, 0)  # consumed after the commit was prepared
    batches.committed(ready)
    assert batches.commit_ready() == {("a", 1): 2}
    batches.committed({("a", 1): 2})
    assert batches.empty


def test_drop_forgets_rows_and_positions_of_revoked_partitions(batches: PendingBatches) -> None:
    _add(batches, "calls", "a", 0, 0, 3)
    _add(batches, "calls", "a", 1, 0, 4)
    _add(batches, "dlq", "a", 1, 1, 1)
    assert batches.drop([("a", 1)]) == 5
    assert batches.row_count == 3
    assert batches.tables() == ["calls"]
    assert [c.partition for c in batches.chunks("calls")] == [0]
    batches.written("calls")
    assert batches.commit_ready() == {("a", 0): 1}


def test_dropping_everything_resets_the_age(batches: PendingBatches, clock: FakeClock) -> None:
    _add(batches, "t", "a", 0, 0, 1)
    clock.now += 5
    batches.drop([("a", 0)])
    assert batches.empty
    assert not batches.due(max_rows=10, max_age_s=1.0, max_bytes=BIG)


def test_seconds_until_due_counts_from_the_oldest_record(
    batches: PendingBatches, clock: FakeClock
) -> None:
    assert batches.seconds_until_due(0.25) is None  # nothing pending: no deadline
    _add(batches, "t", "a", 0, 0, 1)
    clock.now += 0.1
    _add(batches, "t", "a", 0, 1, 1)  # a newer record does not move the deadline
    assert batches.seconds_until_due(0.25) == pytest.approx(0.15)
    clock.now += 0.5
    assert batches.seconds_until_due(0.25) == 0.0
    batches.written("t")
    batches.committed(batches.commit_ready())  # flushed and committed: no deadline again
    assert batches.seconds_until_due(0.25) is None
