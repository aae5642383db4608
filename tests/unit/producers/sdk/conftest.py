"""Helpers for SDK unit tests: a bootstrap address where no broker listens, and waiting until the
SDK's thread has checked everything ``emit`` queued."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from llmwatch.broker import free_port
from producers.sdk import Publisher

QUIET: dict[str, Any] = {"log_level": 0}  # librdkafka: no "connection refused" noise


@pytest.fixture()
def closed_bootstrap() -> str:
    """A loopback address with nothing listening (the broker is down)."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture()
def make_publisher(closed_bootstrap: str) -> Iterator[Callable[..., Publisher]]:
    made: list[Publisher] = []

    def make(**kwargs: Any) -> Publisher:
        kwargs.setdefault("producer_config", QUIET)
        publisher = Publisher(closed_bootstrap, f"t-{uuid.uuid4().hex[:8]}", **kwargs)
        made.append(publisher)
        return publisher

    yield make
    for publisher in made:
        publisher.close(timeout=0.1)


def event(**extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"start_time": now, "end_time": now, "service": "unit", **extra}


def wait_until(predicate: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def all_checked(publisher: Publisher, timeout_s: float = 15.0) -> bool:
    """Wait until the SDK's thread has checked (accepted or dropped) every event emit queued."""
    return wait_until(lambda: publisher.stats.queued == 0, timeout_s)
