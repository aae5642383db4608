"""The pipeline under chaos: Tansu behind a :class:`~tests.chaos.proxy.TcpProxy`, a supervised
``llmwatch worker`` and ``llmwatch sink`` (subprocesses, the sink on its own chdb folder).

- Tansu listens on one loopback port and advertises the proxy's port, so every client (SDK, worker,
  sink, the watcher) reaches the broker only through the proxy, also after reading metadata.
- :class:`Supervisor` extends the integration tests' :class:`ProcessGroup`: a process that exits
  without being told to is started again after :data:`RESTART_BACKOFF_S` and counted (as compose's
  ``restart: unless-stopped`` would do); the counts go into the chaos table.
- :class:`CountingWatcher` reads the output topics through the proxy and counts how often the worker
  published each event (more than once: a replay, which FINAL must collapse).

What can block: :meth:`ChaosRig.start` waits at most :data:`BROKER_START_TIMEOUT_S` for the broker;
:meth:`ChaosRig.close` stops every process (SIGTERM, then SIGKILL after the grace period).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from llmwatch.broker import free_port, tansu_binary, wait_for_broker
from llmwatch.processes import ChildProcess
from llmwatch.settings import Settings
from streams.admin import ensure_topics
from streams.ingest.call_batches import decode_call_rows
from tests.chaos.folder_lock import FolderLock
from tests.chaos.proxy import TcpProxy
from tests.integration.pipeline_harness import ProcessGroup, TopicWatcher, pipeline_settings

__all__ = [
    "BROKER_START_TIMEOUT_S",
    "RESTART_BACKOFF_S",
    "ChaosRig",
    "CountingWatcher",
    "ProxiedBroker",
    "Supervisor",
]

BROKER_START_TIMEOUT_S: Final = 20.0
BROKER_STOP_GRACE_S: Final = 5.0
RESTART_BACKOFF_S: Final = 1.0
# Longer than the default 0.5 s: a kill -9 then hits more processed-but-uncommitted records.
WORKER_COMMIT_INTERVAL_S: Final = 2.0
WORKER: Final = "worker"
SINK: Final = "sink"


class Supervisor(ProcessGroup):
    """A ProcessGroup that restarts what exits on its own instead of failing the run."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__(log_dir)
        self.settings: dict[str, Settings] = {}
        self.children: dict[str, ChildProcess] = {}
        self.restarts: Counter[str] = Counter()
        self._exited_at: dict[str, float] = {}

    def start(self, command: str, settings: Settings) -> ChildProcess:
        child = super().start(command, settings)
        self.settings[command] = settings
        self.children[command] = child
        return child

    def kill_command(self, command: str) -> None:
        """SIGKILL the running ``command`` (a crash); it stays down until started again."""
        self.kill(self.children.pop(command))

    def stop_command(self, command: str) -> None:
        """SIGTERM the running ``command`` (a clean stop); it stays down until started again."""
        self.stop(self.children.pop(command))

    def restart(self, command: str) -> None:
        self.start(command, self.settings[command])

    def check(self) -> None:
        """Restart every process that exited unexpectedly (after a short backoff)."""
        now = time.monotonic()
        for command, child in list(self.children.items()):
            if child.alive():
                continue
            exited = self._exited_at.setdefault(command, now)
            if now - exited < RESTART_BACKOFF_S:
                continue
            del self._exited_at[command]
            self._running.remove(child)
            self.restarts[command] += 1
            self.restart(command)


class CountingWatcher(TopicWatcher):
    """A TopicWatcher that also counts how often each event was published to the calls topic."""

    def __init__(self, bootstrap: str, layout: Any) -> None:
        self.published: Counter[str] = Counter()
        super().__init__(bootstrap, layout)

    def _add(self, message: Any) -> None:
        super()._add(message)
        if message.topic() == self._calls:
            rows = decode_call_rows(message.value())
            self.published.update(row["event_id"] for row in rows)


class ProxiedBroker:
    """Tansu on a loopback port, reachable only through a :class:`TcpProxy` (its advertised address)."""

    def __init__(self) -> None:
        self.proxy = TcpProxy(free_port(), free_port())
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return self.proxy.address

    def start(self) -> ProxiedBroker:
        cmd = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{self.proxy.target_port}",
            "--advertised-listener-url",
            f"tcp://{self.proxy.address}",
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ]
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        # Bootstrapping needs only the broker's own port (metadata would name the proxy).
        wait_for_broker(f"127.0.0.1:{self.proxy.target_port}", BROKER_START_TIMEOUT_S)
        self.proxy.start()
        return self

    def close(self) -> None:
        self.proxy.close()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(BROKER_STOP_GRACE_S)
        if proc.poll() is None:
            proc.kill()
            proc.wait(BROKER_STOP_GRACE_S)

    def __enter__(self) -> ProxiedBroker:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ChaosRig:
    """Broker, proxy, worker and sink for one chaos run in ``folder``; a context manager."""

    def __init__(self, folder: Path, prefix: str) -> None:
        self.folder = folder
        self.prefix = prefix
        self.broker = ProxiedBroker()
        self.proxy = self.broker.proxy
        self.processes = Supervisor(folder / "logs")
        self._watcher: CountingWatcher | None = None
        self._lock: FolderLock | None = None
        self.settings = pipeline_settings(
            self.proxy.address,
            prefix,
            folder / "data",
            clickhouse_dsn=f"chdb://{(folder / 'clickhouse').resolve()}",
            commit_interval_s=WORKER_COMMIT_INTERVAL_S,
        )

    @property
    def watcher(self) -> CountingWatcher:
        if self._watcher is None:
            raise RuntimeError("the rig is not started")
        return self._watcher

    def start(self) -> ChaosRig:
        self.broker.start()
        ensure_topics(self.proxy.address, self.settings.layout.specs())
        self.processes.start(WORKER, self.settings)
        self.processes.start(SINK, self.settings)
        self._watcher = CountingWatcher(self.proxy.address, self.settings.layout)
        return self

    def stop_sink(self) -> None:
        """A clean stop (flush, commit): afterwards this process may open the chdb folder."""
        self.processes.stop_command(SINK)

    def lock_clickhouse(self) -> None:
        """Stop the sink cleanly, lock its chdb folder from another process, start a new sink."""
        self.stop_sink()
        self._lock = FolderLock(self.settings.dsn).acquire()
        self.processes.restart(SINK)

    def release_clickhouse(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def close(self) -> None:
        self.release_clickhouse()
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        self.processes.stop_all()
        self.broker.close()

    def __enter__(self) -> ChaosRig:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
