"""Helpers to run the real pipeline in integration tests: Tansu + Faust worker + ClickHouse sink on chdb.

- :func:`pipeline_settings` builds :class:`~llmwatch.settings.Settings` for one test (its own topics,
  consumer groups and data folder); :func:`child_env` turns them into ``LLMWATCH_*`` variables for
  ``llmwatch worker`` / ``llmwatch sink`` subprocesses started by a :class:`ProcessGroup`.
- :class:`RunningSink` runs a :class:`~sinks.writer.ClickHouseSink` in a thread of the test process,
  sharing the test's chdb client (chdb lets one process open one data folder at a time).
- :class:`TopicWatcher` reads the worker's output topics on its own (no consumer group), so a test can
  tell when the pipeline has drained without opening the chdb folder a sink subprocess holds:
  :func:`wait_drained` waits until every expected event id and dead letter is on the topics and the
  sink's group has committed exactly the watched end of every partition (the sink commits only after
  its insert), twice in a row.

What can block: every wait has a deadline; it fails at the deadline, or as soon as a process the test
did not kill has exited, with the tail of the process logs.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import clickhouse_connect
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from llmwatch.processes import ChildProcess, build_sink
from llmwatch.settings import ENV_PREFIX, Settings
from producers.events import LlmCallEvent
from producers.sdk import Publisher
from producers.simulator import Simulator
from sinks.schema import CALLS_TABLE, DLQ_TABLE, qualified
from sinks.stats import SinkStats
from sinks.writer import ClickHouseSink
from streams.analytics.rollups import ROLLUP_TABLE
from streams.ingest.call_batches import decode_call_rows
from streams.topics import TopicLayout
from tests.integration.kafka_io import QUIET, Positions, committed

__all__ = [
    "DRAIN_TIMEOUT_S",
    "ProcessGroup",
    "RunningSink",
    "StoredCounts",
    "TopicWatcher",
    "Traffic",
    "child_env",
    "clickhouse",
    "pipeline_settings",
    "simulated_events",
    "sink_thread",
    "stored_counts",
    "wait_drained",
    "wait_until",
]

DRAIN_TIMEOUT_S: Final = 60.0
POLL_INTERVAL_S: Final = 0.25
# The drain condition must hold twice this far apart: late output of the last record shows up.
SETTLE_S: Final = 1.0
STOP_WAIT_S: Final = 45.0
LOG_TAIL_LINES: Final = 40
# Settings a worker or sink subprocess needs from the test, passed as LLMWATCH_<NAME>.
CHILD_SETTINGS: Final = (
    "bootstrap",
    "data_dir",
    "clickhouse_dsn",
    "database",
    "topic_prefix",
    "partitions",
    "store",
    "worker_id",
    "session_timeout_s",
    "commit_interval_s",
    "sink_group",
    "sink_batch_rows",
    "sink_flush_interval_s",
    "log_level",
)


def pipeline_settings(bootstrap: str, prefix: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings with this test's topics, groups and folder; fast flushes, in-memory worker state."""
    fields: dict[str, Any] = {
        "bootstrap": bootstrap,
        "topic_prefix": prefix,
        "data_dir": data_dir,
        "database": "e2e",
        "worker_id": f"{prefix}-worker",
        "sink_group": f"{prefix}-sink",
        "store": "memory://",
        "sink_flush_interval_s": 0.2,
        "log_level": "INFO",
        **overrides,
    }
    return Settings(**fields)


def child_env(settings: Settings) -> dict[str, str]:
    """The ``LLMWATCH_*`` variables that make a subprocess use ``settings``."""
    env = {}
    for name in CHILD_SETTINGS:
        value = getattr(settings, name)
        if value is not None:
            env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return env


class ProcessGroup:
    """``llmwatch <command>`` subprocesses of one test, each appending to ``<log_dir>/<command>.log``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._running: list[ChildProcess] = []
        self._logs: dict[str, Path] = {}

    def start(self, command: str, settings: Settings) -> ChildProcess:
        log_path = self.log_dir / f"{command}.log"
        child = ChildProcess(command, [command], child_env(settings), log_path).start()
        self._running.append(child)
        self._logs[command] = log_path
        return child

    def kill(self, child: ChildProcess) -> None:
        """SIGKILL, a crash: the test then starts a new one."""
        child.kill()
        self._running.remove(child)

    def stop(self, child: ChildProcess) -> int | None:
        """SIGTERM (then SIGKILL after the grace period): a planned stop; returns the exit code."""
        code = child.stop()
        self._running.remove(child)
        return code

    def check(self) -> None:
        """Fail now, with the logs, if a process the test did not kill has exited."""
        exited = [child.name for child in self._running if not child.alive()]
        if exited:
            raise AssertionError(f"{', '.join(exited)} exited unexpectedly\n{self.tails()}")

    def stop_all(self) -> None:
        """SIGTERM, then SIGKILL after the grace period, newest first."""
        for child in reversed(self._running):
            child.stop()
        self._running.clear()

    def tails(self, lines: int = LOG_TAIL_LINES) -> str:
        parts = []
        for command, path in self._logs.items():
            text = path.read_text(errors="replace") if path.exists() else "(no log)"
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"----- last {lines} lines of {command} log ({path}) -----\n{tail}")
        return "\n".join(parts)


class RunningSink:
    """A :class:`ClickHouseSink` running in a daemon thread of the test process."""

    def __init__(self, sink: ClickHouseSink) -> None:
        self.sink = sink
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=sink.run, args=(self.stop_event,), daemon=True)

    def start(self) -> RunningSink:
        self.thread.start()
        return self

    def stop(self) -> SinkStats:
        self.stop_event.set()
        self.thread.join(STOP_WAIT_S)
        assert not self.thread.is_alive(), "sink did not stop"
        return self.sink.stats()


@contextlib.contextmanager
def sink_thread(settings: Settings, client: Any) -> Iterator[RunningSink]:
    """The sink ``llmwatch sink`` would run, in a thread sharing the test's chdb client."""
    running = RunningSink(build_sink(settings, client)).start()
    try:
        yield running
    finally:
        running.stop()


