"""End-to-end freshness: from emit to the row being visible in ClickHouse, at a stated rate.

Reproduce: ``TZ=UTC .venv/bin/python -m bench.bench_freshness [--rate 5000 --seconds 30]``.
Writes ``bench/results/freshness.json`` (``--dump F`` also writes each call's stage times as CSV).

Runs the embedded pipeline (Tansu, the Faust worker and the sink as subprocesses, the sink on chdb)
with the SDK emitting at ``--rate`` events/s from this process: all on the machine's cores. The events
are generated before the timed phase (so the simulator does not compete for the cores), then moved so
that they end at a steady ``--rate`` (the simulator spreads trace starts; long agent traces would end
minutes later), and each is emitted when its ``end_time`` arrives. After the worker joined, 3 s of
warm-up traffic and a 2 s pause come first (a freshly started worker is slow on its first second of
records: up to 1.1 s); only the events after them count.

Measured, computed in ClickHouse after the run:
- a call row's freshness, emit to visible: ``ingested_at - end_time`` (the issue's measure; it includes
  the SDK's batching, up to its 0.2 s flush interval), and send to visible: ``ingested_at - sent_at``;
- a 1-minute rollup row's: ``ingested_at - max_sent_at`` (its newest event);
- the SDK's own delay, ``sent_at - end_time``;
- per call, where the time goes: SDK send -> broker append (the events topic's LogAppendTime) -> the
  worker's calls record (its CreateTime) -> row visible.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from llmwatch.broker import TansuBroker
from llmwatch.processes import ChildProcess
from llmwatch.settings import Settings
from producers.events import LlmCallEvent
from producers.sdk import Publisher
from producers.simulator import Simulator, default_scenario
from producers.wire import RecordError, split_record
from sinks.clickhouse import connect
from streams.admin import ensure_topics
from streams.ingest.call_batches import decode_call_table
from streams.topics import TopicLayout

RESULTS: Final = Path(__file__).parent / "results"
QUANTILES: Final = "quantiles(0.5, 0.9, 0.99)"
DRAIN_S: Final = 3.0
STAGE_READ_S: Final = 120.0
WARM_TRAFFIC_S: Final = 3.0
WARM_PAUSE_S: Final = 2.0


def _quantiles(client: Any, sql: str, since_ms: int) -> list[float]:
    row = client.query(sql, parameters={"since": since_ms}).result_rows[0]
    return [round(float(v), 1) for v in row[0]] + [int(row[1])]


def _wait_for_calls(bootstrap: str, topic: str, events: int) -> None:
    """Until the worker has forwarded ``events`` calls (or a minute has passed)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"fresh-{time.time_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([topic])
    seen, deadline = 0, time.monotonic() + 60
    try:
        while seen < events and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                seen += decode_call_table(message.value()).num_rows
    finally:
        consumer.close()


