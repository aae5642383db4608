"""Fixtures for the integration tests (helpers live in ``tests.integration.pipeline_harness``).

- ``layout`` / ``client``: the sink tests' topics on the session broker (created) and a chdb client
  with the migrations applied in database :data:`SINK_DB`. Modules that need others define their own.
- ``processes``: a :class:`ProcessGroup` for ``llmwatch worker`` / ``llmwatch sink`` subprocesses. If
  the test fails, the tail of each process log is added to the failure report; at teardown every
  process still running is stopped (SIGTERM, then SIGKILL after the grace period).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from sinks.migrate import apply_migrations
from streams.admin import ensure_topics
from streams.topics import TopicLayout
from tests.integration.pipeline_harness import ProcessGroup, TopicWatcher

__all__ = ["SINK_DB", "client", "layout", "processes", "watcher"]

SINK_DB: Final = "sink_it"

GROUP: pytest.StashKey[ProcessGroup] = pytest.StashKey()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the process log tails to a failed test's report."""
    report = yield
    group = item.stash.get(GROUP, None)
    if report.failed and group is not None:
        report.sections.append(("llmwatch process logs", group.tails()))
    return report


@pytest.fixture()
def processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProcessGroup]:
    group = ProcessGroup(tmp_path / "logs")
    request.node.stash[GROUP] = group
    try:
        yield group
    finally:
        group.stop_all()


@pytest.fixture()
def watcher(settings: Any) -> Iterator[TopicWatcher]:
    """Reads the worker's output topics of the module's ``settings`` (each module defines it)."""
    watching = TopicWatcher(settings.bootstrap, settings.layout)
    try:
        yield watching
    finally:
        watching.close()


@pytest.fixture()
def layout(broker: Any, topic_prefix: str) -> TopicLayout:
    layout = TopicLayout(prefix=topic_prefix)
    ensure_topics(broker.bootstrap, layout.specs())
    return layout


@pytest.fixture()
def client(ch_client: Any) -> Any:
    apply_migrations(ch_client, SINK_DB)
    return ch_client
