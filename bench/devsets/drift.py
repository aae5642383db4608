"""Calibration of embedding drift on generated topic traffic (tests/unit/streams/drift/test_calibration.py
and bench/bench_drift.py).

The texts come from our own topic generator (``producers.simulator.topics``: templates and vocabularies
written for llmwatch, not the simulator's guardrail sentences), embedded once with the drift monitor's
encoder into a pool per topic. A *window* of a scope draws ``window_texts`` prompts from its service's
topic mix (with replacement from the pool); a *shift* sends a share of one scope's window to a
held-back topic no service uses. Each run compares every scope's window with a fresh reference of
``reference_texts`` prompts (the trailing reference's sample size), with a topic model fit on another
draw (the monitor fits it once, on an earlier reference), and applies Benjamini-Hochberg across the
scopes' results exactly as the monitor does. A scope is *flagged* when any of its tests is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from producers.simulator.topics import DEFAULT_TOPIC_MIX, HELD_BACK_TOPICS, TopicTexts
from streams.drift.embedding import (
    EffectFloors,
    EmbeddingSample,
    SampledText,
    TopicModel,
    compare_samples,
    flag,
    priority,
)

__all__ = ["Calibration", "draw_window", "embed_pools", "run_windows", "sample_of"]

Vectors = npt.NDArray[np.float32]
POOL_PER_TOPIC: Final = 160
WINDOW_TEXTS: Final = 300  # the documented window: 300 sampled prompts per scope
REFERENCE_TEXTS: Final = 500  # the sample size of a reference (drift_sample_size)
MIN_SAMPLES: Final = 200
TOPICS: Final = 8
FDR: Final = 0.01
SCOPES: Final = 3  # the first three services of the default topic mix
REFIT_EVERY: Final = 10  # windows between topic-model fits (the monitor keeps one per scope)


def embed_pools(
    encoder: Any, per_topic: int = POOL_PER_TOPIC, seed: int = 11
) -> dict[str, Vectors]:
    """``per_topic`` generated prompts per topic (every topic the mix uses, and the held-back ones),
    embedded."""
    texts = TopicTexts(seed)
    used = {t for s in DEFAULT_TOPIC_MIX.services[:SCOPES] for t in DEFAULT_TOPIC_MIX.shares(s)}
    topics = sorted(used | set(HELD_BACK_TOPICS))
    prompts = [texts.prompt(topic) for topic in topics for _ in range(per_topic)]
    vectors = np.asarray(encoder.encode(prompts), dtype=np.float32)
    return {topic: vectors[i * per_topic : (i + 1) * per_topic] for i, topic in enumerate(topics)}


@dataclass(frozen=True, slots=True)
class Calibration:
    window_texts: int = WINDOW_TEXTS
    reference_texts: int = REFERENCE_TEXTS
    min_samples: int = MIN_SAMPLES
    topics: int = TOPICS
    fdr: float = FDR
    permutations: int = 200
    floors: EffectFloors = field(default_factory=EffectFloors)


def draw_window(
    rng: np.random.Generator,
    pools: Mapping[str, Vectors],
    mix: Mapping[str, float],
    n: int,
    shift: float = 0.0,
    new_topic: str | None = None,
) -> Vectors:
    moved = round(shift * n) if new_topic is not None else 0
    names = list(mix)
    picks = rng.choice(len(names), size=n - moved, p=np.array([mix[t] for t in names]))
    parts = [
        pools[names[t]][rng.integers(0, len(pools[names[t]]), int(np.sum(picks == t)))]
        for t in range(len(names))
    ]
    if moved and new_topic is not None:
        parts.append(pools[new_topic][rng.integers(0, len(pools[new_topic]), moved)])
    return np.concatenate(parts)


def sample_of(vectors: Vectors, tag: str, capacity: int) -> EmbeddingSample:
    sample = EmbeddingSample(capacity)
    for index, vector in enumerate(vectors):
        event = f"{tag}-{index}"
        sample.add(SampledText(priority(event), event, vector))
    return sample


def run_windows(
    pools: Mapping[str, Vectors],
    windows: int,
    *,
    shift: float = 0.0,
    seed: int = 0,
    calibration: Calibration = Calibration(),
) -> list[dict[str, Any]]:
    """``windows`` evaluations of every scope; with ``shift`` > 0 the first scope's window sends that
    share to a held-back topic (rotating over them). One row per (window, scope): whether it was
    flagged, and by which tests."""
    rng = np.random.default_rng(seed)
    services: Sequence[str] = DEFAULT_TOPIC_MIX.services[:SCOPES]
    models: dict[str, TopicModel] = {}
    out = []
    for window in range(windows):
        results = []
        for index, service in enumerate(services):
            mix = DEFAULT_TOPIC_MIX.shares(service)
            if window % REFIT_EVERY == 0:
                fit = sample_of(
                    draw_window(rng, pools, mix, calibration.reference_texts), f"m{window}", 10**6
                )
                models[service] = TopicModel.fit(fit.texts(), calibration.topics)
            new_topic = HELD_BACK_TOPICS[window % len(HELD_BACK_TOPICS)] if index == 0 else None
            current = draw_window(rng, pools, mix, calibration.window_texts, shift, new_topic)
            reference = draw_window(rng, pools, mix, calibration.reference_texts)
            found, _shares = compare_samples(
                (service, "llm", "input"),
                sample_of(reference, f"r{window}", calibration.reference_texts),
                sample_of(current, f"c{window}", calibration.reference_texts),
                models[service],
                min_samples=calibration.min_samples,
                permutations=calibration.permutations,
                seed=window,
            )
            results += found
        flagged = flag(results, fdr=calibration.fdr, floors=calibration.floors)
        for service in services:
            tests = [r.feature for r in flagged if r.scope[0] == service and r.flagged]
            out.append(
                {
                    "window": window,
                    "service": service,
                    "shifted": service == services[0] and shift > 0,
                    "flagged": bool(tests),
                    "tests": tests,
                }
            )
    return out
