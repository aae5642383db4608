"""The worker's Kafka transport: Faust's aiokafka transport with a short consumer fetch wait.

Faust builds the worker's aiokafka consumer with ``fetch_max_wait_ms=1500`` and no setting to change
it. A broker answers a fetch as soon as data arrives, but one that holds an empty fetch for the whole
wait (the embedded Tansu broker does: measured here, a record produced during an empty fetch waits for
the fetch to time out) adds up to that wait to every hop, which alone put the pipeline's freshness p99
over 1 s. This transport caps the wait at :data:`FETCH_MAX_WAIT_MS`; on Apache Kafka, which wakes
fetches on new data, it only costs a few more empty fetches per idle second.

Use it with a broker URL of scheme :data:`SCHEME` (``streams.app`` does). Registering adds one alias to
Faust's transport registry; it changes nothing else in Faust or aiokafka.
"""

from __future__ import annotations

from typing import Any, Final

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers.aiokafka import (
    AIOKafkaConsumerThread,
)
from faust.transport.drivers.aiokafka import (
    Consumer as AIOKafkaConsumer,
)
from faust.transport.drivers.aiokafka import (
    Transport as AIOKafkaTransport,
)

__all__ = ["FETCH_MAX_WAIT_MS", "SCHEME", "Transport"]

FETCH_MAX_WAIT_MS: Final = 100
SCHEME: Final = "llmwatch-kafka"


class _ConsumerThread(AIOKafkaConsumerThread):  # type: ignore[misc]
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read once, when the consumer starts its fetcher (aiokafka has no public setter).
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(AIOKafkaConsumer):  # type: ignore[misc]
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(AIOKafkaTransport):  # type: ignore[misc]
    Consumer = _Consumer


TRANSPORTS.aliases.setdefault(SCHEME, f"{__name__}:Transport")
