"""Cost per item of the reference metrics (``streams/evaluation/metrics.py``).

Run: ``.venv/bin/python -m bench.bench_eval_metrics`` (about a minute). Prints a table and writes
``bench/results/eval_metrics.json``.

Pairs: :data:`N_PAIRS` (output, reference) pairs of 30-60 words from the hand-written templates below
(seeded), every text distinct (bert-score scores a repeated text once, which would flatter it). The
outputs cycle through four kinds: a paraphrase of the reference (synonyms, sentences reordered), a
partial answer (a sentence dropped, another added), an unrelated answer (another reference's facts)
and a near copy (one word changed).

Per metric, :data:`RUNS` runs of two call patterns: ``batch``, one ``score_metrics`` call for all the
pairs (``llmwatch eval run``), and ``single``, one call per pair (the judge service scores one request
at a time). ``load_s`` is the first call's time (model load; for ``bertscore`` it includes importing
torch and transformers, which ``cosine``, measured after it, then reuses). torch runs at its default
thread count on the shared 2-core machine: timings are noisy.

Results (200 pairs, 48 words on average; torch 2 threads; load ~1.5; ms per item, run 1 / run 2):

    metric     load s  batch ms/item   single ms/item  batch items/s
    exact        0.00  0.010 / 0.008   0.010 / 0.011   100k / 120k
    bleu         0.03  0.34 / 0.17     0.22 / 0.17     2,973 / 6,012
    chrf         0.00  0.75 / 0.72     0.91 / 0.75     1,333 / 1,392
    rouge_l      1.80  1.59 / 1.56     1.55 / 1.54     630 / 640      (load: nltk's stemmer import)
    bertscore    4.08  23.7 / 21.7     32.1 / 33.2     42 / 46
    cosine       0.31  21.6 / 20.5     33.7 / 32.8     46 / 49

Mean value, paraphrase / partial / unrelated / near copy: bleu 0.13 / 0.40 / 0.03 / 0.95, chrf 0.52 /
0.58 / 0.33 / 0.97, rouge_l 0.27 / 0.51 / 0.17 / 0.98, bertscore 0.80 / 0.80 / 0.53 / 0.99, cosine
0.85 / 0.86 / 0.50 / 0.99 (exact 0 throughout: no output is a copy).
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

from streams.evaluation.metrics import METRIC_NAMES, score_metrics

__all__ = ["main", "make_pairs"]

RESULTS: Final = Path(__file__).parent / "results" / "eval_metrics.json"
SEED: Final = 20_260_815
N_PAIRS: Final = 200
RUNS: Final = 2
WORDS: Final = (30, 60)
KINDS: Final = ("paraphrase", "partial", "unrelated", "near_copy")

# Facts a reference states; each sentence template has a paraphrase with the same slots.
TEAMS: Final = ("the billing team", "the support desk", "the data platform group", "the mobile team",
                "the security office", "the warehouse crew", "the finance department")  # fmt: skip
ITEMS: Final = ("the March invoice", "the backup job", "the login page", "the quarterly report",
                "the shipping label printer", "the customer survey", "the API gateway")  # fmt: skip
DAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
CAUSES: Final = ("an expired certificate", "a full disk", "a missing permission",
                 "a typo in the configuration", "a slow database query", "a network outage")  # fmt: skip
FIXES: Final = ("renewed the certificate", "cleared old log files", "granted the missing role",
                "corrected the configuration", "added an index to the table",
                "moved traffic to the backup link")  # fmt: skip
NUMBERS: Final = ("two", "three", "five", "eight", "twelve", "twenty")

SENTENCES: Final = (
    (
        "On {day}, {team} reported that {item} had stopped working for most users.",
        "{team} said on {day} that most users could no longer use {item}.",
    ),
    (
        "The problem was caused by {cause}, which nobody had noticed during the last review.",
        "The last review missed {cause}, and that turned out to be the source of the problem.",
    ),
    (
        "To resolve it, the engineers {fix} and checked the result twice.",
        "The engineers {fix} to solve it, then verified the outcome a second time.",
    ),
    (
        "The outage lasted about {n} hours and affected roughly {n} hundred customers.",
        "Around {n} hundred customers were hit during an outage of nearly {n} hours.",
    ),
    (
        "A follow-up meeting is planned for next {day} to agree on monitoring changes.",
        "Next {day} there will be a meeting to decide how the monitoring should change.",
    ),
    (
        "Customers who were charged twice will receive a refund within {n} business days.",
        "Anyone billed two times gets the money back in {n} working days.",
    ),
)
EXTRA: Final = (
    "Please contact the help desk if anything still looks wrong.",
    "The status page has been updated with the same information.",
    "We are sorry for the trouble this has caused.",
)
SWAPS: Final = (("users", "people"), ("problem", "issue"), ("planned", "scheduled"),
                ("customers", "clients"), ("engineers", "developers"), ("about", "around"))  # fmt: skip


def _facts(rng: random.Random) -> dict[str, str]:
    return {
        "team": rng.choice(TEAMS),
        "item": rng.choice(ITEMS),
        "day": rng.choice(DAYS),
        "cause": rng.choice(CAUSES),
        "fix": rng.choice(FIXES),
        "n": rng.choice(NUMBERS),
    }


def _text(sentences: Sequence[str], facts: dict[str, str]) -> str:
    filled = (s.format(**facts) for s in sentences)
    return " ".join(s[0].upper() + s[1:] for s in filled)


def _pair(rng: random.Random, kind: str) -> tuple[str, str]:
    facts = _facts(rng)
    chosen = rng.sample(range(len(SENTENCES)), rng.randint(3, 5))
    reference = _text([SENTENCES[i][0] for i in chosen], facts)
    if kind == "paraphrase":
        order = chosen[:]
        rng.shuffle(order)
        output = _text([SENTENCES[i][1] for i in order], facts)
    elif kind == "partial":
        kept = chosen[: len(chosen) - 1]
        output = (
            _text([SENTENCES[i][rng.randint(0, 1)] for i in kept], facts) + " " + rng.choice(EXTRA)
        )
    elif kind == "unrelated":
        others = rng.sample(range(len(SENTENCES)), rng.randint(3, 5))
        output = _text([SENTENCES[i][1] for i in others], _facts(rng))
    else:
        word, synonym = rng.choice([s for s in SWAPS if s[0] in reference] or [("the", "a")])
        output = reference.replace(word, synonym, 1)
    return output, reference


def make_pairs(n: int, seed: int) -> list[tuple[str, str, str]]:
    """``n`` distinct (kind, output, reference) triples of 30-60 words each, kinds in turn."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    while len(pairs) < n:
        kind = KINDS[len(pairs) % len(KINDS)]
        output, reference = _pair(rng, kind)
        lengths = (len(output.split()), len(reference.split()))
        if (
            output in seen
            or reference in seen
            or not all(WORDS[0] <= w <= WORDS[1] for w in lengths)
        ):
            continue
        seen.update((output, reference))
        pairs.append((kind, output, reference))
    return pairs


