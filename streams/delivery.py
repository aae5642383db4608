"""Publish a source record's outputs, and ack the record only once the broker holds every one of them.

The worker's at-least-once guarantee rests here. :class:`AckWindow` takes each source record with the
output records made from it (``submit``), sends them at once, and acks source records strictly in the
order they were submitted, each only after every one of its outputs was acknowledged by the broker.
Faust commits only acked offsets (and never past an unacked one), so a committed offset never passes a
record whose outputs might be missing: a crash at any point re-reads such a record, and the replay's
outputs are identical (``streams.ingest.pipeline`` is deterministic), which the sink's ReplacingMergeTree
tables collapse.

Failures:
- Retriable (broker unreachable, leader moved, topic missing, request timed out, or no acknowledgement
  within ``ack_timeout_s``, which also covers a producer that hangs instead of failing): the failed outputs
  are sent again after a backoff that doubles from ``retry_initial_s`` to ``retry_max_s``, for as long
  as it takes, with a warning per attempt. Meanwhile no later record is acked and ``submit`` blocks
  once ``max_in_flight`` records wait: the worker stalls (consumer lag grows, which the pipeline health
  dashboard shows) instead of losing or skipping records.
- Not retriable (a record over the broker's size limit, authorization, an invalid topic, any error of
  unknown kind): :class:`DeliveryFailed` is raised naming the topic, the size and the cause. The caller
  must stop the worker without acking; the record is re-read after the problem is fixed.

What can block: ``submit`` and ``flush``, on the broker's acknowledgements and on retries, as above.
Pipelining: up to ``max_in_flight`` records' outputs are in flight at once, so the wait for one
record's acks overlaps the processing of the next ones. Not thread-safe (one asyncio task).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "AckTimeout",
    "AckWindow",
    "DeliveryFailed",
    "OutputRecord",
    "is_retriable",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_IN_FLIGHT: Final = 64
DEFAULT_RETRY_INITIAL_S: Final = 0.2
DEFAULT_RETRY_MAX_S: Final = 10.0
# How long an output may wait for the broker's acknowledgement before it counts as failed and is sent
# again (a resend may duplicate it downstream, which the sink's tables collapse).
DEFAULT_ACK_TIMEOUT_S: Final = 30.0
# Error class names that mean "try again later" even where the client does not flag them retriable.
_RETRIABLE_NAMES: Final = frozenset(
    {"KafkaTimeoutError", "KafkaConnectionError", "NodeNotReadyError", "RequestTimedOutError"}
)

Token = TypeVar("Token")


@dataclass(frozen=True, slots=True)
class OutputRecord:
    topic: str
    key: bytes | None
    value: bytes


class AckTimeout(TimeoutError):
    """The broker did not acknowledge an output record in time (retriable: it is sent again)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"no acknowledgement within {timeout_s:g} s")


class DeliveryFailed(RuntimeError):
    """An output record cannot be delivered by retrying: the worker must stop without acking."""


def is_retriable(exc: BaseException) -> bool:
    """True for transient broker trouble; aiokafka marks most of it with ``retriable``."""
    if isinstance(exc, ConnectionError | asyncio.TimeoutError):
        return True
    return bool(getattr(exc, "retriable", False)) or type(exc).__name__ in _RETRIABLE_NAMES


# Sends one record; returns (after it is queued) an awaitable that settles with the broker's ack.
SendFn = Callable[[OutputRecord], Awaitable[Awaitable[Any]]]
AckFn = Callable[[Token], Awaitable[Any]]


@dataclass(slots=True)
class _Pending(Generic[Token]):
    token: Token
    outputs: list[OutputRecord]
    acks: list[asyncio.Future[Any]] = field(default_factory=list)


class AckWindow(Generic[Token]):
    """Sends outputs, waits for their acks, and acks source records in submission order."""

    def __init__(
        self,
        send: SendFn,
        ack: AckFn[Token],
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        retry_initial_s: float = DEFAULT_RETRY_INITIAL_S,
        retry_max_s: float = DEFAULT_RETRY_MAX_S,
        ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight!r}")
        if not 0 < retry_initial_s <= retry_max_s:
            raise ValueError(
                "need 0 < retry_initial_s <= retry_max_s, "
                f"got {retry_initial_s!r} and {retry_max_s!r}"
            )
        self._send = send
        self._ack = ack
        self.max_in_flight = max_in_flight
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        if ack_timeout_s <= 0:
            raise ValueError(f"ack_timeout_s must be > 0, got {ack_timeout_s!r}")
        self.ack_timeout_s = ack_timeout_s
        self._pending: deque[_Pending[Token]] = deque()
        self._draining = asyncio.Lock()
        self.retries = 0  # output records sent again after a retriable failure

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def submit(self, token: Token, outputs: Sequence[OutputRecord]) -> None:
        """Send ``outputs``; ack ``token`` once they are all acknowledged (see the module doc)."""
        item = _Pending(token, list(outputs))
        item.acks = [await self._send_one(output) for output in item.outputs]
        self._pending.append(item)
        await self._drain(self.max_in_flight)

    async def flush(self) -> None:
        """Wait until every submitted record is acked (or raise DeliveryFailed)."""
        await self._drain(0)

    async def ack_settled(self) -> None:
        """Ack the records at the head whose outputs are all acknowledged; never waits for acks.

        Call it on a timer so that the last records before a pause in traffic get acked."""
        await self._drain(None)

    async def _drain(self, keep: int | None) -> None:
        async with self._draining:
            await self._drain_locked(keep)

    async def _drain_locked(self, keep: int | None) -> None:
        while self._pending:
            head = self._pending[0]
            settled = all(f.done() for f in head.acks)
            if not settled and (keep is None or len(self._pending) <= keep):
                return
            await self._settle(head)
            self._pending.popleft()
            await self._ack(head.token)

    async def _send_one(self, output: OutputRecord) -> asyncio.Future[Any]:
        """A future of the broker's ack; a send that fails at once gives a failed future."""
        try:
            return asyncio.ensure_future(await self._send(output))
        except Exception as exc:  # settled like a failed ack, so one path handles both
            return _failed(exc)

    async def _settle(self, item: _Pending[Token]) -> None:
        attempt = 0
        while True:
            await asyncio.wait(item.acks, timeout=self.ack_timeout_s)
            for index, future in enumerate(item.acks):
                if not future.done():  # no answer in time: a retriable failure, sent again
                    future.cancel()
                    item.acks[index] = _failed(AckTimeout(self.ack_timeout_s))
            failed = [i for i, f in enumerate(item.acks) if f.exception() is not None]
            if not failed:
                return
            output = item.outputs[failed[0]]
            exc = item.acks[failed[0]].exception()
            assert exc is not None
            if not is_retriable(exc):
                raise DeliveryFailed(
                    f"cannot deliver a {len(output.value)}-byte record to {output.topic!r}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            delay = min(self.retry_initial_s * 2**attempt, self.retry_max_s)
            attempt += 1
            log.warning(
                "%d output record(s) to %s not acknowledged (%s: %s); sending again in %.1f s",
                len(failed),
                output.topic,
                type(exc).__name__,
                exc,
                delay,
            )
            await asyncio.sleep(delay)
            for index in failed:
                self.retries += 1
                item.acks[index] = await self._send_one(item.outputs[index])


def _failed(exc: BaseException) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future
