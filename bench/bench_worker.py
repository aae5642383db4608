"""Worker throughput against the raw-consume ceiling, measured in one run on the same records.

Reproduce: ``TZ=UTC .venv/bin/python -m bench.bench_worker [--events 200000]``.
Writes ``bench/results/worker.json`` and prints a table.

Measured:
1. ceiling: a bare confluent-kafka consumer reading every record and parsing it with orjson;
2. processor: ``streams.ingest.pipeline.RecordProcessor`` over the same records in-process (validation,
   redaction, pricing, rollups, encoding), no Kafka;
3. worker: the real Faust worker (``llmwatch worker`` subprocess, all analytics on: cost, rollups,
   sketches, the SLO monitor with config/slos.yaml, top-K) from the first to the last forwarded event,
   counted on the calls topic, with its peak resident memory (/proc VmRSS, sampled every 0.5 s);
4. sink: ``llmwatch sink``'s ClickHouseSink (in this process, chdb) over the backlog the worker left
   on the calls and rollups topics: call rows per second from the first insert to the last;
and the worker/ceiling ratio. Records are batch envelopes of 500 events (the SDK's largest; at a few
thousand events/s per process it sends ~10-40 per record, see bench_freshness).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson
from confluent_kafka import Consumer, Producer

from llmwatch.broker import TansuBroker
from llmwatch.processes import ChildProcess, build_sink
from llmwatch.settings import Settings
from producers.simulator import Simulator, default_scenario
from producers.wire import encode_batch_raw
from sinks.clickhouse import connect
from sinks.schema import CALLS_TABLE
from streams.admin import ensure_topics
from streams.analytics.record import RecordAnalytics
from streams.ingest.call_batches import decode_call_table
from streams.ingest.pipeline import RecordProcessor
from streams.ingest.validate import SourcePosition
from streams.monitor import StreamMonitor
from streams.slo.config import load_slo_file
from streams.topics import TopicLayout

RESULTS: Final = Path(__file__).parent / "results"
RSS_SAMPLE_S: Final = 0.5
SLO_FILE: Final = Path(__file__).parent.parent / "config" / "slos.yaml"
BATCH: Final = 500


def make_records(events: int, seed: int = 3) -> list[bytes]:
    now = datetime.now(UTC)
    sim = Simulator(seed, default_scenario())
    encoded = [e.to_json() for e in sim.events(events, now - timedelta(minutes=20), now)]
    return [encode_batch_raw(encoded[i : i + BATCH]) for i in range(0, len(encoded), BATCH)]


def produce(bootstrap: str, topic: str, records: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "compression.type": "lz4",
                         "message.max.bytes": 16 * 1024 * 1024})  # fmt: skip
    for i, record in enumerate(records):
        producer.produce(topic, record, key=b"tb-%d" % (i % 32))
        producer.poll(0)
    producer.flush(60)


def ceiling(bootstrap: str, topic: str, expected_events: int) -> float:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ceiling-{time.time_ns()}",
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                         "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([topic])
    seen, started = 0, None
    deadline = time.monotonic() + 120
    while seen < expected_events and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        started = started or time.perf_counter()
        seen += len(orjson.loads(message.value() or b"{}").get("events", []))
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return seen / elapsed if elapsed > 0 else 0.0


def processor_rate(records: list[bytes], events: int) -> float:
    """The worker's per-record work without Faust: processing plus the stream monitor."""
    analytics = RecordAnalytics()
    processor = RecordProcessor(analytics)
    now_ms = time.time_ns() // 1_000_000
    monitor = StreamMonitor(analytics, load_slo_file(SLO_FILE), instance="bench", started_ms=now_ms)
    started = time.perf_counter()
    for offset, record in enumerate(records):
        out = processor.process(record, SourcePosition("bench", 0, offset), now_ms)
        monitor.observe(out.rows)
    return events / (time.perf_counter() - started)


