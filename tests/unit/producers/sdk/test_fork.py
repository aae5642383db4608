"""After os.fork() the child gets its own queue, thread and producer; the parent is unaffected."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from producers.sdk import Publisher
from tests.unit.producers.sdk.conftest import all_checked, event

CHILD_TIMEOUT_S = 30.0


def _wait_exit_code(pid: int) -> int:
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"forked child {pid} did not exit within {CHILD_TIMEOUT_S} s")


def _child_checks(publisher: Publisher) -> int:
    """Runs in the child; the exit code says which check failed."""
    if publisher.stats.emitted != 0:
        return 3  # the parent's counts leaked into the child
    if not publisher.emit(event()):
        return 4
    publisher.close(timeout=0.3)
    stats = publisher.stats
    if (stats.emitted, stats.delivery_failed) != (1, 1):
        return 5  # the parent's pending events were re-sent, or the child's was not settled
    return 0


def test_fork_child_starts_fresh_and_parent_is_unaffected(
    make_publisher: Callable[..., Publisher],
) -> None:
    publisher = make_publisher()
    for _ in range(5):
        assert publisher.emit(event())
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child process
        code = 2
        try:
            code = _child_checks(publisher)
        finally:
            os._exit(code)
    assert _wait_exit_code(pid) == 0
    assert all_checked(publisher)
    assert publisher.stats.emitted == 5
    assert publisher.emit(event())
    assert all_checked(publisher)
    assert publisher.stats.emitted == 6
    assert publisher.flush(timeout=0.1) is False  # still pending: broker down, nothing lost yet
