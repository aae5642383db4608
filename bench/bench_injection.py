"""Prompt-injection detector on the held-out dev split: accuracy, speed, and a packaged baseline.

Run: ``.venv/bin/python -m bench.bench_injection``. Prints a table and writes
``bench/results/injection.json``. The dev split of ``bench.devsets.injection`` (seed 0) is never trained
on (``bench/train_injection.py`` uses the train split). Reported: AUC, TPR at FPR <= 1% (best threshold on
the dev scores: an optimistic figure) and TPR/FPR at the shipped threshold (the honest one), recall per
family, variant and source, for the pattern layer alone, the cheap head alone (no encoder) and the full
cascade. Speed: texts/s of ``score_batch`` over ~200-word prompts (batches of 32, torch on 2 threads,
best of ``REPEATS``; the machine is shared, so timings are noisy), the share of chunks that needed the
encoder, and the pattern layer's p50/p99 latency per 200-word prompt on one core (best of ``REPEATS`` per
text). Baseline:
``metatronnanoguard`` 0.1.0 (nanoguard) on a stratified subsample; ``jailguard`` is not run (it downloads
its weights at run time, which fails offline).
"""

from __future__ import annotations

import json
import platform
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from bench.devsets.injection import LabelledPrompt, injection_devset, split_devset
from producers.guard import injection_signals
from streams.text.injection import InjectionDetector

__all__ = ["main"]

RESULTS: Final = Path(__file__).parent / "results" / "injection.json"
SEED: Final = 0
REPEATS: Final = 3
BATCH: Final = 32
SPEED_TEXTS: Final = 128
SPEED_WORDS: Final = 200
BASELINE_SAMPLE: Final = 100
MAX_FPR: Final = 0.01


def _tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, max_fpr: float = MAX_FPR) -> float:
    negatives = np.sort(scores[labels == 0])[::-1]
    allowed = int(max_fpr * len(negatives))
    threshold = negatives[allowed] if allowed < len(negatives) else -np.inf
    return float((scores[labels == 1] > threshold).mean())


