"""The SDK's byte limit with the broker down: memory stays bounded, drops are counted, emit never blocks.

The byte limit is checked by the SDK's thread when it accepts an event, so these tests wait until it
has checked everything ``emit`` queued (``all_checked``) before they count."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Callable
from typing import Any, Final

import pytest

from producers.events import TextCapture
from producers.sdk import Publisher
from producers.sdk.batching import ENVELOPE_OVERHEAD_BYTES, held_bytes
from producers.sdk.config import MAX_MESSAGE_BYTES
from producers.sdk.encoding import MAX_EVENT_BYTES, Encoded, EventDefaults, encode_event
from producers.sdk.stats import Counters
from tests.unit.producers.sdk.conftest import QUIET, all_checked, event, wait_until
from tests.unit.producers.sdk.flood import flood, large_text

MakePublisher = Callable[..., Publisher]

MIB: Final = 1024 * 1024
FLOOD_EVENTS: Final = 10_000
QUEUE_MAX_BYTES: Final = 16 * MIB
# librdkafka's own buffer, kept small here so that the RSS bound below is about the SDK.
LIBRDKAFKA_BUFFER_KBYTES: Final = 4 * 1024
# Python allocations beyond what the SDK holds: encoding one 1 MB event (orjson rounds its buffer up to
# 8 MiB before the SDK trims it) and one batch envelope, both on the SDK's thread.
ENCODE_SLACK: Final = 16 * MIB
# RSS also carries the allocator's free lists and librdkafka's buffer; measured growth is ~25 MiB.
RSS_SLACK: Final = 48 * MIB
# "Never blocks": blocking would mean waiting for the broker, for seconds (buffer_full_timeout_s is 2 s
# here, message.timeout.ms 30 s). An emit takes ~1 us whatever the event's size (the SDK's thread
# encodes). Every emit must stay under 1 s, and 99% under 50 ms: a loaded 2-core machine can
# deschedule a thread for a few hundred ms, and the SDK's thread holds the GIL while it encodes 1 MB.
MAX_EMIT_S: Final = 1.0
P99_EMIT_S: Final = 0.05
DEFAULTS: Final = EventDefaults(
    service="unit", environment="production", text_capture=TextCapture.STORE
)


def test_large_events_stay_under_the_byte_limit_and_emit_never_blocks(
    make_publisher: MakePublisher, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = make_publisher(
        text_capture="store",
        queue_max_bytes=QUEUE_MAX_BYTES,
        buffer_full_timeout_s=2.0,
        producer_config={**QUIET, "queue.buffering.max.kbytes": LIBRDKAFKA_BUFFER_KBYTES},
    )
    result = flood(publisher, FLOOD_EVENTS, large_text())

    assert result.traced_peak_bytes < QUEUE_MAX_BYTES + ENCODE_SLACK
    rss_bound = QUEUE_MAX_BYTES + LIBRDKAFKA_BUFFER_KBYTES * 1024 + RSS_SLACK
    assert result.rss_growth_bytes < rss_bound
    assert result.p99_emit_s < P99_EMIT_S
    assert result.max_emit_s < MAX_EMIT_S
    assert result.stats.held_bytes <= QUEUE_MAX_BYTES
    assert all_checked(publisher, timeout_s=60.0)  # the thread encodes 1 MB events at ~0.2 ms each
    stats = publisher.stats
    assert stats.held_bytes <= QUEUE_MAX_BYTES
    assert stats.dropped_queue_bytes > FLOOD_EVENTS // 2
    assert stats.emitted + stats.rejected == FLOOD_EVENTS + 1  # + flood's warm-up event
    assert wait_until(lambda: "local queue over its byte limit" in caplog.text)

    assert publisher.close(timeout=0.2) is False
    settled = publisher.stats
    assert (settled.held_events, settled.held_bytes) == (0, 0)  # all released: sent or dropped
    assert settled.emitted == settled.delivered + settled.lost


def test_byte_drops_count_exactly_while_the_thread_is_stuck(make_publisher: MakePublisher) -> None:
    text = large_text(100_000)
    encoded = _encoded(event(input_text=text))
    assert encoded.text is not None  # the text travels in its own record, held with the event
    size = held_bytes(encoded.payload) + held_bytes(encoded.text)
    publisher = make_publisher(
        text_capture="store",
        queue_max_bytes=10 * size,
        batch_max_bytes=size,
        buffer_full_timeout_s=30.0,  # the thread retries its first record while we emit
        flush_interval_s=0.0,
        producer_config={**QUIET, "queue.buffering.max.messages": 1},
    )
    assert all(publisher.emit(event(input_text=text)) for _ in range(100))  # queued, not checked
    assert all_checked(publisher)
    stats = publisher.stats
    assert stats.emitted <= 10 + 1  # + the record librdkafka holds
    assert stats.dropped_queue_bytes == 100 - stats.emitted
    assert stats.held_bytes <= 10 * size


def test_encoded_payloads_hold_only_their_own_size() -> None:
    # orjson over-allocates its output (a ~200-byte event pins 4 KiB); the SDK keeps a trimmed copy.
    events = [event(event_id=f"e{n}") for n in range(1_000)]
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        payloads = [_encoded(e).payload for e in events]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held - before < sum(held_bytes(p) for p in payloads)


@pytest.mark.parametrize(
    "size",
    [
        MAX_EVENT_BYTES - 1,
        MAX_EVENT_BYTES,
        MAX_EVENT_BYTES + 1,
        MAX_MESSAGE_BYTES
        - ENVELOPE_OVERHEAD_BYTES,  # the limit before librdkafka's framing counted
    ],
    ids=["under-limit", "at-limit", "over-limit", "old-limit"],
)
def test_an_event_fits_one_record_or_is_dropped_as_invalid(
    make_publisher: MakePublisher, size: int
) -> None:
    publisher = make_publisher(
        service=DEFAULTS.service,
        environment=DEFAULTS.environment,
        text_capture=DEFAULTS.text_capture,
    )
    assert publisher.emit(_event_of_size(size)) is True  # queued; the thread checks the size
    assert all_checked(publisher)
    accepted = publisher.stats.emitted == 1
    assert accepted is (size <= MAX_EVENT_BYTES)
    if accepted:  # librdkafka took the record: nothing fails later for its size
        assert wait_until(lambda: publisher.stats.batches_sent + publisher.stats.lost >= 1)
        assert (publisher.stats.batches_sent, publisher.stats.delivery_failed) == (1, 0)
    else:
        assert publisher.stats.dropped_invalid == 1
        assert publisher.stats.emitted == 0


@pytest.mark.parametrize(
    ("max_events", "max_bytes", "held"),
    [(10**9, 10_000, 10_000 // 7), (100, 10**9, 100)],
    ids=["bytes-bind", "count-binds"],
)
def test_accept_never_overshoots_under_concurrent_emits(
    max_events: int, max_bytes: int, held: int
) -> None:
    counters = Counters()
    size, threads, tries = 7, 8, 5_000
    start = threading.Barrier(threads)

    def hammer() -> None:
        start.wait()
        for _ in range(tries):
            counters.accept(size, max_events, max_bytes)

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stats = counters.snapshot()
    assert (stats.emitted, stats.held_events, stats.held_bytes) == (held, held, held * size)
    assert stats.rejected == threads * tries - held


def _encoded(data: dict[str, Any]) -> Encoded:
    encoded = encode_event(data, DEFAULTS)
    assert isinstance(encoded, Encoded), encoded
    return encoded


def _event_of_size(size: int) -> dict[str, Any]:
    """An event whose encoded JSON is exactly ``size`` bytes (padding in one metadata value)."""
    data = event(event_id="oversize-probe", environment=DEFAULTS.environment)
    base = len(_encoded({**data, "metadata": {"pad": ""}}).payload)
    return {**data, "metadata": {"pad": "x" * (size - base)}}
