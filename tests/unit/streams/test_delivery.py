"""AckWindow: a source record is acked only after the broker acknowledged all its outputs, in order.

The broker side is a stand-in that settles each send's future as the test says; the real Faust
producer against the real broker is exercised by tests/integration/test_worker_delivery.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.delivery import AckWindow, DeliveryFailed, OutputRecord, is_retriable


class FlakyBroker:
    """Settles sends: the first ``failures[topic]`` sends to a topic fail with ``error``."""

    def __init__(self, failures: dict[str, int], error: Exception, *, autoack: bool = True) -> None:
        self.failures = dict(failures)
        self.error = error
        self.autoack = autoack
        self.sent: list[OutputRecord] = []
        self.held: list[asyncio.Future[Any]] = []

    async def send(self, output: OutputRecord) -> asyncio.Future[Any]:
        self.sent.append(output)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.failures.get(output.topic, 0) > 0:
            self.failures[output.topic] -= 1
            future.set_exception(self.error)
        elif self.autoack:
            future.set_result("ok")
        else:
            self.held.append(future)
        return future


def _outputs(n: int) -> list[OutputRecord]:
    return [OutputRecord("calls", b"k", b"v%d" % i) for i in range(n)]


async def test_records_are_acked_in_order_only_once_every_output_is_acknowledged() -> None:
    broker = FlakyBroker({}, RuntimeError(), autoack=False)
    acked: list[int] = []

    async def ack(token: int) -> None:
        acked.append(token)

    window: AckWindow[int] = AckWindow(broker.send, ack, max_in_flight=10)
    await window.submit(1, _outputs(2))
    await window.submit(2, _outputs(1))
    assert acked == [] and window.in_flight == 2
    broker.held[2].set_result("ok")  # record 2's only output: still not before record 1
    await window.ack_settled()
    assert acked == []
    broker.held[0].set_result("ok")
    await window.ack_settled()
    assert acked == []  # record 1 still has an unacknowledged output
    broker.held[1].set_result("ok")
    await window.ack_settled()
    assert acked == [1, 2] and window.in_flight == 0


async def test_retriable_failures_are_sent_again_and_nothing_is_acked_before() -> None:
    from aiokafka.errors import KafkaConnectionError

    broker = FlakyBroker({"calls": 3}, KafkaConnectionError("broker down"))
    acked: list[int] = []

    async def ack(token: int) -> None:
        acked.append(token)

    window: AckWindow[int] = AckWindow(
        broker.send, ack, max_in_flight=1, retry_initial_s=0.01, retry_max_s=0.02
    )
    await window.submit(7, _outputs(1))
    await window.flush()
    assert acked == [7]
    assert len(broker.sent) == 4 and window.retries == 3


async def test_a_failure_retrying_cannot_fix_raises_and_acks_nothing() -> None:
    from aiokafka.errors import MessageSizeTooLargeError

    broker = FlakyBroker({"calls": 1}, MessageSizeTooLargeError())
    acked: list[int] = []

    async def ack(token: int) -> None:
        acked.append(token)

    window: AckWindow[int] = AckWindow(broker.send, ack, max_in_flight=1)
    with pytest.raises(DeliveryFailed, match=r"2-byte record to 'calls': MessageSizeTooLarge"):
        await window.submit(1, _outputs(1))
        await window.flush()
    assert acked == []


async def test_a_send_that_raises_at_once_is_handled_like_a_failed_ack() -> None:
    acked: list[int] = []
    calls = 0

    async def send(output: OutputRecord) -> asyncio.Future[Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("refused")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def ack(token: int) -> None:
        acked.append(token)

    window: AckWindow[int] = AckWindow(send, ack, retry_initial_s=0.01)
    await window.submit(3, _outputs(1))
    await window.flush()
    assert acked == [3] and calls == 2


async def test_submit_waits_once_the_window_is_full() -> None:
    broker = FlakyBroker({}, RuntimeError(), autoack=False)
    acked: list[int] = []

    async def ack(token: int) -> None:
        acked.append(token)

    window: AckWindow[int] = AckWindow(broker.send, ack, max_in_flight=2)
    await window.submit(1, _outputs(1))
    await window.submit(2, _outputs(1))
    third = asyncio.ensure_future(window.submit(3, _outputs(1)))
    await asyncio.sleep(0.05)
    assert not third.done()  # backpressure: the head is not acknowledged yet
    broker.held[0].set_result("ok")
    await asyncio.wait_for(third, 1)
    assert acked == [1]


@pytest.mark.parametrize(
    ("error", "retriable"),
    [
        (ConnectionRefusedError("x"), True),
        (TimeoutError(), True),
        (ValueError("bad"), False),
    ],
)
def test_unknown_errors_are_not_retried_forever(error: Exception, retriable: bool) -> None:
    assert is_retriable(error) is retriable


@pytest.mark.parametrize(
    ("max_in_flight", "initial", "maximum"), [(0, 0.1, 1.0), (1, 0.0, 1.0), (1, 2.0, 1.0)]
)
def test_bad_settings_name_the_value(max_in_flight: int, initial: float, maximum: float) -> None:
    async def noop(_: Any) -> Any:
        return None

    with pytest.raises(ValueError, match="got"):
        AckWindow(
            noop, noop, max_in_flight=max_in_flight, retry_initial_s=initial, retry_max_s=maximum
        )


async def test_an_output_never_acknowledged_is_sent_again_after_the_ack_timeout() -> None:
    broker = FlakyBroker({}, RuntimeError(), autoack=False)
    acked: list[int] = []

    async def ack(token: int) -> None:
        acked.append(token)

    window: AckWindow[int] = AckWindow(
        broker.send, ack, ack_timeout_s=0.05, retry_initial_s=0.01, retry_max_s=0.01
    )
    await window.submit(5, _outputs(1))
    flushing = asyncio.ensure_future(window.flush())
    while len(broker.held) < 2:  # the first send hangs; after the timeout it is sent again
        await asyncio.sleep(0.01)
    assert acked == []
    broker.held[1].set_result("ok")
    await asyncio.wait_for(flushing, 1)
    assert acked == [5] and window.retries == 1 and broker.held[0].cancelled()
