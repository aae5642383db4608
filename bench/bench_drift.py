"""Embedding drift: the power curve (shift size against detection rate) and the cost of one window.

Run: ``.venv/bin/python -m bench.bench_drift``. Embeds the generated topic pools with the drift
monitor's encoder (bench/devsets/drift.py), then:

- for each shift size (the share of one scope's window moved to a held-back topic), the share of
  windows where that scope is flagged, and the share of other scopes flagged (false alarms), over
  ``WINDOWS`` windows x 3 scopes;
- the time of one scope's comparison (MMD with its permutations, topic shares, novel share) and of a
  topic-model fit, at the default sample sizes.

Writes ``bench/results/drift.json`` and the plot ``docs/drift-power.png``.
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Final

import numpy as np

from bench.devsets.drift import (
    REFERENCE_TEXTS,
    WINDOW_TEXTS,
    draw_window,
    embed_pools,
    run_windows,
    sample_of,
)
from producers.simulator.topics import DEFAULT_TOPIC_MIX
from streams.drift.embedding import TopicModel, compare_samples
from streams.drift.embedding_monitor import ENCODER_MAX_TOKENS
from streams.text.embeddings import load_encoder

__all__ = ["main"]

RESULTS: Final = Path(__file__).parent / "results" / "drift.json"
PLOT: Final = Path(__file__).parents[1] / "docs" / "drift-power.png"
SHIFTS: Final = (0.0, 0.02, 0.04, 0.06, 0.08, 0.10, 0.15, 0.20, 0.30)
WINDOWS: Final = 60
COST_REPEATS: Final = 10


def _cost(pools: dict[str, np.ndarray]) -> dict[str, float]:
    rng = np.random.default_rng(0)
    mix = DEFAULT_TOPIC_MIX.shares(DEFAULT_TOPIC_MIX.services[0])
    reference = sample_of(draw_window(rng, pools, mix, REFERENCE_TEXTS), "r", REFERENCE_TEXTS)
    started = time.perf_counter()
    model = TopicModel.fit(reference.texts(), 8)
    fit_ms = (time.perf_counter() - started) * 1000
    times = []
    for repeat in range(COST_REPEATS):
        current = sample_of(
            draw_window(rng, pools, mix, WINDOW_TEXTS), f"c{repeat}", REFERENCE_TEXTS
        )
        started = time.perf_counter()
        compare_samples(("s", "llm", "input"), reference, current, model, min_samples=200)
        times.append((time.perf_counter() - started) * 1000)
    return {"compare_ms_median": float(np.median(times)), "topic_fit_ms": fit_ms}


def _plot(curve: list[dict[str, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shifts = [100 * row["shift"] for row in curve]
    figure, axes = plt.subplots(figsize=(6, 3.6), dpi=110)
    axes.plot(shifts, [row["detected"] for row in curve], marker="o", label="shifted scope flagged")
    axes.plot(
        shifts, [row["false_alarms"] for row in curve], marker="s", label="other scopes flagged"
    )
    axes.axhline(0.9, color="grey", linestyle=":", linewidth=1)
    axes.set_xlabel("share of one window moved to a new topic (%)")
    axes.set_ylabel("share of windows")
    axes.set_title(f"Embedding drift power ({WINDOW_TEXTS} texts/window, BH q <= 0.01)")
    axes.set_ylim(-0.02, 1.02)
    axes.legend(loc="center right")
    figure.tight_layout()
    figure.savefig(PLOT)


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        encoder = load_encoder(ENCODER_MAX_TOKENS, backend="onnx-int8", cache_dir=Path(cache))
        started = time.perf_counter()
        pools = embed_pools(encoder)
        embed_s = time.perf_counter() - started
    texts = sum(len(v) for v in pools.values())
    curve = []
    for index, shift in enumerate(SHIFTS):
        rows = run_windows(pools, WINDOWS, shift=shift, seed=100 + index)
        first = [r for r in rows if r["service"] == DEFAULT_TOPIC_MIX.services[0]]
        others = [r for r in rows if r["service"] != DEFAULT_TOPIC_MIX.services[0]]
        row = {
            "shift": shift,
            "detected": float(np.mean([r["flagged"] for r in first])),
            "false_alarms": float(np.mean([r["flagged"] for r in others])),
        }
        curve.append(row)
        print(
            f"shift {shift:5.0%}: flagged {row['detected']:.0%}, others {row['false_alarms']:.1%}"
        )
    cost = _cost(pools)
    print(
        f"pools: {texts} texts embedded in {embed_s:.1f} s ({texts / embed_s:.0f} texts/s); "
        f"one scope's comparison {cost['compare_ms_median']:.0f} ms, topic fit {cost['topic_fit_ms']:.0f} ms"
    )
    _plot(curve)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": platform.processor() or platform.machine(),
                "windows_per_shift": WINDOWS,
                "window_texts": WINDOW_TEXTS,
                "reference_texts": REFERENCE_TEXTS,
                "curve": curve,
                "pool_texts_per_s": texts / embed_s,
                **cost,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
