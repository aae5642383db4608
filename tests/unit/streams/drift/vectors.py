"""Synthetic embedding clouds for the drift tests: unit vectors around topic directions.

Real MiniLM vectors are used where the encoder matters (tests/unit/streams/drift/test_calibration.py);
these make the statistics tests fast and exact about which texts belong to which topic."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from streams.drift.embedding import EmbeddingSample, SampledText, priority

DIMENSIONS = 384
NOISE = 0.8


def directions(count: int, seed: int = 0) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(count, DIMENSIONS))
    return np.asarray(centers / np.linalg.norm(centers, axis=1, keepdims=True), dtype=np.float64)


def cloud(
    rng: np.random.Generator, centers: npt.NDArray[np.float64], n: int
) -> npt.NDArray[np.float32]:
    """``n`` unit vectors, each near a center drawn uniformly from ``centers``."""
    picked = centers[rng.integers(0, len(centers), n)]
    vectors = picked + NOISE * rng.normal(size=(n, DIMENSIONS)) / np.sqrt(DIMENSIONS)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32)


def sample_of(
    vectors: npt.NDArray[np.float32], prefix: str, capacity: int = 500
) -> EmbeddingSample:
    sample = EmbeddingSample(capacity)
    for index, vector in enumerate(vectors):
        event = f"{prefix}-{index}"
        sample.offered += 1
        sample.add(SampledText(priority(event), event, vector))
    return sample