def _rates(labels: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    return {
        "tpr": float(flagged[labels == 1].mean()),
        "fpr": float(flagged[labels == 0].mean()),
        "false_positives": int(flagged[labels == 0].sum()),
        "negatives": int((labels == 0).sum()),
    }


def _recall_by(dev: Sequence[LabelledPrompt], flagged: np.ndarray, key: str) -> dict[str, Any]:
    hits: dict[str, list[bool]] = defaultdict(list)
    for example, flag in zip(dev, flagged.tolist(), strict=True):
        name = str(getattr(example, key))
        hits[f"{'attack' if example.label else 'benign'}/{name}"].append(bool(flag))
    return {
        k: {"flagged": round(float(np.mean(v)), 3), "n": len(v)} for k, v in sorted(hits.items())
    }


def _summary(
    dev: Sequence[LabelledPrompt], scores: np.ndarray, flagged: np.ndarray
) -> dict[str, Any]:
    labels = np.array([e.label for e in dev])
    return {
        "auc": round(float(roc_auc_score(labels, scores)), 4),
        "tpr_at_fpr_1pct_best_threshold": round(_tpr_at_fpr(labels, scores), 4),
        "at_shipped_threshold": _rates(labels, flagged),
    }


def _offsets_hit(dev: Sequence[LabelledPrompt], verdicts: Sequence[Any]) -> float:
    """Share of flagged embedded attacks whose reported chunk overlaps the payload."""
    hits = []
    for example, verdict in zip(dev, verdicts, strict=True):
        if example.label and example.span != (0, 0) and verdict.flagged:
            lo, hi = example.span
            hits.append(verdict.start < hi and lo < verdict.end)
    return float(np.mean(hits)) if hits else float("nan")


def _speed_texts(dev: Sequence[LabelledPrompt]) -> list[str]:
    rng = random.Random(SEED)
    long = [e.text for e in dev if e.variant == "long"]
    short = [e.text for e in dev if e.source == "prompt" and e.variant != "long"]
    texts: list[str] = []
    while len(texts) < SPEED_TEXTS:
        base = rng.choice(long)
        words = base.split()[:SPEED_WORDS]
        if rng.random() < 0.2:  # a fifth carry an attack-looking or hard-negative sentence
            words[-len(words) // 3 :] = rng.choice(short).split() + words[-len(words) // 3 :]
        texts.append(" ".join(words[:SPEED_WORDS]))
    return texts


def _best_rate(run: Callable[[], object], count: int) -> float:
    best = min(_timed(run) for _ in range(REPEATS))
    return count / best


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _pattern_latency(text: str) -> float:
    """The pattern layer's time on one text: best of ``REPEATS`` (other helpers share these cores)."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        injection_signals(text)
        best = min(best, time.perf_counter() - start)
    return best


def _speed(
    detector: InjectionDetector, cheap: InjectionDetector, texts: list[str]
) -> dict[str, Any]:
    def batches(d: InjectionDetector) -> Callable[[], object]:
        return lambda: [d.score_batch(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)]

    detector.score_batch(texts[:4])
    latencies = [_pattern_latency(text) for text in texts]
    scored = detector._cheap(texts)  # the share of chunks the cascade sends to the encoder
    low, high = detector._heads.cascade_band
    encoded = float(((scored.score >= low) & (scored.score <= high)).mean())
    return {
        "texts": len(texts),
        "words_per_text": SPEED_WORDS,
        "batch_size": BATCH,
        "torch_threads": torch.get_num_threads(),
        "cascade_texts_per_s": round(_best_rate(batches(detector), len(texts)), 1),
        "cheap_only_texts_per_s": round(_best_rate(batches(cheap), len(texts)), 1),
        "share_of_chunks_encoded": round(encoded, 3),
        "pattern_layer_ms_p50": round(float(np.percentile(latencies, 50)) * 1e3, 3),
        "pattern_layer_ms_p99": round(float(np.percentile(latencies, 99)) * 1e3, 3),
    }


def _baseline(dev: Sequence[LabelledPrompt]) -> dict[str, Any]:
    try:
        from nanoguard import NanoGuard
    except ImportError as exc:
        return {"error": f"metatronnanoguard not importable: {exc}"}
    rng = random.Random(SEED)
    attacks = [e for e in dev if e.label]
    benign = [e for e in dev if not e.label]
    sample = rng.sample(attacks, BASELINE_SAMPLE // 2) + rng.sample(benign, BASELINE_SAMPLE // 2)
    guard = NanoGuard(device="cpu")
    start = time.perf_counter()
    scores = np.array([guard.scan(e.text).injection_score for e in sample])
    rate = len(sample) / (time.perf_counter() - start)
    flagged = scores >= 0.5
    result = _summary(sample, scores, flagged)
    result.update({"sample": len(sample), "texts_per_s": round(rate, 1), "threshold": 0.5})
    return result


def _ours_on(sample: Sequence[LabelledPrompt], detector: InjectionDetector) -> dict[str, Any]:
    verdicts = detector.score_batch([e.text for e in sample], [e.source for e in sample])
    scores = np.array([v.score for v in verdicts])
    return _summary(sample, scores, np.array([v.flagged for v in verdicts]))


def _evaluate(dev: Sequence[LabelledPrompt], detector: InjectionDetector) -> dict[str, Any]:
    verdicts = detector.score_batch([e.text for e in dev], [e.source for e in dev])
    scores = np.array([v.score for v in verdicts])
    flagged = np.array([v.flagged for v in verdicts])
    result = _summary(dev, scores, flagged)
    result["by_family"] = _recall_by(dev, flagged, "family")
    result["by_variant"] = _recall_by(dev, flagged, "variant")
    result["by_source"] = _recall_by(dev, flagged, "source")
    result["worst_chunk_overlaps_payload"] = round(_offsets_hit(dev, verdicts), 3)
    category_ok = [
        v.category is not None for e, v in zip(dev, verdicts, strict=True) if e.label and v.flagged
    ]
    result["flagged_attacks_with_category"] = round(float(np.mean(category_ok)), 3)
    return result


def _patterns_only(dev: Sequence[LabelledPrompt]) -> dict[str, Any]:
    scores = np.array([injection_signals(e.text).score for e in dev])
    return _summary(dev, scores, scores >= 0.5) | {"threshold": 0.5}


def _print(results: dict[str, Any]) -> None:
    print(f"dev split: {results['dev_texts']} texts ({results['dev_attacks']} attacks)")
    print(f"{'detector':<28}{'AUC':>8}{'TPR@FPR1%':>11}{'TPR':>8}{'FPR':>8}")
    for name in (
        "patterns_only",
        "cheap_head_only",
        "cascade",
        "nanoguard_sample",
        "cascade_same_sample",
    ):
        row = results[name]
        if "auc" not in row:
            print(f"{name:<28}{row}")
            continue
        rates = row["at_shipped_threshold"]
        print(
            f"{name:<28}{row['auc']:>8.3f}{row['tpr_at_fpr_1pct_best_threshold']:>11.3f}"
            f"{rates['tpr']:>8.3f}{rates['fpr']:>8.3f}"
        )
    print("speed:", json.dumps(results["speed"]))
    print("nanoguard texts/s:", results["nanoguard_sample"].get("texts_per_s"))


def main() -> None:
    torch.set_num_threads(2)
    _, dev = split_devset(injection_devset(SEED), seed=SEED)
    detector = InjectionDetector()
    cheap = InjectionDetector(use_encoder=False)
    baseline = _baseline(dev)
    rng = random.Random(SEED)
    sample = rng.sample([e for e in dev if e.label], BASELINE_SAMPLE // 2)
    sample += rng.sample([e for e in dev if not e.label], BASELINE_SAMPLE // 2)
    results = {
        "machine": f"{platform.machine()}, {platform.python_version()}, 2 shared cores",
        "dev_texts": len(dev),
        "dev_attacks": sum(e.label for e in dev),
        "shipped_threshold": detector.threshold("prompt"),
        "patterns_only": _patterns_only(dev),
        "cheap_head_only": _evaluate(dev, cheap),
        "cascade": _evaluate(dev, detector),
        "nanoguard_sample": baseline,
        "cascade_same_sample": _ours_on(sample, detector),
        "jailguard": "not run: it downloads its weights at run time, which fails offline",
        "speed": _speed(detector, cheap, _speed_texts(dev)),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    _print(results)


if __name__ == "__main__":
    main()
