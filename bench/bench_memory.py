"""Memory per active series in the worker, measured with tracemalloc.

Reproduce: ``TZ=UTC .venv/bin/python -m bench.bench_memory``. Writes ``bench/results/memory.json``.

The worker's state, by kind of series:
- a record's rollups (its rows grouped by dimensions: counts, sums and three sketches per group, built
  over columns by ``streams.analytics.rollups.rollup_record``) live only while the record is
  processed, so their size bounds the transient memory per record: measured per 500-event record;
- an SLO's burn-rate windows (minute buckets for the longest window plus hour buckets for the
  error-budget period) live for the process's lifetime: measured after a full day of traffic;
- a top-K entry (one user in one minute bucket of the trailing hour).
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from producers.simulator import Simulator, default_scenario
from producers.wire import encode_batch_raw
from streams.analytics.record import RecordAnalytics
from streams.analytics.rollups import RecordRollups, rollup_record
from streams.analytics.topk import TopUsers
from streams.ingest.validate import SourcePosition, ingest_record
from streams.slo.burnrate import BurnRateEvaluator
from streams.slo.config import load_slo_file

RECORDS: Final = 20
RECORD_EVENTS: Final = 500
RESULTS: Final = Path(__file__).parent / "results"
SLO_FILE: Final = Path(__file__).parent.parent / "config" / "slos.yaml"


def measured(build: Callable[[], Any]) -> tuple[int, Any]:
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    kept = build()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return grown, kept


def rows_over(hours: float, events: int) -> list[dict[str, Any]]:
    end = datetime.now(UTC)
    sim = Simulator(9, default_scenario())
    raw = [e.to_json() for e in sim.events(events, end - timedelta(hours=hours), end)]
    record = encode_batch_raw(raw)
    analytics = RecordAnalytics()
    now_ms = int(end.timestamp() * 1000) + 1
    return ingest_record(
        record, SourcePosition("m", 0, 0), record_ms=now_ms, cost_fn=analytics.cost_fields
    ).rows


def main() -> None:
    rows = rows_over(24, 60_000)
    llm = [r for r in rows if r["span_kind"] == "llm"]

    def record_rollups() -> list[RecordRollups]:
        return [
            rollup_record(llm[i : i + RECORD_EVENTS], SourcePosition("m", 0, i))
            for i in range(0, RECORDS * RECORD_EVENTS, RECORD_EVENTS)
        ]

    rollup_bytes, _ = measured(record_rollups)
    slo_file = load_slo_file(SLO_FILE)

    def evaluator() -> BurnRateEvaluator:
        ev = BurnRateEvaluator(slo_file)
        ev.observe_many(sorted(rows, key=lambda r: r["end_time"]))
        return ev

    slo_bytes, ev = measured(evaluator)

    def top() -> TopUsers:
        users = TopUsers()
        for row in rows[-20_000:]:
            users.add(row["tenant_id"], row["user_id"], row["cost_usd"], row["start_time"])
        return users

    top_bytes, users = measured(top)
    entries = sum(len(b.entries) for b in users._buckets.values())
    results = {
        "rollup_bytes_per_500_event_record": round(rollup_bytes / RECORDS),
        "slo_count": len(slo_file.slos),
        "slo_windows_bytes_per_slo_after_24h": round(slo_bytes / len(slo_file.slos)),
        "slo_evaluator_reported_bytes": sum(ev.memory_bytes().values()),
        "topk_entries": entries,
        "topk_bytes_per_entry": round(top_bytes / max(entries, 1)),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory.json").write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:40} {value}")


if __name__ == "__main__":
    main()