def _timed(name: str, outputs: Sequence[str], references: Sequence[str], single: bool) -> float:
    """Seconds for one run: one batch call, or one call per pair."""
    start = time.perf_counter()
    if single:
        for output, reference in zip(outputs, references, strict=True):
            score_metrics((name,), [output], [reference])
    else:
        score_metrics((name,), outputs, references)
    return time.perf_counter() - start


def _cost(seconds: float, n: int) -> dict[str, float]:
    return {"ms_per_item": round(1000 * seconds / n, 4), "items_per_s": round(n / seconds, 1)}


def _mean_by_kind(name: str, pairs: Sequence[tuple[str, str, str]]) -> dict[str, float]:
    rows = score_metrics((name,), [p[1] for p in pairs], [p[2] for p in pairs])
    by_kind: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for (kind, _, _), (score,) in zip(pairs, rows, strict=True):
        by_kind[kind].append(score.value)
    return {kind: round(statistics.fmean(values), 3) for kind, values in by_kind.items()}


def _runs(costs: Sequence[dict[str, float]], key: str, digits: int) -> str:
    return " / ".join(f"{c[key]:.{digits}f}" for c in costs)


def main() -> None:
    import torch

    pairs = make_pairs(N_PAIRS, SEED)
    outputs = [p[1] for p in pairs]
    references = [p[2] for p in pairs]
    words = [len(t.split()) for t in outputs + references]
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} shared cores",
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "versions": {
            d: version(d)
            for d in ("sacrebleu", "rouge-score", "bert-score", "transformers", "torch")
        },
        "pairs": {
            "n": N_PAIRS,
            "seed": SEED,
            "kinds": KINDS,
            "words_mean": statistics.fmean(words),
            "words_range": [min(words), max(words)],
        },
        "runs": RUNS,
        "metrics": {},
    }
    header = f"{'metric':<10}{'load s':>8}  {'batch ms/item':>16}  {'single ms/item':>16}  {'items/s':>15}"
    print(f"{N_PAIRS} pairs, {results['pairs']['words_mean']:.0f} words on average, "
          f"torch {results['torch_threads']} threads\n{header}")  # fmt: skip
    for name in METRIC_NAMES:
        start = time.perf_counter()
        score_metrics((name,), [outputs[0]], [references[0]])  # first call: loads what it needs
        load_s = time.perf_counter() - start
        batch = [_cost(_timed(name, outputs, references, False), N_PAIRS) for _ in range(RUNS)]
        single = [_cost(_timed(name, outputs, references, True), N_PAIRS) for _ in range(RUNS)]
        results["metrics"][name] = {
            "load_s": round(load_s, 3),
            "batch": batch,
            "single": single,
            "mean_value_by_kind": _mean_by_kind(name, pairs),
        }
        print(
            f"{name:<10}{load_s:>8.2f}  {_runs(batch, 'ms_per_item', 3):>16}  "
            f"{_runs(single, 'ms_per_item', 3):>16}  {_runs(batch, 'items_per_s', 0):>15}"
        )
    print("\nmean value by kind of output")
    print(f"{'metric':<10}" + "".join(f"{kind:>12}" for kind in KINDS))
    for name, found in results["metrics"].items():
        print(f"{name:<10}" + "".join(f"{found['mean_value_by_kind'][k]:>12.3f}" for k in KINDS))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
