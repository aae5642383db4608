"""Key buckets and batch packing (pure)."""

from __future__ import annotations

import orjson
import pytest

from producers.sdk.batching import (
    TRACE_KEY_BUCKETS,
    Batcher,
    bucket_for,
    bucket_key,
    held_bytes,
)
from producers.wire import encode_batch_raw, split_record


@pytest.mark.parametrize("trace_id", ["a", "0" * 32, "trace-\u00e9\u4e2d", "\udcff-lone-surrogate"])
def test_bucket_is_stable_and_in_range(trace_id: str) -> None:
    bucket = bucket_for(trace_id)
    assert 0 <= bucket < TRACE_KEY_BUCKETS
    assert bucket_for(trace_id) == bucket


def test_buckets_spread_over_all_keys() -> None:
    buckets = {bucket_for(f"{n:032x}") for n in range(2_000)}
    assert buckets == set(range(TRACE_KEY_BUCKETS))


@pytest.mark.parametrize(("bucket", "key"), [(0, b"tb-0"), (7, b"tb-7"), (31, b"tb-31")])
def test_bucket_key_format(bucket: int, key: bytes) -> None:
    assert bucket_key(bucket) == key


@pytest.mark.parametrize("bucket", [-1, TRACE_KEY_BUCKETS])
def test_bucket_key_rejects_out_of_range(bucket: int) -> None:
    with pytest.raises(ValueError, match=str(bucket)):
        bucket_key(bucket)


@pytest.mark.parametrize(
    ("max_events", "max_bytes", "max_age_s"), [(0, 1000, 1.0), (1, 10, 1.0), (1, 1000, -1.0)]
)
def test_batcher_rejects_bad_limits(max_events: int, max_bytes: int, max_age_s: float) -> None:
    with pytest.raises(ValueError, match="got"):
        Batcher(max_events, max_bytes, max_age_s)


def _event(n: int, pad: int = 10) -> bytes:
    return orjson.dumps({"n": n, "pad": "x" * pad})


def test_batch_closes_at_max_events() -> None:
    batcher = Batcher(max_events=3, max_bytes=10_000, max_age_s=60.0)
    ready = [b for n in range(7) for b in batcher.add(0, _event(n), now=0.0)]
    assert [len(b.events) for b in ready] == [3, 3]
    assert batcher.pending_events == 1


@pytest.mark.parametrize("pad", [10, 300, 1_000])
def test_encoded_batch_never_exceeds_max_bytes(pad: int) -> None:
    max_bytes = 4_000
    batcher = Batcher(max_events=10_000, max_bytes=max_bytes, max_age_s=60.0)
    ready = [b for n in range(200) for b in batcher.add(5, _event(n, pad), now=0.0)]
    ready += batcher.drain()
    encoded = [encode_batch_raw(b.events, sent_at_ms=2**41) for b in ready]
    assert all(len(value) <= max_bytes for value in encoded)
    numbers = [e["n"] for value in encoded for e in split_record(value).events]  # type: ignore[union-attr]
    assert numbers == list(range(200))  # arrival order kept, nothing lost


def test_oversize_event_goes_alone() -> None:
    batcher = Batcher(max_events=100, max_bytes=500, max_age_s=60.0)
    assert batcher.add(1, _event(0), now=0.0) == []
    ready = batcher.add(1, _event(1, pad=2_000), now=0.0)
    assert [len(b.events) for b in ready] == [1, 1]
    assert batcher.pending_events == 0


def test_buckets_batch_separately() -> None:
    batcher = Batcher(max_events=2, max_bytes=10_000, max_age_s=60.0)
    assert batcher.add(1, _event(0), now=0.0) == []
    assert batcher.add(2, _event(1), now=0.0) == []
    (ready,) = batcher.add(1, _event(2), now=0.0)
    assert ready.bucket == 1
    assert [orjson.loads(e)["n"] for e in ready.events] == [0, 2]


def test_due_returns_only_old_batches() -> None:
    batcher = Batcher(max_events=100, max_bytes=10_000, max_age_s=1.0)
    batcher.add(1, _event(0), now=10.0)
    batcher.add(2, _event(1), now=10.5)
    assert batcher.next_deadline() == 11.0
    assert batcher.due(now=10.9) == []
    assert [b.bucket for b in batcher.due(now=11.0)] == [1]
    assert batcher.next_deadline() == 11.5
    assert [b.bucket for b in batcher.drain()] == [2]
    assert batcher.next_deadline() is None


@pytest.mark.parametrize(
    "sizes", [[1], [10, 2_000, 3], [899_000], [0, 0, 0]], ids=["one", "mixed", "large", "empty"]
)
def test_a_batch_releases_exactly_what_its_events_reserved(sizes: list[int]) -> None:
    payloads = [b"x" * n for n in sizes]
    batcher = Batcher(max_events=len(payloads), max_bytes=900_000, max_age_s=60.0)
    batches = [b for p in payloads for b in batcher.add(3, p, now=0.0)]
    assert sum(b.held_bytes for b in batches) == sum(held_bytes(p) for p in payloads)
