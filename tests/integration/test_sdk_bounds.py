"""The SDK's byte limit against the real (Tansu) broker: bounded memory while the broker keeps up or not.

The broker-down variant is in ``tests/unit/producers/sdk/test_byte_limit.py``; this one shows the bound
holds while records are really delivered, and that the largest event ``emit`` accepts is delivered.
"""

from __future__ import annotations

from typing import Any, Final

import pytest

from llmwatch.broker import TansuBroker
from producers.events import TextCapture
from producers.sdk import Publisher
from producers.sdk.encoding import MAX_EVENT_BYTES, Encoded, EventDefaults, encode_event
from streams.admin import ensure_topics
from streams.topics import TopicLayout
from tests.unit.producers.sdk.conftest import QUIET, all_checked, event
from tests.unit.producers.sdk.flood import flood, large_text
from tests.unit.producers.sdk.test_byte_limit import (
    ENCODE_SLACK,
    FLOOD_EVENTS,
    LIBRDKAFKA_BUFFER_KBYTES,
    MAX_EMIT_S,
    P99_EMIT_S,
    QUEUE_MAX_BYTES,
    RSS_SLACK,
)

FLUSH_TIMEOUT_S: Final = 60.0


@pytest.fixture()
def events_topic(broker: TansuBroker, topic_prefix: str) -> str:
    layout = TopicLayout(prefix=topic_prefix)
    ensure_topics(broker.bootstrap, layout.specs())
    return layout.events


def _publisher(broker: TansuBroker, topic: str, **kwargs: Any) -> Publisher:
    return Publisher(broker.bootstrap, topic, service="itest", **kwargs)


def test_large_events_stay_under_the_byte_limit_with_the_broker_up(
    broker: TansuBroker, events_topic: str
) -> None:
    publisher = _publisher(
        broker,
        events_topic,
        text_capture="store",
        queue_max_bytes=QUEUE_MAX_BYTES,
        producer_config={**QUIET, "queue.buffering.max.kbytes": LIBRDKAFKA_BUFFER_KBYTES},
    )
    try:
        result = flood(publisher, FLOOD_EVENTS, large_text())
        assert all_checked(publisher, timeout_s=FLUSH_TIMEOUT_S)  # the thread checks the byte limit
        assert publisher.flush(FLUSH_TIMEOUT_S) is True
    finally:
        publisher.close(timeout=1.0)

    assert result.traced_peak_bytes < QUEUE_MAX_BYTES + ENCODE_SLACK
    rss_bound = QUEUE_MAX_BYTES + LIBRDKAFKA_BUFFER_KBYTES * 1024 + RSS_SLACK
    assert result.rss_growth_bytes < rss_bound
    assert result.p99_emit_s < P99_EMIT_S
    assert result.max_emit_s < MAX_EMIT_S
    assert result.stats.held_bytes <= QUEUE_MAX_BYTES
    stats = publisher.stats
    assert stats.emitted + stats.rejected == FLOOD_EVENTS + 1  # + flood's warm-up event
    assert stats.rejected == stats.dropped_queue_bytes  # no other kind of drop
    assert (stats.delivered, stats.lost) == (stats.emitted, 0)  # what was accepted arrived
    assert (stats.held_events, stats.held_bytes) == (0, 0)


def test_the_largest_event_emit_accepts_is_delivered(
    broker: TansuBroker, events_topic: str
) -> None:
    publisher = _publisher(broker, events_topic, producer_config=QUIET)
    defaults = EventDefaults(
        service="itest", environment="production", text_capture=TextCapture.OFF
    )
    data = event(event_id="largest", service="itest", environment="production")
    base = encode_event({**data, "metadata": {"pad": ""}}, defaults)
    assert isinstance(base, Encoded)
    largest = {**data, "metadata": {"pad": "x" * (MAX_EVENT_BYTES - len(base.payload))}}
    try:
        assert publisher.emit(largest) is True
        assert publisher.flush(FLUSH_TIMEOUT_S) is True
    finally:
        publisher.close(timeout=1.0)
    assert (publisher.stats.delivered, publisher.stats.lost) == (1, 0)
