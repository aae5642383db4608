"""Cost of the latency sketches (streams/analytics/sketches.py): per-event add, batch throughput, size.

Run: ``.venv/bin/python bench/bench_sketches.py``. Prints a table and writes
``bench/results/sketches.json``. Times are the best of several repeats on this (shared, 2-core)
machine; ClickHouse storage is measured on an in-process chdb folder in a temporary directory.
"""

from __future__ import annotations

import json
import platform
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from ddsketch import DDSketch

from streams.analytics.sketches import RELATIVE_ACCURACY, LatencySketch, bin_key

__all__ = ["main"]

RESULTS: Final[Path] = Path(__file__).parent / "results" / "sketches.json"
REPEATS: Final[int] = 5
SCALAR_EVENTS: Final[int] = 100_000
BATCH_SIZES: Final[tuple[int, ...]] = (10, 100, 1_000, 10_000, 100_000)
WINDOW_EVENTS: Final[tuple[int, ...]] = (10, 100, 1_000, 10_000, 100_000)
STORED_ROWS: Final[int] = 2_000
STORED_EVENTS_PER_ROW: Final[int] = 1_000
BYTES_PER_BIN: Final[int] = 4 + 8  # Map(Int32, UInt64) entry, uncompressed
MS_PER_HOUR: Final[float] = 3_600_000.0
QUANTILES: Final[tuple[float, ...]] = (0.5, 0.9, 0.95, 0.99, 0.999)
MIGRATION: Final[Path] = (
    Path(__file__).parents[1] / "sinks" / "migrations" / "0003_sketch_functions.sql"
)


def _statements(sql: str) -> list[str]:
    """Statements of a migration file: split on ';' at end of line, comment lines dropped."""
    parts = re.split(r";[ \t]*$", sql, flags=re.MULTILINE)
    code = [
        "\n".join(line for line in part.splitlines() if not line.strip().startswith("--"))
        for part in parts
    ]
    return [c.strip() for c in code if c.strip()]


def _latencies(n: int, seed: int = 0) -> npt.NDArray[np.float64]:
    return np.random.default_rng(seed).lognormal(mean=np.log(800.0), sigma=1.0, size=n)


def _best(run: Callable[[], object]) -> float:
    timings = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return min(timings)


def _scalar_add() -> dict[str, float]:
    values = _latencies(SCALAR_EVENTS).tolist()

    def ours() -> None:
        sketch = LatencySketch()
        for value in values:
            sketch.add(value)

    def reference() -> None:
        sketch = DDSketch(RELATIVE_ACCURACY)
        for value in values:
            sketch.add(value)

    return {
        "add_ns_per_event": _best(ours) / SCALAR_EVENTS * 1e9,
        "ddsketch_add_ns_per_event": _best(reference) / SCALAR_EVENTS * 1e9,
    }


def _batch_add() -> dict[str, float]:
    out: dict[str, float] = {}
    for size in BATCH_SIZES:
        batches = max(1, 200_000 // size)
        values = _latencies(size * batches).reshape(batches, size)

        def run(values: npt.NDArray[np.float64] = values) -> None:
            sketch = LatencySketch()
            for batch in values:
                sketch.add_many(batch)

        out[f"add_many_{size}_events_per_s"] = values.size / _best(run)
    return out


def _sizes() -> dict[str, float]:
    span = bin_key(MS_PER_HOUR) - bin_key(1.0) + 1
    out: dict[str, float] = {
        "bins_1ms_to_1h": float(span),
        "bytes_1ms_to_1h_all_bins_uncompressed": float(span * BYTES_PER_BIN),
    }
    for n in WINDOW_EVENTS:
        sketch = LatencySketch()
        sketch.add_many(_latencies(n, seed=n))
        out[f"bins_lognormal_{n}_events"] = float(sketch.num_bins)
    return out


def _operations() -> dict[str, float]:
    left, right = LatencySketch(), LatencySketch()
    left.add_many(_latencies(1_000, seed=1))
    right.add_many(_latencies(1_000, seed=2))

    def merge() -> None:
        target = LatencySketch.from_state(left.to_state())
        target.merge(right)

    return {
        "merge_plus_copy_us_1000_event_sketches": _best(merge) * 1e6,
        "to_state_us_1000_events": _best(left.to_state) * 1e6,
        "quantile_us_1000_events": _best(lambda: left.quantile(0.99)) * 1e6,
    }


def _clickhouse_storage() -> dict[str, float]:
    import clickhouse_connect

    rows: list[list[Any]] = []
    for i in range(STORED_ROWS):
        sketch = LatencySketch()
        sketch.add_many(_latencies(STORED_EVENTS_PER_ROW, seed=i))
        state = sketch.to_state()
        rows.append([i, state.bins, state.zero_count, state.count])
    with tempfile.TemporaryDirectory() as folder:
        client = clickhouse_connect.get_client(dsn=f"chdb://{folder}/ch")
        try:
            client.command(
                "CREATE TABLE s (id UInt32, bins Map(Int32, UInt64), zero_count UInt64, "
                "count UInt64) ENGINE = MergeTree ORDER BY id "
                "SETTINGS min_bytes_for_wide_part = 0"  # wide parts keep per-column sizes
            )
            client.insert("s", rows, column_names=["id", "bins", "zero_count", "count"])
            client.command("OPTIMIZE TABLE s FINAL")
            compressed, uncompressed = client.query(
                "SELECT sum(data_compressed_bytes), sum(data_uncompressed_bytes) "
                "FROM system.columns WHERE table = 's' AND name = 'bins'"
            ).result_rows[0]
            quantiles = ", ".join(f"llmwatch_quantile({q}, b, z)" for q in QUANTILES)
            merged_sql = (
                f"SELECT {quantiles} FROM "
                "(SELECT sumMap(bins) AS b, sum(zero_count) AS z FROM s GROUP BY id % 10)"
            )
            for statement in _statements(MIGRATION.read_text()):
                client.command(statement)
            query_s = _best(lambda: client.query(merged_sql))
        finally:
            client.close()
    return {
        "clickhouse_bins_bytes_per_row_compressed": compressed / STORED_ROWS,
        "clickhouse_bins_bytes_per_row_uncompressed": uncompressed / STORED_ROWS,
        "clickhouse_merge_10_groups_5_quantiles_ms": query_s * 1e3,
    }


def main() -> None:
    results: dict[str, Any] = {
        "relative_accuracy": RELATIVE_ACCURACY,
        "python": platform.python_version(),
        "numpy": np.__version__,
        **_scalar_add(),
        **_batch_add(),
        **_operations(),
        **_sizes(),
        "clickhouse_rows": STORED_ROWS,
        "clickhouse_events_per_row": STORED_EVENTS_PER_ROW,
        **_clickhouse_storage(),
    }
    width = max(map(len, results))
    for name, value in results.items():
        shown = f"{value:,.1f}" if isinstance(value, float) and value >= 1 else str(value)
        print(f"{name:<{width}}  {shown}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
