"""End-to-end freshness: from emit to the row being visible in ClickHouse, at a stated rate.

Reproduce: ``TZ=UTC .venv/bin/python -m bench.bench_freshness [--rate 5000 --seconds 30]``.
Writes ``bench/results/freshness.json``.

Runs the embedded pipeline (Tansu, the Faust worker and the sink as subprocesses, the sink on chdb)
with the SDK emitting at ``--rate`` events/s. The events are generated before the timed phase (so the
simulator does not compete for the two cores), with timestamps laid out over the run; each is emitted
when its ``end_time`` arrives. Freshness of a call row is ``ingested_at - sent_at`` (SDK send to row
visible); of a 1-minute rollup row ``ingested_at - max_sent_at`` (its newest event). Both are computed
in ClickHouse after the run. The SDK adds up to its 0.2 s flush interval before ``sent_at``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from confluent_kafka import Consumer

from llmwatch.broker import TansuBroker
from llmwatch.processes import ChildProcess
from llmwatch.settings import Settings
from producers.sdk import Publisher
from producers.simulator import Simulator, default_scenario
from sinks.clickhouse import connect
from streams.admin import ensure_topics
from streams.ingest.call_batches import decode_call_table

RESULTS: Final = Path(__file__).parent / "results"
QUANTILES: Final = "quantiles(0.5, 0.9, 0.99)"
DRAIN_S: Final = 3.0


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


def run(
    rate: float, seconds: float, commit_s: float, flush_s: float, warmup_s: float
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
        begin = datetime.now(UTC) + timedelta(seconds=warmup_s)
        planned = sorted(
            Simulator(5, default_scenario()).events(
                events, begin, begin + timedelta(seconds=seconds)
            ),
            key=lambda e: e.end_time,
        )
        time.sleep(max((begin - datetime.now(UTC)).total_seconds(), 0))  # the worker joins
        started_ms = time.time_ns() // 1_000_000
        publisher = Publisher(broker.bootstrap, settings.layout.events)
        for event in planned:
            wait = (event.end_time - datetime.now(UTC)).total_seconds()
            if wait > 0.001:
                time.sleep(wait)
            publisher.emit(event)
        publisher.flush(30)
        _wait_for_calls(broker.bootstrap, settings.layout.calls, events)
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
        "call_freshness_ms_p50_p90_p99": calls[:3],
        # emit (at the event's end_time) to the SDK's send: outside the pipeline's freshness.
        "sdk_emit_to_send_ms_p50_p90_p99": sdk[:3],
        "rollup_rows": rollups[3],
        "rollup_freshness_ms_p50_p90_p99": rollups[:3],
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=5_000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--commit-interval", type=float, default=0.5, help="worker, seconds")
    parser.add_argument("--sink-flush", type=float, default=0.25, help="sink, seconds")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before emitting")
    args = parser.parse_args()
    results = run(args.rate, args.seconds, args.commit_interval, args.sink_flush, args.warmup)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "freshness.json").write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:34} {value}")


if __name__ == "__main__":
    main()