@contextlib.contextmanager
def clickhouse(dsn: str) -> Iterator[Any]:
    """A client for ``dsn``; chdb: open it only once no other process holds the folder."""
    client = clickhouse_connect.get_client(dsn=dsn)
    try:
        yield client
    finally:
        client.close()


def wait_until(
    condition: Callable[[], bool],
    what: str,
    timeout_s: float,
    processes: ProcessGroup,
    explain: Callable[[], str] = str,
) -> None:
    """Poll ``condition`` until it holds; fail early if a process dies, or at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        processes.check()
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout_s:.0f} s waiting for {what}\n{explain()}\n"
                f"{processes.tails()}"
            )
        time.sleep(POLL_INTERVAL_S)


def simulated_events(n: int, seed: int) -> list[LlmCallEvent]:
    """``n`` realistic events spread over the last five minutes (inside the worker's time bounds)."""
    now = datetime.now(UTC)
    return list(Simulator(seed).events(n, now - timedelta(minutes=5), now))


class Traffic:
    """Emits events through a Publisher from a background thread at about ``rate`` events/s."""

    PACE_EVERY: Final = 100

    def __init__(self, publisher: Publisher, events: Sequence[LlmCallEvent], rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate!r}")
        self._publisher = publisher
        self._events = events
        self._rate = rate
        self.accepted = 0
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "traffic thread did not finish"

    def _run(self) -> None:
        started = time.monotonic()
        for index, event in enumerate(self._events):
            self.accepted += self._publisher.emit(event)
            if index % self.PACE_EVERY == 0:
                time.sleep(max(0.0, started + index / self._rate - time.monotonic()))


class TopicWatcher:
    """Reads the calls, dlq and rollups topics from the beginning, without a consumer group."""

    def __init__(self, bootstrap: str, layout: TopicLayout) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"watch-{uuid.uuid4().hex}", **QUIET}
        )
        self._calls, self._dlq = layout.calls, layout.dlq
        topics = [layout.calls, layout.dlq, layout.rollups]
        meta = self._consumer.list_topics(timeout=10).topics
        self._consumer.assign(
            [TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in meta[t].partitions]
        )
        self.ends: Positions = {}
        self.event_ids: set[str] = set()
        self.call_events = 0  # including replayed duplicates
        self.dead_letter_ids: set[str] = set()

    def poll(self) -> None:
        """Read everything available now."""
        while messages := self._consumer.consume(num_messages=500, timeout=0.1):
            for message in messages:
                if message.error() is None:
                    self._add(message)

    def _add(self, message: Any) -> None:
        topic, partition = message.topic(), message.partition()
        self.ends[(topic, partition)] = message.offset() + 1
        if topic == self._calls:
            rows = decode_call_rows(message.value())
            self.event_ids.update(row["event_id"] for row in rows)
            self.call_events += len(rows)
        elif topic == self._dlq:
            self.dead_letter_ids.add(orjson.loads(message.value())["dead_letter_id"])

    def close(self) -> None:
        self._consumer.close()

    def __str__(self) -> str:
        return (
            f"watched: {len(self.event_ids)} distinct events ({self.call_events} with replays), "
            f"{len(self.dead_letter_ids)} dead letters, ends {self.ends}"
        )


def wait_drained(
    watcher: TopicWatcher,
    settings: Settings,
    *,
    calls: int,
    dead_letters: int,
    processes: ProcessGroup,
    timeout_s: float = DRAIN_TIMEOUT_S,
) -> None:
    """Wait until the worker published ``calls`` events and ``dead_letters``, and the sink took all."""
    last: list[tuple[float, Positions]] = []

    def drained() -> bool:
        watcher.poll()
        if len(watcher.event_ids) < calls or len(watcher.dead_letter_ids) < dead_letters:
            return False
        ends = dict(watcher.ends)
        if committed(settings.bootstrap, settings.sink_group, list(ends)) != ends:
            return False
        now = time.monotonic()
        if not last or last[0][1] != ends:
            last[:] = [(now, ends)]
        return now - last[0][0] >= SETTLE_S

    def explain() -> str:
        group = committed(settings.bootstrap, settings.sink_group, list(watcher.ends))
        return f"{watcher}\nsink committed: {group}"

    wait_until(drained, "the pipeline to drain", timeout_s, processes, explain)


@dataclass(frozen=True, slots=True)
class StoredCounts:
    calls_final: int
    calls_raw: int  # without FINAL: replayed rows not merged yet are counted again
    calls_distinct: int
    rollup_requests: int
    dlq_final: int


def stored_counts(client: Any, database: str) -> StoredCounts:
    calls = qualified(CALLS_TABLE, database)

    def scalar(sql: str) -> int:
        return int(client.command(sql))

    return StoredCounts(
        calls_final=scalar(f"SELECT count() FROM {calls} FINAL"),
        calls_raw=scalar(f"SELECT count() FROM {calls}"),
        calls_distinct=scalar(f"SELECT uniqExact(event_id) FROM {calls}"),
        rollup_requests=scalar(
            f"SELECT sum(requests) FROM {qualified(ROLLUP_TABLE, database)} FINAL"
        ),
        dlq_final=scalar(f"SELECT count() FROM {qualified(DLQ_TABLE, database)} FINAL"),
    )