def _record_times(
    bootstrap: str, topic: str, ids_of: Callable[[bytes], list[str]]
) -> dict[str, int]:
    """Event id -> the Kafka timestamp (ms) of the record that carried it, over the whole topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"stage-{time.time_ns()}",
                         "enable.auto.commit": False, "enable.partition.eof": True})  # fmt: skip
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    times: dict[str, int] = {}
    remaining, deadline = set(partitions), time.monotonic() + STAGE_READ_S
    try:
        while remaining and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    remaining.discard(message.partition())
                continue
            stamp = message.timestamp()[1]
            for event_id in ids_of(message.value() or b""):
                times.setdefault(event_id, stamp)
    finally:
        consumer.close()
    return times


def _event_ids(value: bytes) -> list[str]:
    split = split_record(value)
    return [] if isinstance(split, RecordError) else [str(e["event_id"]) for e in split.events]


def _call_ids(value: bytes) -> list[str]:
    return [str(v) for v in decode_call_table(value).column("event_id").to_pylist()]


def _stages(
    bootstrap: str, layout: TopicLayout, client: Any, since_ms: int, dump: Path | None
) -> dict[str, Any]:
    """Where the time goes, per call: SDK send -> broker append (events topic, LogAppendTime) ->
    worker's calls record (CreateTime, when the worker sent it) -> row visible (``ingested_at``)."""
    appended = _record_times(bootstrap, layout.events, _event_ids)
    forwarded = _record_times(bootstrap, layout.calls, _call_ids)
    rows = client.query(
        "SELECT event_id, toUnixTimestamp64Milli(sent_at), toUnixTimestamp64Milli(ingested_at) "
        "FROM llmwatch.llm_calls FINAL WHERE sent_at >= fromUnixTimestamp64Milli({since:Int64})",
        parameters={"since": since_ms},
    ).result_rows
    spans: dict[str, list[int]] = {"send_to_broker": [], "broker_to_worker_out": [],
                                   "worker_out_to_visible": []}  # fmt: skip
    timeline = []
    for event_id, sent, visible in rows:
        key = str(event_id)
        if key in appended and key in forwarded:
            timeline.append((sent, appended[key], forwarded[key], visible))
            spans["send_to_broker"].append(appended[key] - sent)
            spans["broker_to_worker_out"].append(forwarded[key] - appended[key])
            spans["worker_out_to_visible"].append(visible - forwarded[key])
    if dump is not None:  # one row per call: sent, appended, forwarded, visible (epoch ms)
        np.savetxt(dump, np.array(sorted(timeline), dtype=np.int64), fmt="%d", delimiter=",")
    return {
        f"{name}_ms_p50_p90_p99": [round(float(q), 1) for q in np.percentile(v, [50, 90, 99])]
        for name, v in spans.items()
        if v
    }


def _at_steady_rate(
    events: Iterable[LlmCallEvent], begin: datetime, rate: float
) -> list[LlmCallEvent]:
    """The events in end-time order, each moved (start and end together) so that the ``i``-th ends at
    ``begin + i / rate``. The simulator spreads trace *starts* over the window, and long agent traces
    end minutes later (a quarter of the events after the window, the last ~4 min on): without this the
    rate would be lower than stated and trail off."""
    ordered = sorted(events, key=lambda e: e.end_time)
    moved = []
    for i, event in enumerate(ordered):
        shift = begin + timedelta(seconds=i / rate) - event.end_time
        moved.append(
            event.model_copy(
                update={"start_time": event.start_time + shift, "end_time": event.end_time + shift}
            )
        )
    return moved


