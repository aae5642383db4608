"""Processes and waits for the scale-out tests: several ``llmwatch worker`` processes in one group.

- :func:`build_input` turns simulated events (``producers.simulator``, times relative to now) into a
  fixed list of batch records, keyed by the SDK's trace buckets and placed round-robin on every
  partition, with fixed Kafka timestamps and ``sent_at_ms``: producing them to two runs' events topics
  gives both runs byte-identical input. :class:`InputFeed` produces them in order, in steps;
  :func:`input_cost` is what the worker's own ingest prices them at.
- :class:`ScaleGroup` is a :class:`ProcessGroup` whose workers have their own names and logs (``a``,
  ``b``, ``b2``); :class:`Worker` knows the monitor's instance name (``host:pid``).
- :class:`ScaleWatcher` reads the worker's output topics (a :class:`TopicWatcher`), its metrics topic
  (per instance: records processed, the source partitions its latest top-K snapshot claims), its SLO
  status snapshots on the alerts topic and its saved monitor state (``streams.state``), without
  opening the chdb folder.
- :func:`drain` waits until every event is stored and, for every live instance, a top-K snapshot
  published after that, and an SLO status snapshot that counts every event, are stored too. The
  ClickHouse reads that compare runs are in ``tests.integration.scale_queries``.

What can block: every wait has a deadline (``wait_until``); producing flushes for at most 30 s.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from llmwatch.processes import ChildProcess
from llmwatch.settings import ENV_PREFIX, Settings
from producers.sdk import bucket_key
from producers.sdk.batching import bucket_for
from producers.simulator import Simulator, default_scenario
from producers.wire import encode_batch_raw
from streams.analytics.record import RecordAnalytics
from streams.ingest.pipeline import RecordProcessor
from streams.ingest.validate import SourcePosition
from streams.periodic import PIPELINE_METRICS_TABLE, TOP_USERS_TABLE, decode_snapshot
from streams.slo.alerts import SLO_STATUS_TABLE, decode_alerts_record
from streams.state import decode_offsets, decode_state
from tests.integration.kafka_io import QUIET, committed
from tests.integration.pipeline_harness import (
    ProcessGroup,
    TopicWatcher,
    child_env,
    wait_drained,
    wait_until,
)

__all__ = [
    "InputFeed",
    "InputRecord",
    "ScaleGroup",
    "ScaleInput",
    "ScaleWatcher",
    "SloView",
    "Worker",
    "build_input",
    "drain",
    "feed_until",
    "input_cost",
    "processing",
]

WAIT_S: Final = 60.0
FLUSH_S: Final = 30.0
# Snapshots in a row with the same top-K rows (or SLO measures), all taken after the last call was
# forwarded.
SETTLED_SNAPSHOTS: Final = 2
# Settings a worker needs here beyond pipeline_harness.CHILD_SETTINGS.
EXTRA_CHILD_SETTINGS: Final = ("snapshot_interval_s", "alert_interval_s", "slo_file")
# Alerts-topic key of the SLO status snapshots (streams.app).
STATUS_KEY: Final = b"status"
# Status-row columns that must not change between two snapshots of a settled monitor.
SETTLED_MEASURES: Final = ("good", "total", "spent_usd", "unpriced")


# Input.


@dataclass(frozen=True, slots=True)
class InputRecord:
    partition: int
    key: bytes
    value: bytes
    timestamp_ms: int
    event_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScaleInput:
    """Records in production order: round-robin over the partitions, each partition's in order."""

    records: tuple[InputRecord, ...]
    partitions: int

    @property
    def event_ids(self) -> frozenset[str]:
        return frozenset(i for record in self.records for i in record.event_ids)


