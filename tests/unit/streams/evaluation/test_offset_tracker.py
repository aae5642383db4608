"""OffsetTracker: the commit of a partition never passes an unfinished item, whatever the finish order."""

from __future__ import annotations

import random

import pytest

from streams.evaluation.offsets import OffsetTracker


def test_empty_tracker_has_nothing_to_commit() -> None:
    tracker = OffsetTracker()
    assert tracker.committable() == {}
    assert tracker.unfinished() == 0
    assert tracker.partitions == []


def test_unfinished_first_item_holds_the_commit_at_itself() -> None:
    tracker = OffsetTracker()
    tracker.add(0, 10)
    tracker.add(0, 11)
    assert tracker.committable() == {0: 10}
    tracker.finish(0, 11)
    assert tracker.committable() == {0: 10}  # 11 is done, but 10 is not: never pass it
    tracker.finish(0, 10)
    assert tracker.committable() == {0: 12}


def test_in_order_finishes_advance_one_by_one() -> None:
    tracker = OffsetTracker()
    for offset in range(5):
        tracker.add(3, offset)
    for offset in range(5):
        tracker.finish(3, offset)
        assert tracker.committable() == {3: offset + 1}


def test_out_of_order_finishes_commit_only_the_contiguous_prefix() -> None:
    tracker = OffsetTracker()
    for offset in range(6):
        tracker.add(0, offset)
    expected = {4: 0, 2: 0, 0: 1, 5: 1, 1: 3, 3: 6}
    for offset, commit in expected.items():
        tracker.finish(0, offset)
        assert tracker.committable() == {0: commit}, f"after finishing {offset}"


def test_partitions_are_independent() -> None:
    tracker = OffsetTracker()
    tracker.add(0, 0)
    tracker.add(0, 1)
    tracker.add(1, 100)
    tracker.add(1, 101)
    tracker.finish(1, 100)
    tracker.finish(0, 1)
    assert tracker.committable() == {0: 0, 1: 101}
    assert tracker.unfinished(0) == 1 and tracker.unfinished(1) == 1 and tracker.unfinished() == 2
    assert tracker.partitions == [0, 1]


def test_gaps_in_offsets_do_not_hold_the_commit() -> None:
    tracker = OffsetTracker()  # e.g. transaction markers or compacted records between items
    for offset in (5, 9, 20):
        tracker.add(0, offset)
    tracker.finish(0, 5)
    assert tracker.committable() == {0: 9}
    tracker.finish(0, 9)
    assert tracker.committable() == {0: 20}
    tracker.finish(0, 20)
    assert tracker.committable() == {0: 21}


def test_items_added_after_a_finished_prefix() -> None:
    tracker = OffsetTracker()
    tracker.add(0, 0)
    tracker.finish(0, 0)
    assert tracker.committable() == {0: 1}
    tracker.add(0, 1)
    tracker.add(0, 2)
    tracker.finish(0, 2)
    assert tracker.committable() == {0: 1}
    tracker.finish(0, 1)
    assert tracker.committable() == {0: 3}


def test_finish_of_an_unknown_or_finished_offset_is_refused() -> None:
    tracker = OffsetTracker()
    with pytest.raises(ValueError, match="offset 3 of partition 0"):
        tracker.finish(0, 3)
    tracker.add(0, 3)
    tracker.finish(0, 3)
    with pytest.raises(ValueError, match="not an unfinished item"):
        tracker.finish(0, 3)
    with pytest.raises(ValueError, match="partition 7"):
        tracker.finish(7, 3)
    assert tracker.committable() == {0: 4}


def test_adding_an_offset_twice_or_a_negative_one_is_refused() -> None:
    tracker = OffsetTracker()
    tracker.add(0, 1)
    with pytest.raises(ValueError, match="already unfinished"):
        tracker.add(0, 1)
    with pytest.raises(ValueError, match="-1"):
        tracker.add(0, -1)
    assert tracker.unfinished() == 1


def test_a_finished_offset_read_again_is_tracked_again() -> None:
    tracker = OffsetTracker()  # a re-delivery after a seek: committing lower is at-least-once
    tracker.add(0, 0)
    tracker.add(0, 1)
    tracker.finish(0, 0)
    tracker.finish(0, 1)
    tracker.add(0, 0)
    assert tracker.committable() == {0: 0}
    tracker.finish(0, 0)
    assert tracker.committable() == {0: 2}


def test_drop_forgets_a_revoked_partition() -> None:
    tracker = OffsetTracker()
    tracker.add(0, 0)
    tracker.add(1, 0)
    tracker.drop(1)
    tracker.drop(9)  # unknown: nothing happens
    assert tracker.committable() == {0: 0}
    assert tracker.unfinished() == 1
    with pytest.raises(ValueError):
        tracker.finish(1, 0)


@pytest.mark.parametrize("seed", range(20))
def test_random_finish_orders_match_a_brute_force_prefix(seed: int) -> None:
    rng = random.Random(seed)
    offsets = sorted(rng.sample(range(200), 40))
    tracker = OffsetTracker()
    for offset in offsets:
        tracker.add(0, offset)
    order = offsets[:]
    rng.shuffle(order)
    done: set[int] = set()
    for offset in order:
        tracker.finish(0, offset)
        done.add(offset)
        waiting = [o for o in offsets if o not in done]
        expected = waiting[0] if waiting else offsets[-1] + 1
        assert tracker.committable() == {0: expected}
        # The commit never passes an unfinished offset.
        assert all(o >= expected for o in waiting)
