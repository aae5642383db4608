"""Make embedded ClickHouse unavailable: another process opens (and so locks) a chdb data folder.

chdb lets one process open a data folder at a time; a second one fails with "Cannot lock file
.../status". :class:`FolderLock` starts ``python -m tests.chaos.folder_lock <dsn>``, which opens the
folder, prints :data:`LOCKED` and holds it until its standard input closes (or it is killed).

What can block: :meth:`FolderLock.acquire` waits at most :data:`ACQUIRE_TIMEOUT_S` for the lock;
:meth:`FolderLock.release` waits at most :data:`RELEASE_TIMEOUT_S` for the process to exit, then kills it.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from types import TracebackType
from typing import Final

__all__ = ["LOCKED", "FolderLock"]

LOCKED: Final = "locked"
ACQUIRE_TIMEOUT_S: Final = 60.0
RELEASE_TIMEOUT_S: Final = 15.0


class FolderLock:
    """Holds the chdb folder of ``dsn`` in a child process between acquire() and release()."""

    def __init__(self, dsn: str) -> None:
        if not dsn.startswith("chdb:///"):
            raise ValueError(f"only a chdb folder can be locked, got {dsn!r}")
        self.dsn = dsn
        self._proc: subprocess.Popen[str] | None = None

    def acquire(self) -> FolderLock:
        proc = subprocess.Popen(
            [sys.executable, "-m", __name__, self.dsn],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self._proc = proc
        try:
            line = _read_line(proc, ACQUIRE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            line = ""
        if line.strip() != LOCKED:
            self.release()
            raise RuntimeError(f"could not lock {self.dsn!r}: the locker said {line!r}")
        return self

    def release(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(RELEASE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(RELEASE_TIMEOUT_S)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    """The child's first stdout line, or TimeoutExpired (the child is then killed by the caller)."""
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            raise subprocess.TimeoutExpired(proc.args, timeout_s)
    return proc.stdout.readline()


def _hold(dsn: str) -> int:
    import clickhouse_connect

    client = clickhouse_connect.get_client(dsn=dsn)
    try:
        client.command("SELECT 1")
        print(LOCKED, flush=True)
        sys.stdin.read()  # until the parent closes our stdin, or dies
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(_hold(sys.argv[1]))