def build_input(
    events: int,
    seed: int,
    partitions: int,
    *,
    start: datetime,
    end: datetime,
    events_per_record: int,
) -> ScaleInput:
    """``events`` simulated calls in ``[start, end]`` as batch records on all ``partitions``.

    Each trace bucket's events (``producers.sdk.batching``) go to partition ``bucket % partitions``
    under the bucket's key, ``events_per_record`` per record, stamped ``end`` (Kafka timestamp and
    ``sent_at_ms``), so the records are the same bytes whenever they are produced."""
    if events_per_record < 1:
        raise ValueError(f"events_per_record must be >= 1, got {events_per_record!r}")
    stamp = int(end.timestamp() * 1000)
    by_bucket: dict[int, list[tuple[str, bytes]]] = {}
    for event in Simulator(seed, default_scenario()).events(events, start, end):
        bucket = bucket_for(event.trace_id)
        by_bucket.setdefault(bucket, []).append((event.event_id, event.to_json()))
    per_partition: list[list[InputRecord]] = [[] for _ in range(partitions)]
    for bucket in sorted(by_bucket):
        chunk = by_bucket[bucket]
        for i in range(0, len(chunk), events_per_record):
            part = chunk[i : i + events_per_record]
            per_partition[bucket % partitions].append(
                InputRecord(
                    partition=bucket % partitions,
                    key=bucket_key(bucket),
                    value=encode_batch_raw([payload for _, payload in part], sent_at_ms=stamp),
                    timestamp_ms=stamp,
                    event_ids=tuple(event_id for event_id, _ in part),
                )
            )
    empty = [p for p, records in enumerate(per_partition) if not records]
    if empty:
        raise ValueError(f"no records for partitions {empty}: produce more than {events} events")
    rounds = max(len(records) for records in per_partition)
    ordered = [r[i] for i in range(rounds) for r in per_partition if i < len(r)]
    return ScaleInput(tuple(ordered), partitions)


def input_cost(data: ScaleInput) -> float:
    """USD the worker's ingest (``streams.ingest.pipeline``, bundled prices) puts on all the input's
    calls; unpriced calls count 0, as in a cost SLI. Raises AssertionError if a call is rejected."""
    processor = RecordProcessor(RecordAnalytics())
    spent = 0.0
    for offset, record in enumerate(data.records):
        source = SourcePosition("input", record.partition, offset)
        out = processor.process(record.value, source, record.timestamp_ms)
        assert out.dead_letters == [], f"input record {offset} has dead letters: {out.dead_letters}"
        spent += sum(row["cost_usd"] or 0.0 for row in out.rows)
    return spent


class InputFeed:
    """Produces a :class:`ScaleInput`'s records to one events topic, in order, a step at a time."""

    def __init__(self, bootstrap: str, topic: str, data: ScaleInput) -> None:
        self._producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **QUIET})
        self._topic = topic
        self._records = data.records
        self.sent = 0
        self.sent_ids: set[str] = set()
        self._errors: list[Any] = []

    @property
    def remaining(self) -> int:
        return len(self._records) - self.sent

    def send(self, count: int) -> None:
        """Produce the next ``count`` records (fewer at the end) and wait for the broker's acks."""
        for record in self._records[self.sent : self.sent + count]:
            self._producer.produce(
                self._topic,
                record.value,
                key=record.key,
                partition=record.partition,
                timestamp=record.timestamp_ms,
                on_delivery=self._delivered,
            )
            self.sent_ids.update(record.event_ids)
            self.sent += 1
        assert self._producer.flush(FLUSH_S) == 0, "input records not delivered"
        assert self._errors == [], self._errors

    def send_rest(self) -> None:
        self.send(self.remaining)

    def next_offsets(self) -> dict[int, int]:
        """Partition -> offset of the next record to produce there (the topic started empty)."""
        out: dict[int, int] = {}
        for record in self._records[: self.sent]:
            out[record.partition] = out.get(record.partition, 0) + 1
        return out

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._errors.append(err)


# Processes.


@dataclass(frozen=True, slots=True)
class Worker:
    name: str
    child: ChildProcess

    @property
    def instance(self) -> str:
        """The monitor's instance name (``streams.app``: host:pid), as in its snapshots."""
        return f"{socket.gethostname()}:{self.child.pid}"


class ScaleGroup(ProcessGroup):
    """A :class:`ProcessGroup` whose workers each log to ``<log_dir>/worker-<name>.log``."""

    def start_worker(self, name: str, settings: Settings) -> Worker:
        env = child_env(settings)
        for setting in EXTRA_CHILD_SETTINGS:
            env[f"{ENV_PREFIX}{setting.upper()}"] = str(getattr(settings, setting))
        label = f"worker-{name}"
        log_path = self.log_dir / f"{label}.log"
        child = ChildProcess(label, ["worker"], env, log_path).start()
        self._running.append(child)
        self._logs[label] = log_path
        return Worker(name, child)

    def kill_all(self) -> None:
        """SIGKILL every process still running: a run is over and its output read."""
        for child in list(self._running):
            self.kill(child)