def run(
    rate: float,
    seconds: float,
    commit_s: float,
    flush_s: float,
    warmup_s: float,
    dump: Path | None = None,
) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="llmwatch-fresh-"))
    events = int(rate * seconds)
    with TansuBroker() as broker:
        settings = Settings(
            bootstrap=broker.bootstrap, data_dir=data_dir, sink_flush_interval_s=flush_s
        )
        ensure_topics(broker.bootstrap, settings.layout.specs())
        env = {"LLMWATCH_BOOTSTRAP": broker.bootstrap, "LLMWATCH_DATA_DIR": str(data_dir),
               "LLMWATCH_LOG_LEVEL": "WARNING", "LLMWATCH_STORE": "memory://",
               "LLMWATCH_COMMIT_INTERVAL_S": str(commit_s)}  # fmt: skip
        worker = ChildProcess("worker", ["worker"], env, data_dir / "worker.log").start()
        # The sink in its own process, as deployed (chdb: it alone holds the folder until it stops).
        sink_env = {**env, "LLMWATCH_CLICKHOUSE_DSN": settings.dsn,
                    "LLMWATCH_SINK_FLUSH_INTERVAL_S": str(flush_s)}  # fmt: skip
        sink = ChildProcess("sink", ["sink"], sink_env, data_dir / "sink.log").start()
        # The worker starts, joins its group and takes the monitor partition before the timed phase.
        joined_by = datetime.now(UTC) + timedelta(seconds=warmup_s)
        warm = int(rate * WARM_TRAFFIC_S)
        generated = list(
            Simulator(5, default_scenario()).events(
                warm + events, joined_by, joined_by + timedelta(seconds=seconds)
            )
        )
        # Generating takes a while: the timeline starts once it is done and the worker has joined.
        begin = max(joined_by, datetime.now(UTC) + timedelta(seconds=1))
        # Warm-up traffic first (a fresh worker is slow on its first second of records), a pause,
        # then the measured events; only these count (sent at or after started_ms).
        measured_begin = begin + timedelta(seconds=WARM_TRAFFIC_S + WARM_PAUSE_S)
        planned = _at_steady_rate(generated[:warm], begin, rate) + _at_steady_rate(
            generated[warm:], measured_begin, rate
        )
        started_ms = int(measured_begin.timestamp() * 1000)
        publisher = Publisher(broker.bootstrap, settings.layout.events)
        for event in planned:
            wait = (event.end_time - datetime.now(UTC)).total_seconds()
            if wait > 0.001:
                time.sleep(wait)
            publisher.emit(event)
        publisher.flush(30)
        _wait_for_calls(broker.bootstrap, settings.layout.calls, warm + events)
        time.sleep(DRAIN_S + flush_s)  # the sink's last flush of the calls and their rollups
        sink.stop()  # a final flush and commit on SIGTERM
        worker.stop()
        client = connect(settings.dsn)
        calls = _quantiles(
            client,
            f"SELECT {QUANTILES}(toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli("
            "sent_at)), count() FROM llmwatch.llm_calls FINAL "
            "WHERE sent_at >= fromUnixTimestamp64Milli({since:Int64})",
            started_ms,
        )
        # The measure: emit (the bench emits each event at its end_time) to row visible.
        emitted = _quantiles(
            client,
            f"SELECT {QUANTILES}(toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli("
            "end_time)), count() FROM llmwatch.llm_calls FINAL "
            "WHERE sent_at >= fromUnixTimestamp64Milli({since:Int64})",
            started_ms,
        )
        sdk = _quantiles(
            client,
            f"SELECT {QUANTILES}(toUnixTimestamp64Milli(sent_at) - toUnixTimestamp64Milli("
            "end_time)), count() FROM llmwatch.llm_calls FINAL "
            "WHERE sent_at >= fromUnixTimestamp64Milli({since:Int64})",
            started_ms,
        )
        rollups = _quantiles(
            client,
            f"SELECT {QUANTILES}(toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli("
            "max_sent_at)), count() FROM llmwatch.llm_rollup_1m FINAL "
            "WHERE max_sent_at >= fromUnixTimestamp64Milli({since:Int64})",
            started_ms,
        )
        stages = _stages(broker.bootstrap, settings.layout, client, started_ms, dump)
        client.close()
    shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "rate_events_per_s": rate,
        "seconds": seconds,
        "worker_commit_interval_s": commit_s,
        "sink_flush_interval_s": flush_s,
        "warmup_s": warmup_s,
        "events_emitted": events,
        "call_rows": calls[3],
        "call_emit_to_visible_ms_p50_p90_p99": emitted[:3],
        "call_send_to_visible_ms_p50_p90_p99": calls[:3],
        # emit (at the event's end_time) to the SDK's send: outside the pipeline's freshness.
        "sdk_emit_to_send_ms_p50_p90_p99": sdk[:3],
        "rollup_rows": rollups[3],
        "rollup_send_to_visible_ms_p50_p90_p99": rollups[:3],
        "stages": stages,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=5_000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--commit-interval", type=float, default=0.5, help="worker, seconds")
    parser.add_argument("--sink-flush", type=float, default=0.25, help="sink, seconds")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before emitting")
    parser.add_argument("--dump", type=Path, help="write each call's stage times (CSV) here")
    args = parser.parse_args()
    results = run(
        args.rate, args.seconds, args.commit_interval, args.sink_flush, args.warmup, args.dump
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "freshness.json").write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:34} {value}")


if __name__ == "__main__":
    main()
