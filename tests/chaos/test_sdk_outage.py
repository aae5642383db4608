"""The SDK after a broker outage longer than its delivery timeout (``message.timeout.ms``).

Events that time out during the outage are dropped and counted; that is the SDK's contract. But once the
broker is back, new events must be delivered again. Seen in the full chaos run (docs/reliability.md):
after such an outage the idempotent producer bumps its epoch, Tansu answers PRODUCER_FENCED, and every
later event of that Publisher fails, for good.
"""

from __future__ import annotations

import time
from typing import Final

import pytest

from producers.sdk import Publisher
from streams.admin import ensure_topics
from streams.topics import TopicLayout
from tests.chaos.rig import ProxiedBroker
from tests.integration.kafka_io import QUIET
from tests.integration.pipeline_harness import simulated_events

MESSAGE_TIMEOUT_MS: Final = 3_000
RATE_PER_S: Final = 100
# librdkafka's reconnect backoff tops out at 10 s: after that a client has found the broker again.
RECONNECT_S: Final = 12.0
AFTER: Final = 100
FLUSH_TIMEOUT_S: Final = 20.0


def _emit_for(publisher: Publisher, seconds: float, seed: int) -> None:
    for event in simulated_events(int(seconds * RATE_PER_S), seed):
        publisher.emit(event)
        time.sleep(1.0 / RATE_PER_S)


@pytest.mark.slow
@pytest.mark.parametrize("outage_timeouts", [2.0])
def test_events_after_an_outage_longer_than_the_delivery_timeout_are_delivered(
    outage_timeouts: float,
) -> None:
    layout = TopicLayout(prefix="sdkoutage")
    with ProxiedBroker() as broker:
        ensure_topics(broker.bootstrap, layout.specs())
        config = {"message.timeout.ms": MESSAGE_TIMEOUT_MS, **QUIET}
        with Publisher(broker.bootstrap, layout.events, producer_config=config) as publisher:
            _emit_for(publisher, 1.0, seed=1)
            assert publisher.flush(FLUSH_TIMEOUT_S)
            broker.proxy.cut()
            _emit_for(publisher, outage_timeouts * MESSAGE_TIMEOUT_MS / 1000, seed=2)
            broker.proxy.restore()
            time.sleep(RECONNECT_S)
            timed_out = publisher.stats.lost
            assert timed_out > 0  # the outage outlasted the delivery timeout
            before = publisher.stats
            assert sum(publisher.emit(e) for e in simulated_events(AFTER, seed=3)) == AFTER
            publisher.flush(FLUSH_TIMEOUT_S)
            after = publisher.stats
        closed = publisher.stats
    print(f"\nbefore the new events: {before}\nafter: {after}\nclosed: {closed}")
    assert (after.delivered - before.delivered, after.lost - before.lost) == (AFTER, 0)
    assert closed.producer_restarts >= 1  # the outage did fence the first producer
    # Every accepted event is settled once the publisher is closed: none left uncounted.
    assert closed.in_flight == 0, closed
