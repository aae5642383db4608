"""Run every benchmark in turn (``make bench``); each writes bench/results/<name>.json.

The figures and how to read them are in docs/performance.md. Benchmarks are not tests: they assert
nothing and take minutes; run them on an otherwise idle machine.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Final

BENCHMARKS: Final = (
    "bench.bench_sdk_emit",
    "bench.bench_cost",
    "bench.bench_sketches",
    "bench.bench_memory",
    "bench.bench_worker",
    "bench.bench_freshness",
    "bench.bench_prompts",
    "bench.bench_embeddings",
    "bench.bench_drift",
)


def main() -> int:
    failed = []
    for module in BENCHMARKS:
        print(f"== {module}", flush=True)
        if subprocess.run([sys.executable, "-m", module], check=False).returncode != 0:
            failed.append(module)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
