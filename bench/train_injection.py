"""Train the prompt-injection detector's heads on the train split and write their weights.

Run: ``.venv/bin/python -m bench.train_injection`` (about two minutes on two cores: most of it is MiniLM
encoding the train chunks). Writes ``streams/text/data/injection/heads.npz`` (float32/float16 arrays, no
pickles) and ``heads.json`` (thresholds, cascade band, provenance).

What it trains, all scikit-learn logistic regressions on chunks of the train split of
``bench.devsets.injection`` (seed 0; a chunk of an attack is positive when it holds most of the payload,
negative when it holds none of it, and left out otherwise):

- the cheap head: hashed word/character n-grams plus the pattern layer's signals;
- the full head: the MiniLM embedding, the pattern signals and the cheap head's out-of-fold logit;
- the category head: multinomial, over the cheap features of the positive chunks.

Thresholds come from out-of-fold scores (grouped 5-fold on the train split, so never from the dev split):
the flag threshold keeps the train false-positive rate at or under ``TARGET_TRAIN_FPR``; the cascade band
(cheap scores outside it skip the encoder) loses at most ``CASCADE_MISS`` of the positive chunks.
Deterministic: fixed seeds, liblinear/lbfgs solvers.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import sklearn
import torch
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold

from bench.devsets.injection import LabelledPrompt, injection_devset, split_devset
from producers.guard.injection_patterns import CATEGORIES
from streams.text.embeddings import load_encoder
from streams.text.injection_features import (
    chunk_signals,
    chunk_text,
    hashed_features,
    neighbour_summary,
    pattern_features,
)

__all__ = ["main"]

DATA_DIR: Final = Path(__file__).parents[1] / "streams" / "text" / "data" / "injection"
SEED: Final = 0
FOLDS: Final = 5
TARGET_TRAIN_FPR: Final = 0.01
CASCADE_MISS: Final = 0.01
MAX_THRESHOLD: Final = 0.999
CHEAP_C: Final = 4.0
FULL_C: Final = 1.0
CATEGORY_C: Final = 4.0
MIN_OVERLAP: Final = 0.6  # share of the payload a chunk must hold to count as an attack chunk


@dataclass
class ChunkSet:
    """Training chunks: features and labels, with the text each chunk came from."""

    texts: list[str]
    labels: npt.NDArray[np.int64]
    families: list[str]
    groups: list[str]
    owners: npt.NDArray[np.int64]  # index of the example the chunk came from
    patterns: npt.NDArray[np.float32]


def _chunk_label(example: LabelledPrompt, start: int, end: int) -> int | None:
    if example.label == 0:
        return 0
    lo, hi = example.payload_span()
    overlap = max(0, min(end, hi) - max(start, lo))
    if overlap == 0:
        return 0
    return 1 if overlap >= MIN_OVERLAP * min(hi - lo, end - start) else None


def build_chunks(examples: list[LabelledPrompt]) -> ChunkSet:
    """Every labelled chunk of ``examples``."""
    texts, labels, families, groups, owners, rows = [], [], [], [], [], []
    for index, example in enumerate(examples):
        chunks = chunk_text(example.text)
        for chunk, signals in zip(chunks, chunk_signals(example.text, chunks), strict=True):
            label = _chunk_label(example, chunk.start, chunk.end)
            if label is None:
                continue
            texts.append(example.text[chunk.start : chunk.end])
            labels.append(label)
            families.append(example.family)
            groups.append(example.group)
            owners.append(index)
            rows.append(pattern_features(signals))
    return ChunkSet(texts, np.array(labels), families, groups, np.array(owners), np.vstack(rows))


def _cheap_matrix(chunks: ChunkSet) -> sparse.csr_matrix:
    return sparse.hstack([hashed_features(chunks.texts), chunks.patterns], format="csr")


def _full_matrix(
    embeddings: npt.NDArray[np.float32],
    patterns: npt.NDArray[np.float32],
    cheap: npt.NDArray[np.float64],
    neighbours: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    return np.hstack([embeddings, patterns, cheap[:, None], neighbours]).astype(np.float64)


def _fit(x: object, y: npt.NDArray[np.int64], c: float) -> LogisticRegression:
    model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=SEED)
    return model.fit(x, y)


def _out_of_fold(x: object, chunks: ChunkSet, c: float) -> npt.NDArray[np.float64]:
    logits = np.zeros(len(chunks.labels))
    for train, held in GroupKFold(n_splits=FOLDS).split(chunks.texts, chunks.labels, chunks.groups):
        model = _fit(x[train], chunks.labels[train], c)  # type: ignore[index]
        logits[held] = model.decision_function(x[held])  # type: ignore[index]
    return logits


def _sigmoid(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-x))


def _cascade_band(
    cheap: npt.NDArray[np.float64], labels: npt.NDArray[np.int64]
) -> tuple[float, float]:
    """Cheap scores below the low end or above the high end skip the encoder."""
    low = float(min(0.3, np.quantile(cheap[labels == 1], CASCADE_MISS)))
    high = float(max(0.97, cheap[labels == 0].max() + 0.005))
    return low, min(high, 1.0)


def _text_scores(
    chunks: ChunkSet,
    cheap: npt.NDArray[np.float64],
    full: npt.NDArray[np.float64],
    band: tuple[float, float],
) -> dict[int, float]:
    cascaded = np.where((cheap < band[0]) | (cheap > band[1]), cheap, full)
    scores: dict[int, float] = {}
    for owner, score in zip(chunks.owners.tolist(), cascaded.tolist(), strict=True):
        scores[owner] = max(scores.get(owner, 0.0), score)
    return scores


def _flag_threshold(scores: dict[int, float], examples: list[LabelledPrompt]) -> float:
    negatives = np.array([s for i, s in scores.items() if examples[i].label == 0])
    allowed = int(TARGET_TRAIN_FPR * len(negatives))
    ranked = np.sort(negatives)[::-1]
    return float(min(MAX_THRESHOLD, max(0.5, ranked[allowed] + 1e-4)))


def _report_out_of_fold(
    scores: dict[int, float], examples: list[LabelledPrompt], threshold: float
) -> None:
    labels = np.array([examples[i].label for i in scores])
    values = np.array(list(scores.values()))
    flagged = values >= threshold
    print(
        f"out-of-fold on train: AUC {roc_auc_score(labels, values):.3f}, at {threshold:.3f}: "
        f"TPR {flagged[labels == 1].mean():.3f} FPR {flagged[labels == 0].mean():.3f}"
    )


def _category_head(chunks: ChunkSet, x: sparse.csr_matrix) -> LogisticRegression:
    positive = np.flatnonzero(chunks.labels == 1)
    y = np.array([CATEGORIES.index(chunks.families[i]) for i in positive])
    model = LogisticRegression(C=CATEGORY_C, max_iter=2000, random_state=SEED)
    return model.fit(x[positive], y)


def _encode(texts: list[str], cache: Path | None) -> npt.NDArray[np.float32]:
    """MiniLM vectors of ``texts``, reusing a cache file of earlier runs when given (development only)."""
    known: dict[str, npt.NDArray[np.float32]] = {}
    if cache is not None and cache.exists():
        stored = np.load(cache, allow_pickle=False)
        known = dict(zip(stored["texts"].tolist(), stored["vectors"], strict=True))
    missing = sorted({t for t in texts if t not in known})
    if missing:
        known.update(zip(missing, load_encoder(128).encode(missing), strict=True))
    if cache is not None:
        np.savez(cache, texts=np.array(list(known)), vectors=np.vstack(list(known.values())))
    return np.vstack([known[t] for t in texts]).astype(np.float32)


def _neighbour_features(
    embeddings: npt.NDArray[np.float32], labels: npt.NDArray[np.int64], groups: list[str]
) -> npt.NDArray[np.float64]:
    """Each chunk's similarity to the attack chunks of other seed groups (no chunk sees its own group)."""
    positive = np.flatnonzero(labels == 1)
    sims = embeddings @ embeddings[positive].T
    group_array = np.array(groups)
    sims[group_array[:, None] == group_array[positive][None, :]] = -1.0
    return neighbour_summary(sims)


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the prompt-injection heads.")
    parser.add_argument("--cache", type=Path, help="embedding cache file (speeds up re-runs)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    train, _ = split_devset(injection_devset(SEED), seed=SEED)
    chunks = build_chunks(train)
    print(
        f"train: {len(train)} texts, {len(chunks.labels)} chunks, {int(chunks.labels.sum())} positive"
    )
    cheap_x = _cheap_matrix(chunks)
    cheap_oof = _out_of_fold(cheap_x, chunks, CHEAP_C)
    embeddings = _encode(chunks.texts, args.cache)
    neighbours = _neighbour_features(embeddings, chunks.labels, chunks.groups)
    full_x = _full_matrix(embeddings, chunks.patterns, cheap_oof, neighbours)
    full_oof = _sigmoid(_out_of_fold(full_x, chunks, FULL_C))
    band = _cascade_band(_sigmoid(cheap_oof), chunks.labels)
    text_scores = _text_scores(chunks, _sigmoid(cheap_oof), full_oof, band)
    threshold = _flag_threshold(text_scores, train)
    _report_out_of_fold(text_scores, train, threshold)
    cheap = _fit(cheap_x, chunks.labels, CHEAP_C)
    full = _fit(full_x, chunks.labels, FULL_C)
    category = _category_head(chunks, cheap_x)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        DATA_DIR / "heads.npz",
        cheap_coef=cheap.coef_[0].astype(np.float32),
        cheap_intercept=cheap.intercept_.astype(np.float32),
        full_coef=full.coef_[0].astype(np.float32),
        full_intercept=full.intercept_.astype(np.float32),
        category_coef=category.coef_.astype(np.float16),
        category_intercept=category.intercept_.astype(np.float32),
        attack_vectors=embeddings[chunks.labels == 1].astype(np.float16),
    )
    meta = {
        "flag_threshold": round(threshold, 4),
        "cascade_band": [round(band[0], 4), round(band[1], 4)],
        "categories": list(CATEGORIES),
        "trained_on": {
            "devset_seed": SEED,
            "train_texts": len(train),
            "train_chunks": len(chunks.labels),
            "positive_chunks": int(chunks.labels.sum()),
        },
        "scikit_learn": sklearn.__version__,
        "command": ".venv/bin/python -m bench.train_injection",
    }
    (DATA_DIR / "heads.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
