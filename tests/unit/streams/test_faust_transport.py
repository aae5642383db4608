"""The worker's transport is Faust's aiokafka one with a short fetch wait (freshness on Tansu)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import faust
from faust.transport import by_url
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport

from streams.app import PRODUCER_LINGER_S, PRODUCER_MAX_BATCH_BYTES, WorkerConfig, create_app
from streams.faust_transport import FETCH_MAX_WAIT_MS, SCHEME, Transport
from streams.topics import TopicLayout


def test_the_scheme_selects_the_transport() -> None:
    transport = by_url(f"{SCHEME}://127.0.0.1:9092")
    assert transport is Transport and issubclass(transport, AIOKafkaTransport)


def test_the_worker_consumer_waits_at_most_the_short_fetch_wait(tmp_path: Path) -> None:
    async def build() -> int:
        app = create_app(WorkerConfig("127.0.0.1:9", TopicLayout(prefix="t"), tmp_path))
        assert isinstance(app, faust.App) and isinstance(app.transport, Transport)
        thread = app.consumer._thread  # built, not started: no connection is made
        consumer = thread._create_worker_consumer(app.transport)
        return int(consumer._fetch_max_wait_ms)

    assert asyncio.run(build()) == FETCH_MAX_WAIT_MS < 1_500


def test_the_worker_producer_lingers_briefly_to_send_fewer_requests(tmp_path: Path) -> None:
    async def build() -> tuple[int, int]:
        app = create_app(WorkerConfig("127.0.0.1:9", TopicLayout(prefix="t"), tmp_path))
        producer = app.producer  # built, not started: no connection is made
        return int(producer.linger_ms), int(producer.max_batch_size)

    linger_ms, max_batch = asyncio.run(build())
    assert linger_ms == PRODUCER_LINGER_S * 1000 > 0  # Faust's default is 0: a request per send
    assert max_batch == PRODUCER_MAX_BATCH_BYTES > 16_384  # aiokafka's default holds one record
