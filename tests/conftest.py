"""Shared fixtures. Test tiers live in directories; the ``integration`` marker is derived from them.

- ``broker``: one real Tansu broker on loopback for the whole session (integration tests).
- ``chdb_dsn`` / ``ch_client``: a fresh chdb folder per test. chdb allows ONE data folder per process at a
  time, so ``ch_client`` closes its client at teardown; never hold two chdb clients at once.
- ``clock`` / ``now_ms``: one reading of the wall clock per test (tests/clock.py). Test times derive from
  it, never from fixed dates, so rows stay inside the tables' TTLs and the worker's event-time bounds.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clock import Clock

os.environ.setdefault("TZ", "UTC")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def broker() -> Iterator[Any]:
    from llmwatch.broker import TansuBroker

    with TansuBroker() as running:
        yield running


@pytest.fixture()
def topic_prefix() -> str:
    """A unique topic prefix so tests sharing the session broker never see each other's records."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture()
def chdb_dsn(tmp_path: Path) -> str:
    return f"chdb://{tmp_path / 'clickhouse'}"


@pytest.fixture()
def ch_client(chdb_dsn: str) -> Iterator[Any]:
    import clickhouse_connect

    client = clickhouse_connect.get_client(dsn=chdb_dsn)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture()
def clock() -> Clock:
    """The wall clock read once for this test: derive every event time from it."""
    return Clock.read()


@pytest.fixture()
def now_ms(clock: Clock) -> int:
    return clock.now_ms