# Watching.


@dataclass(slots=True)
class InstanceView:
    """What one worker instance's latest metrics snapshots say."""

    processed: int = 0  # records_processed
    snapshot_ms: int = 0  # when its latest snapshot was taken
    owned: frozenset[int] = frozenset()  # partitions its latest top-K rows claim (none: no rows)
    offset: int = -1  # of that snapshot on the metrics topic
    top: tuple[Any, ...] = ()  # its latest top-K rows: (tenant, user, cost, calls)
    unchanged: int = 0  # snapshots in a row with those rows (1: the latest is new)


@dataclass(slots=True)
class SloView:
    """The monitor owner's latest SLO status snapshot, its alert transitions and its saved state."""

    evaluated_ms: int = 0  # when the latest status snapshot was evaluated
    offset: int = -1  # of that snapshot on the alerts topic
    measures: dict[tuple[str, str, str], tuple[Any, ...]] = field(default_factory=dict)
    unchanged: int = 0  # snapshots in a row with those measures (1: the latest is new)
    transitions: list[tuple[str, str]] = field(default_factory=list)  # (alert_id, state)
    saved: dict[tuple[str, int], int] = field(default_factory=dict)  # next offsets in the state

    def totals(self) -> set[int]:
        """The ``total`` of every window in the latest snapshot."""
        at = SETTLED_MEASURES.index("total")
        return {values[at] for values in self.measures.values()}

    def __str__(self) -> str:
        measures = "\n".join(
            f"    {key}: {values}" for key, values in sorted(self.measures.items())
        )
        return (
            f"status evaluated at {self.evaluated_ms} (offset {self.offset}, "
            f"{self.unchanged} alike):\n{measures}\n  alerts: {self.transitions}\n"
            f"  saved state offsets: {sorted(self.saved.items())}"
        )


@dataclass(slots=True)
class ScaleWatcher:
    """The worker's output topics (``outputs``), its metrics snapshots per instance, and its SLO
    status, alerts and saved state (``slo``)."""

    settings: Settings
    outputs: TopicWatcher = field(init=False)
    instances: dict[str, InstanceView] = field(init=False, default_factory=dict)
    slo: SloView = field(init=False, default_factory=SloView)
    _consumer: Consumer = field(init=False)

    def __post_init__(self) -> None:
        self.outputs = TopicWatcher(self.settings.bootstrap, self.settings.layout)
        self._consumer = Consumer(
            {
                "bootstrap.servers": self.settings.bootstrap,
                "group.id": f"watch-{uuid.uuid4().hex}",
                **QUIET,
            }
        )
        layout = self.settings.layout
        topics = (layout.metrics, layout.alerts, layout.state)  # one partition each
        self._consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING) for topic in topics])

    def poll(self) -> None:
        self.outputs.poll()
        layout = self.settings.layout
        while messages := self._consumer.consume(num_messages=500, timeout=0.1):
            for message in messages:
                if message.error() is not None:
                    continue
                topic, key, offset = message.topic(), message.key(), message.offset() or 0
                if topic == layout.metrics and key == b"worker":
                    self._add_snapshot(offset, decode_snapshot(message.value()))
                elif topic == layout.alerts:
                    self._add_alerts(offset, key, message.value())
                elif topic == layout.state and key == self.settings.worker_id.encode():
                    state = decode_state(message.value(), self.settings.worker_id)
                    self.slo.saved = decode_offsets(state.body.get("offsets"))

    def _add_snapshot(self, offset: int, tables: dict[str, list[dict[str, Any]]]) -> None:
        metrics = tables.get(PIPELINE_METRICS_TABLE, [])
        if not metrics:
            return
        view = self.instances.setdefault(metrics[0]["instance"], InstanceView())
        view.snapshot_ms, view.offset = metrics[0]["ts"], offset
        for row in metrics:
            if row["metric"] == "records_processed":
                view.processed = int(row["value"])
        top = tables.get(TOP_USERS_TABLE, [])
        view.owned = frozenset(top[0]["partitions"]) if top else frozenset()
        rows = tuple((r["tenant_id"], r["user_id"], r["cost_usd"], r["requests"]) for r in top)
        view.unchanged = view.unchanged + 1 if rows == view.top else 1
        view.top = rows

    def _add_alerts(self, offset: int, key: bytes | None, value: bytes | None) -> None:
        view = self.slo
        if key != STATUS_KEY:
            alert = orjson.loads(value or b"")
            view.transitions.append((alert["alert_id"], alert["state"]))
            return
        rows = decode_alerts_record(value)[SLO_STATUS_TABLE]
        if not rows:
            return
        measures = {
            (row["slo"], row["rule"], row["window"]): tuple(row[m] for m in SETTLED_MEASURES)
            for row in rows
        }
        view.unchanged = view.unchanged + 1 if measures == view.measures else 1
        view.measures, view.evaluated_ms, view.offset = measures, rows[0]["evaluated_at"], offset

    def view(self, worker: Worker) -> InstanceView:
        return self.instances.get(worker.instance, InstanceView())

    def close(self) -> None:
        self.outputs.close()
        self._consumer.close()

    def __str__(self) -> str:
        views = "\n".join(f"  {name}: {view}" for name, view in sorted(self.instances.items()))
        return f"{self.outputs}\ninstances:\n{views}\nslo: {self.slo}"


