"""Embedding drift statistics on synthetic topic clouds: the bottom-k sample, the topic model, the MMD
test's calibration, and the three tests together."""

from __future__ import annotations

import numpy as np
import pytest

from streams.drift.embedding import (
    NOVEL,
    EmbeddingSample,
    SampledText,
    TopicModel,
    compare_samples,
    flag,
    mmd_test,
    priority,
    topic_rows,
)
from tests.unit.streams.drift.vectors import cloud, directions, sample_of

SCOPE = ("support-bot", "llm", "input")
CENTERS = directions(9)
KNOWN, NEW = CENTERS[:8], CENTERS[8:]


def test_the_sample_does_not_depend_on_arrival_order_and_merges_to_the_sample_of_the_union() -> (
    None
):
    rng = np.random.default_rng(1)
    vectors = cloud(rng, KNOWN, 900)
    forward = sample_of(vectors, "e", capacity=100)
    backward = EmbeddingSample(100)
    for index in reversed(range(len(vectors))):
        backward.add(SampledText(priority(f"e-{index}"), f"e-{index}", vectors[index]))
    assert [t.event_id for t in forward.texts()] == [t.event_id for t in backward.texts()]
    halves = sample_of(vectors[:400], "a", 100), sample_of(vectors[400:], "b", 100)
    merged = EmbeddingSample(100)
    for half in halves:
        merged.merge(half)
    union = EmbeddingSample(100)
    for prefix, part in (("a", vectors[:400]), ("b", vectors[400:])):
        for index, vector in enumerate(part):
            union.add(SampledText(priority(f"{prefix}-{index}"), f"{prefix}-{index}", vector))
    assert [t.event_id for t in merged.texts()] == [t.event_id for t in union.texts()]
    assert merged.offered == 900 and len(merged) == 100


def test_would_take_admits_only_what_enters_the_sample() -> None:
    sample = sample_of(cloud(np.random.default_rng(2), KNOWN, 50), "x", capacity=10)
    largest = max(t.priority for t in sample.texts())
    assert sample.would_take(largest - 1) and not sample.would_take(largest + 1)
    with pytest.raises(ValueError, match="capacity must be >= 2, got 1"):
        EmbeddingSample(1)


def test_mmd_p_values_are_calibrated_under_the_null_and_small_under_a_shift() -> None:
    rng = np.random.default_rng(3)
    null = [
        mmd_test(cloud(rng, KNOWN, 150), cloud(rng, KNOWN, 150), permutations=100, seed=i)[1]
        for i in range(60)
    ]
    assert np.mean(np.array(null) < 0.05) <= 0.12
    assert np.mean(np.array(null) < 0.5) == pytest.approx(0.5, abs=0.2)
    shifted = np.concatenate([cloud(rng, KNOWN, 120), cloud(rng, NEW, 30)])
    _mmd, p_value = mmd_test(cloud(rng, KNOWN, 150), shifted, permutations=100)
    assert p_value < 1e-4
    with pytest.raises(ValueError, match="permutations must be >= 10, got 5"):
        mmd_test(shifted, shifted, permutations=5)


def test_the_topic_model_finds_novel_vectors_and_names_bad_sizes() -> None:
    rng = np.random.default_rng(4)
    model = TopicModel.fit(sample_of(cloud(rng, KNOWN, 500), "r").texts(), 8)
    labels = model.assign(np.concatenate([cloud(rng, KNOWN, 200), cloud(rng, NEW, 200)]))
    assert np.mean(labels[:200] == NOVEL) < 0.05 and np.mean(labels[200:] == NOVEL) > 0.95
    with pytest.raises(ValueError, match="fitting 8 topics needs >= 32 texts, got 10"):
        TopicModel.fit(sample_of(cloud(rng, KNOWN, 10), "s").texts(), 8)


def _compare(current: np.ndarray, seed: int) -> list:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    reference = sample_of(cloud(rng, KNOWN, 1500), f"r{seed}")
    model = TopicModel.fit(sample_of(cloud(rng, KNOWN, 500), f"m{seed}").texts(), 8)
    results, shares = compare_samples(
        SCOPE, reference, sample_of(current, f"c{seed}"), model, min_samples=200, seed=seed
    )
    assert shares is not None
    rows = topic_rows(shares)
    assert sum(r["current_share"] for r in rows) == pytest.approx(1.0)  # type: ignore[misc]
    return flag(results, fdr=0.01)


def test_a_20_percent_new_topic_is_flagged_by_every_test_with_examples() -> None:
    rng = np.random.default_rng(5)
    current = np.concatenate([cloud(rng, KNOWN, 400), cloud(rng, NEW, 100)])
    flagged = {r.feature: r for r in _compare(current, 5)}
    assert all(r.flagged for r in flagged.values()), flagged
    assert flagged["novel"].statistic == pytest.approx(0.2, abs=0.06)
    assert "novel:" in flagged["novel"].top_shift


def test_stationary_windows_are_not_flagged() -> None:
    flags = sum(
        r.flagged
        for seed in range(10)
        for r in _compare(cloud(np.random.default_rng(100 + seed), KNOWN, 500), seed)
    )
    assert flags == 0


def test_novel_examples_name_event_ids_and_carry_text_only_when_stored() -> None:
    rng = np.random.default_rng(6)
    model = TopicModel.fit(sample_of(cloud(rng, KNOWN, 500), "m").texts(), 8)
    current = EmbeddingSample(500)
    for index, vector in enumerate(np.concatenate([cloud(rng, KNOWN, 200), cloud(rng, NEW, 60)])):
        stored = "a question about <EMAIL>" if index % 2 else None
        current.add(SampledText(priority(f"c-{index}"), f"c-{index}", vector, stored))
    _results, shares = compare_samples(
        SCOPE, sample_of(cloud(rng, KNOWN, 600), "r"), current, model, min_samples=100
    )
    assert shares is not None and 2 <= len(shares.examples) <= 4
    *texts, nearest = shares.examples
    assert nearest.startswith("nearest reference topic: ")
    assert 0 <= int(nearest.split(": ")[1].split()[0]) < 8
    for example in texts:
        assert example.startswith("event c-")
        index = int(example.split()[1].removeprefix("c-").rstrip(":"))
        assert index >= 200  # from the new topic
        assert example.endswith(": a question about <EMAIL>") == bool(index % 2)


def test_small_samples_give_no_verdict() -> None:
    rng = np.random.default_rng(7)
    model = TopicModel.fit(sample_of(cloud(rng, KNOWN, 500), "m").texts(), 8)
    results, shares = compare_samples(
        SCOPE,
        sample_of(cloud(rng, KNOWN, 500), "r"),
        sample_of(cloud(rng, KNOWN, 50), "c"),
        model,
        min_samples=100,
    )
    assert results == [] and shares is None


def test_flag_names_a_bad_fdr() -> None:
    with pytest.raises(ValueError, match=r"fdr must be in \(0, 1\), got 1\.5"):
        flag([], fdr=1.5)
