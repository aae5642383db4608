"""``connect_retrying``: the sink's start-up wait for ClickHouse, on a real refused port."""

from __future__ import annotations

import threading
import time

import pytest

from llmwatch.broker import free_port
from sinks.clickhouse import RETRY_INITIAL_S, ClickHouseConnectError, connect_retrying


def _refusing_dsn() -> str:
    return f"http://llm:hunter2@127.0.0.1:{free_port()}/llmwatch"  # nothing listens there


def test_gives_up_after_its_patience_with_the_last_error() -> None:
    started = time.monotonic()
    with pytest.raises(ClickHouseConnectError, match=r"127\.0\.0\.1") as info:
        connect_retrying(_refusing_dsn(), threading.Event(), patience_s=2.0)
    elapsed = time.monotonic() - started
    assert 2.0 <= elapsed < 10.0  # it retried for its patience, no longer
    assert "hunter2" not in str(info.value)


def test_returns_none_soon_after_stop_is_set() -> None:
    stop = threading.Event()
    threading.Timer(3 * RETRY_INITIAL_S, stop.set).start()
    started = time.monotonic()
    assert connect_retrying(_refusing_dsn(), stop, patience_s=60.0) is None
    assert time.monotonic() - started < 10.0


@pytest.mark.parametrize("patience_s", [-1.0, -0.001])
def test_negative_patience_is_refused(patience_s: float) -> None:
    with pytest.raises(ValueError, match=f"got {patience_s!r}"):
        connect_retrying(_refusing_dsn(), threading.Event(), patience_s=patience_s)


def test_malformed_dsn_fails_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(ValueError, match="scheme must be one of"):
        connect_retrying("mysql://u@host/db", threading.Event(), patience_s=60.0)
    assert time.monotonic() - started < 1.0
