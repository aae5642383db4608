"""Accuracy and speed of the content filter (streams/text/content.py) on its dev set.

Run: ``.venv/bin/python -m bench.bench_content``. Prints a table and writes
``bench/results/content.json``. The dev set is ``bench/devsets/content.py`` (hand-written templates,
seeded); thresholds are chosen on its ``tune`` half and every figure is reported on its ``dev`` half.
TPR at FPR 1% takes the score threshold that lets at most 1% of the dev negatives through.
Speed: texts of about 200 words, batches of :data:`BATCH`, best of :data:`REPEATS` runs, torch at 2 threads
and at 1 (per core); the machine is shared, so timings are noisy.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import torch

from bench.devsets.content import BENCH_ALLOWED_DOMAINS, BENCH_TOPICS, DevExample, build, long_texts
from streams.text.content import ContentFilter
from streams.text.content_policy import (
    DEFAULT_POLICY,
    DEFAULT_TOXICITY_THRESHOLD,
    BannedTopic,
    ContentPolicy,
)

__all__ = ["bench_policy", "main"]

RESULTS: Final = Path(__file__).parent / "results" / "content.json"
BATCH: Final = 64
REPEATS: Final = 3
TARGET_FPR: Final = 0.01
THRESHOLD_GRID: Final = tuple(round(0.2 + 0.01 * i, 2) for i in range(61))


def _prf(predicted: Sequence[bool], gold: Sequence[bool]) -> dict[str, float | int]:
    tp = sum(p and g for p, g in zip(predicted, gold, strict=True))
    fp = sum(p and not g for p, g in zip(predicted, gold, strict=True))
    fn = sum(g and not p for p, g in zip(predicted, gold, strict=True))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return {
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def _tpr_at_fpr(positives: Sequence[float], negatives: Sequence[float]) -> dict[str, float]:
    """TPR when the threshold lets at most TARGET_FPR of the negatives score above it."""
    ranked = sorted(negatives, reverse=True)
    allowed = math.floor(TARGET_FPR * len(ranked))
    threshold = ranked[allowed] if allowed < len(ranked) else -math.inf
    tpr = sum(score > threshold for score in positives) / max(1, len(positives))
    return {"tpr": round(tpr, 3), "threshold": round(threshold, 4), "negatives": len(ranked)}


def _split(examples: Sequence[DevExample], kind: str, split: str) -> list[DevExample]:
    return [e for e in examples if e.kind == kind and e.split == split]


def _toxicity(content_filter: ContentFilter, examples: Sequence[DevExample]) -> dict[str, Any]:
    dev = _split(examples, "toxicity", "dev")
    scores = content_filter.toxicity([e.text for e in dev])
    gold = [bool(e.label) for e in dev]
    threshold = content_filter.policy.toxicity_threshold
    hard = [s for s, e in zip(scores, dev, strict=True) if e.group == "hard_negative"]
    return {
        "threshold": threshold,
        **_prf([s >= threshold for s in scores], gold),
        "hard_negative_fpr": round(sum(s >= threshold for s in hard) / max(1, len(hard)), 3),
        "at_fpr_1pct": _tpr_at_fpr(
            [s for s, g in zip(scores, gold, strict=True) if g],
            [s for s, g in zip(scores, gold, strict=True) if not g],
        ),
        "false_positives": [
            e.text for s, e in zip(scores, dev, strict=True) if s >= threshold and not e.label
        ],
        "misses": [e.text for s, e in zip(scores, dev, strict=True) if s < threshold and e.label][
            :10
        ],
    }


def _best_topic_threshold(sims: list[dict[str, float]], labels: Sequence[str]) -> float:
    """The grid threshold with the best micro F1 over all topics (tune half)."""

    def f1(threshold: float) -> float:
        tp = fp = fn = 0
        for row, label in zip(sims, labels, strict=True):
            hits = {name for name, sim in row.items() if sim >= threshold}
            tp += label in hits
            fp += len(hits - {label})
            fn += bool(label) and label not in hits
        return 2 * tp / max(1, 2 * tp + fp + fn)

    return max(THRESHOLD_GRID, key=f1)


def _topics(content_filter: ContentFilter, examples: Sequence[DevExample]) -> dict[str, Any]:
    tune = _split(examples, "topic", "tune")
    dev = _split(examples, "topic", "dev")
    tuned = _best_topic_threshold(
        content_filter.topic_similarities([e.text for e in tune]), [e.label for e in tune]
    )
    sims = content_filter.topic_similarities([e.text for e in dev])
    per_topic: dict[str, Any] = {}
    for topic in content_filter.policy.topics:
        gold = [e.label == topic.name for e in dev]
        scores = [row[topic.name] for row in sims]
        per_topic[topic.name] = {
            "threshold": topic.threshold,
            **_prf([s >= topic.threshold for s in scores], gold),
            "at_fpr_1pct": _tpr_at_fpr(
                [s for s, g in zip(scores, gold, strict=True) if g],
                [s for s, g in zip(scores, gold, strict=True) if not g],
            ),
        }
    best = [max(row.values()) for row in sims]
    on_topic = [bool(e.label) for e in dev]
    near = [e for e, row in zip(dev, sims, strict=True) if e.group == "near_topic"]
    near_hits = [
        e.text for e, row in zip(dev, sims, strict=True)
        if e.group == "near_topic" and any(row[t.name] >= t.threshold for t in content_filter.policy.topics)
    ]  # fmt: skip
    return {
        "tuned_threshold_on_tune_half": tuned,
        "per_topic": per_topic,
        "any_topic_at_fpr_1pct": _tpr_at_fpr(
            [s for s, g in zip(best, on_topic, strict=True) if g],
            [s for s, g in zip(best, on_topic, strict=True) if not g],
        ),
        "near_topic_fpr": round(len(near_hits) / max(1, len(near)), 3),
        "near_topic_false_positives": near_hits[:10],
    }


def _output_checks(content_filter: ContentFilter, examples: Sequence[DevExample]) -> dict[str, Any]:
    refusal = _split(examples, "refusal", "dev")
    verdicts = content_filter.check_batch([e.text for e in refusal], role="output")
    url = _split(examples, "url", "dev")
    url_verdicts = content_filter.check_batch([e.text for e in url], role="output")
    echo = _split(examples, "echo", "dev")
    echo_verdicts = content_filter.check_batch(
        [e.text for e in echo],
        role="output",
        prompts=[e.prompt for e in echo],
        input_spans=[e.input_spans for e in echo],
        output_spans=[e.output_spans for e in echo],
    )
    types = sorted({t for e in echo for t in e.label})
    return {
        "refusal": {
            **_prf([v.refusal for v in verdicts], [bool(e.label) for e in refusal]),
            "errors": [
                e.text for v, e in zip(verdicts, refusal, strict=True) if v.refusal != e.label
            ],
        },
        "unknown_url": {
            **_prf([v.unknown_urls > 0 for v in url_verdicts], [e.label > 0 for e in url]),
            "exact_count_accuracy": round(
                sum(v.unknown_urls == e.label for v, e in zip(url_verdicts, url, strict=True))
                / len(url),
                3,
            ),
        },
        "echoed_pii": {
            t: _prf(
                [t in {p.value for p in v.echoed_pii} for v in echo_verdicts],
                [t in e.label for e in echo],
            )
            for t in types
        },
    }


def _texts_per_second(run: Callable[[], object], count: int) -> float:
    best = math.inf
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return round(count / best, 1)


def _speed(content_filter: ContentFilter) -> dict[str, Any]:
    texts = long_texts(BATCH)
    content_filter.check_batch(texts[:4], role="output")  # load both models before timing
    result: dict[str, Any] = {"batch": BATCH, "words_per_text": 200, "repeats": REPEATS}
    for threads in (2, 1):
        torch.set_num_threads(threads)
        result[f"threads_{threads}"] = {
            "profanity_only": _texts_per_second(lambda: content_filter.toxicity(texts), len(texts)),
            "input_with_topics": _texts_per_second(
                lambda: content_filter.check_batch(texts), len(texts)
            ),
            "output_all_checks": _texts_per_second(
                lambda: content_filter.check_batch(texts, role="output"), len(texts)
            ),
        }
    return result


def bench_policy() -> ContentPolicy:
    """DEFAULT_POLICY's topics plus the dev set's competitor topic, default thresholds, dev-set domains."""
    extra = tuple(BannedTopic(name=name, examples=ex) for name, ex in BENCH_TOPICS.items())
    return ContentPolicy(
        topics=DEFAULT_POLICY.topics + extra, allowed_domains=BENCH_ALLOWED_DOMAINS
    )


def main() -> None:
    torch.set_num_threads(2)
    examples = build()
    content_filter = ContentFilter(bench_policy())
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpu_threads": torch.get_num_threads()},
        "default_toxicity_threshold": DEFAULT_TOXICITY_THRESHOLD,
        "toxicity": _toxicity(content_filter, examples),
        "topics": _topics(content_filter, examples),
        **_output_checks(content_filter, examples),
        "speed_texts_per_s": _speed(content_filter),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    _print_table(results)


def _print_table(results: dict[str, Any]) -> None:
    rows = [("toxicity", results["toxicity"])]
    rows += [(f"topic:{name}", r) for name, r in results["topics"]["per_topic"].items()]
    rows += [("refusal", results["refusal"]), ("unknown_url", results["unknown_url"])]
    rows += [(f"echo:{t}", r) for t, r in results["echoed_pii"].items()]
    print(f"{'check':<28}{'precision':>10}{'recall':>8}{'TPR@1%FPR':>11}")
    for name, r in rows:
        tpr = r.get("at_fpr_1pct", {}).get("tpr", "")
        print(f"{name:<28}{r['precision']:>10}{r['recall']:>8}{tpr!s:>11}")
    print("toxicity hard-negative FPR:", results["toxicity"]["hard_negative_fpr"])
    print("topics: near-topic FPR", results["topics"]["near_topic_fpr"], "| tuned threshold",
          results["topics"]["tuned_threshold_on_tune_half"])  # fmt: skip
    print("speed (texts/s, 200 words):", json.dumps(results["speed_texts_per_s"]))


if __name__ == "__main__":
    main()