def worker_rate(
    bootstrap: str, layout: TopicLayout, events: int, log_dir: Path, compression: str
) -> WorkerRun:
    env = {
        "LLMWATCH_BOOTSTRAP": bootstrap,
        "LLMWATCH_TOPIC_PREFIX": layout.prefix,
        "LLMWATCH_STORE": "memory://",
        "LLMWATCH_DATA_DIR": str(log_dir),
        "LLMWATCH_LOG_LEVEL": "WARNING",
        "LLMWATCH_WORKER_ID": f"bench-{time.time_ns()}",
        "LLMWATCH_SLO_FILE": str(SLO_FILE),
        "LLMWATCH_WORKER_COMPRESSION": compression,
    }
    worker = ChildProcess("worker", ["worker"], env, log_dir / "worker.log").start()
    rss = PeakRss(worker.pid)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"count-{time.time_ns()}",
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000})  # fmt: skip
    consumer.subscribe([layout.calls])
    seen, first, last = 0, 0.0, 0.0
    deadline = time.monotonic() + 300
    try:
        while seen < events and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            first = first or time.perf_counter()
            seen += decode_call_table(message.value()).num_rows
            rss.sample()
            last = time.perf_counter()
    finally:
        consumer.close()
        worker.stop()
    # The first forwarded record marks the worker as started; its events are not timed.
    return WorkerRun((seen - BATCH) / (last - first) if last > first else 0.0, rss.peak_mib)


@dataclass(slots=True)
class WorkerRun:
    events_per_s: float
    peak_rss_mib: float


class PeakRss:
    """The largest resident set size of a process seen so far (Linux /proc), sampled at most every
    :data:`RSS_SAMPLE_S`."""

    def __init__(self, pid: int | None) -> None:
        self.path = Path(f"/proc/{pid}/status")
        self.peak_mib = 0.0
        self._next = 0.0

    def sample(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + RSS_SAMPLE_S
        try:
            for line in self.path.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.peak_mib = max(self.peak_mib, int(line.split()[1]) / 1024)
        except OSError:
            pass  # the process is gone


def sink_rate(bootstrap: str, layout: TopicLayout, events: int, data_dir: Path) -> float:
    """Rows/s the sink inserts into chdb: the worker's calls and rollups, read from the topics' start
    (the backlog the worker left), from the first inserted call to the last."""
    settings = Settings(
        bootstrap=bootstrap,
        topic_prefix=layout.prefix,
        partitions=layout.partitions,
        data_dir=data_dir,
        sink_group=f"bench-sink-{time.time_ns()}",
    )
    client = connect(settings.dsn)
    sink = build_sink(settings, client)
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    first = last = 0.0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        written = sink.stats().written(CALLS_TABLE)
        if written and not first:
            first, first_rows = time.perf_counter(), written
        if written >= events:
            last = time.perf_counter()
            break
        time.sleep(0.05)
    stop.set()
    thread.join(60)
    client.close()
    return (events - first_rows) / (last - first) if last > first else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--compression", default="lz4", help="the worker's output compression")
    args = parser.parse_args()
    records = make_records(args.events)
    events = sum(len(orjson.loads(r)["events"]) for r in records)
    layout = TopicLayout(prefix=f"bench{time.time_ns() % 10_000_000}", partitions=4)
    log_dir = Path("/tmp") / f"llmwatch-bench-{os.getpid()}"
    with TansuBroker() as broker:
        ensure_topics(broker.bootstrap, layout.specs())
        produce(broker.bootstrap, layout.events, records)
        results: dict[str, Any] = {
            "events": events,
            "records": len(records),
            "events_per_record": BATCH,
            "ceiling_consume_parse_events_per_s": round(
                ceiling(broker.bootstrap, layout.events, events)
            ),
            "processor_events_per_s": round(processor_rate(records, events)),
            "worker_compression": args.compression,
        }
        run = worker_rate(broker.bootstrap, layout, events, log_dir, args.compression)
        results |= {
            "worker_events_per_s": round(run.events_per_s),
            "worker_peak_rss_mib": round(run.peak_rss_mib),
            "sink_call_rows_per_s": round(sink_rate(broker.bootstrap, layout, events, log_dir)),
            "cpu_count": os.cpu_count(),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    results["worker_to_ceiling_ratio"] = round(
        results["worker_events_per_s"] / results["ceiling_consume_parse_events_per_s"], 3
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "worker.json").write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:40} {value}")


if __name__ == "__main__":
    main()