def processing(watcher: ScaleWatcher, workers: Sequence[Worker]) -> bool:
    """Every worker has processed records: each owns (or owned) some partitions of the input."""
    return all(watcher.view(worker).processed > 0 for worker in workers)


def feed_until(
    feed: InputFeed,
    watcher: ScaleWatcher,
    condition: Callable[[], bool],
    what: str,
    processes: ProcessGroup,
    *,
    step: int,
    keep: int,
    timeout_s: float = WAIT_S,
) -> None:
    """Produce ``step`` records at a time, each once the previous step is through the workers, until
    ``condition`` holds; never the last ``keep`` records (the wait then fails at its deadline)."""

    def fed() -> bool:
        watcher.poll()
        if condition():
            return True
        if feed.sent_ids <= watcher.outputs.event_ids and feed.remaining > keep:
            feed.send(min(step, feed.remaining - keep))
        return False

    wait_until(fed, what, timeout_s, processes, lambda: f"{watcher}\nsent {feed.sent} records")


def drain(
    watcher: ScaleWatcher,
    settings: Settings,
    event_ids: Iterable[str],
    live: Sequence[Worker],
    processes: ProcessGroup,
    *,
    slo_total: int | None = None,
) -> None:
    """Wait until the sink stored every event and, for the ``live`` workers, the top-K snapshots each
    published after that, unchanged over the last :data:`SETTLED_SNAPSHOTS` (a monitor fed through
    another topic may lag the calls), together claiming every partition.

    With ``slo_total`` (an SLO file whose SLOs each count every call): also an SLO status snapshot
    evaluated after that, the same as the one before, whose windows each hold at least ``slo_total``
    rows (more: a double count, which the caller's comparison shows)."""
    expected = set(event_ids)
    wait_drained(
        watcher.outputs, settings, calls=len(expected), dead_letters=0, processes=processes
    )
    assert watcher.outputs.event_ids == expected, "the workers forwarded events never produced"
    done_ms = time.time_ns() // 1_000_000
    partitions = frozenset(range(settings.layout.partitions))

    def status_settled() -> bool:
        slo = watcher.slo
        return slo_total is None or (
            slo.evaluated_ms > done_ms
            and slo.unchanged >= SETTLED_SNAPSHOTS
            and min(slo.totals(), default=-1) >= slo_total
        )

    def snapshotted() -> bool:
        watcher.poll()
        views = [watcher.view(worker) for worker in live]
        return (
            all(
                view.snapshot_ms > done_ms and view.unchanged >= SETTLED_SNAPSHOTS for view in views
            )
            and frozenset().union(*(view.owned for view in views)) == partitions
            and status_settled()
        )

    wait_until(snapshotted, "snapshots after the drain", WAIT_S, processes, watcher.__str__)
    needed = {(settings.layout.metrics, 0): max(watcher.view(worker).offset for worker in live) + 1}
    if slo_total is not None:
        needed[(settings.layout.alerts, 0)] = watcher.slo.offset + 1

    def stored() -> bool:
        done = committed(settings.bootstrap, settings.sink_group, list(needed))
        return all(done[tp] >= offset for tp, offset in needed.items())

    wait_until(stored, "the sink to store those snapshots", WAIT_S, processes, watcher.__str__)
