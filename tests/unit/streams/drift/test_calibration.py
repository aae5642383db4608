"""Embedding drift calibration on generated topic traffic with real MiniLM vectors (the drift monitor's
encoder): stationary traffic raises at most 1% false alarms across 100 windows x 3 scopes after
Benjamini-Hochberg, and a 20% shift to a new topic is flagged within the window in at least 90% of runs,
on the shifted scope only. The harness is bench/devsets/drift.py (docs/drift.md has the power curve)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.devsets.drift import SCOPES, embed_pools, run_windows
from streams.drift.embedding_monitor import ENCODER_MAX_TOKENS
from streams.text.embeddings import load_encoder

DRIFT_BACKEND = "onnx-int8"  # llmwatch.settings: drift_encoder's default


@pytest.fixture(scope="module")
def pools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    cache: Path = tmp_path_factory.mktemp("models")
    return embed_pools(load_encoder(ENCODER_MAX_TOKENS, backend=DRIFT_BACKEND, cache_dir=cache))


def test_stationary_traffic_raises_at_most_1_percent_false_alarms(
    pools: dict[str, np.ndarray],
) -> None:
    rows = run_windows(pools, 100, seed=11)
    assert len(rows) == 100 * SCOPES
    false_alarms = [row for row in rows if row["flagged"]]
    assert len(false_alarms) <= 0.01 * len(rows), false_alarms


def test_a_20_percent_shift_to_a_new_topic_is_flagged_within_the_window(
    pools: dict[str, np.ndarray],
) -> None:
    rows = run_windows(pools, 60, shift=0.2, seed=12)
    shifted = [row for row in rows if row["shifted"]]
    others = [row for row in rows if not row["shifted"]]
    assert sum(row["flagged"] for row in shifted) >= 0.9 * len(shifted)
    assert sum(row["flagged"] for row in others) <= 0.01 * len(others) + 1
