"""Chunking and cheap features for the prompt-injection detector (shared by training and inference).

A text is cut into chunks of at most ``CHUNK_WORDS`` words (and ``CHUNK_CHARS`` characters, so a chunk
stays within the encoder's 128 tokens and a short injected sentence is not diluted by the text around
it), overlapping by ``CHUNK_WORDS - STRIDE_WORDS`` words. Each chunk gets cheap features: the pattern
layer's signals (:mod:`producers.guard`) and hashed word and character n-grams. Nothing here loads a
model; a 200-word text costs about two milliseconds. Never raises on any ``str``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

from producers.guard.injection_patterns import (
    CATEGORIES,
    SIGNAL_NAMES,
    PatternSignals,
    injection_signals,
)

__all__ = [
    "CHUNK_CHARS",
    "CHUNK_WORDS",
    "HASH_FEATURES",
    "NEIGHBOUR_FEATURES",
    "PATTERN_FEATURES",
    "STRIDE_WORDS",
    "Chunk",
    "chunk_signals",
    "chunk_text",
    "hashed_features",
    "neighbour_summary",
    "pattern_features",
]

CHUNK_WORDS: Final = 48
STRIDE_WORDS: Final = 32
CHUNK_CHARS: Final = 360
MAX_CHUNKS: Final = 128  # longer texts are scored on their first and last chunks
HASH_FEATURES: Final = 2**15  # per vectorizer (words, characters)
# Signal indicators, the pattern score, and one indicator per category.
PATTERN_FEATURES: Final = len(SIGNAL_NAMES) + 1 + len(CATEGORIES)
_WORD = re.compile(r"\S+")
_SIGNAL_INDEX: Final = {name: i for i, name in enumerate(SIGNAL_NAMES)}
_WORD_HASHER: Final = HashingVectorizer(
    n_features=HASH_FEATURES, ngram_range=(1, 2), alternate_sign=False, lowercase=True
)
_CHAR_HASHER: Final = HashingVectorizer(
    n_features=HASH_FEATURES,
    analyzer="char_wb",
    ngram_range=(3, 5),
    alternate_sign=False,
    lowercase=True,
)


@dataclass(frozen=True, slots=True)
class Chunk:
    """``text[start:end]`` of the analysed text."""

    start: int
    end: int


def _word_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _WORD.finditer(text)]


def chunk_text(text: str) -> list[Chunk]:
    """Overlapping chunks covering ``text``; one chunk for a short text, none for a blank one."""
    spans = _word_spans(text)
    if not spans:
        return []
    chunks: list[Chunk] = []
    first = 0
    while first < len(spans):
        last = first
        while (
            last + 1 < len(spans)
            and last + 1 - first < CHUNK_WORDS
            and spans[last + 1][1] - spans[first][0] <= CHUNK_CHARS
        ):
            last += 1
        chunks.append(Chunk(spans[first][0], spans[last][1]))
        if last + 1 >= len(spans):
            break
        first = max(first + 1, min(last + 1, first + STRIDE_WORDS))
    if len(chunks) > MAX_CHUNKS:
        half = MAX_CHUNKS // 2
        chunks = chunks[:half] + chunks[-half:]
    return chunks


def pattern_features(signals: PatternSignals) -> npt.NDArray[np.float32]:
    """Signal indicators, the pattern score and the category indicator, as one row."""
    row = np.zeros(PATTERN_FEATURES, dtype=np.float32)
    for name in signals.signals:
        index = _SIGNAL_INDEX.get(name)
        if index is not None:
            row[index] = 1.0
    row[len(SIGNAL_NAMES)] = signals.score
    if signals.category in CATEGORIES:
        row[len(SIGNAL_NAMES) + 1 + CATEGORIES.index(signals.category)] = 1.0
    return row


def hashed_features(texts: list[str]) -> sparse.csr_matrix:
    """Hashed word 1-2-grams and character 3-5-grams, each L2-normalised: ``(n, 2 * HASH_FEATURES)``."""
    words = _WORD_HASHER.transform(texts)
    chars = _CHAR_HASHER.transform(texts)
    return sparse.hstack([words, chars], format="csr", dtype=np.float32)


def chunk_signals(text: str, chunks: list[Chunk]) -> list[PatternSignals]:
    """The pattern layer on each chunk."""
    return [injection_signals(text[c.start : c.end]) for c in chunks]


NEIGHBOURS: Final = 3
NEIGHBOUR_FEATURES: Final = 2


def neighbour_summary(sims: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """From cosine similarities to the known attack chunks: the best one and the mean of the top few."""
    if sims.shape[1] == 0:
        return np.zeros((sims.shape[0], NEIGHBOUR_FEATURES))
    top = -np.sort(-sims, axis=1)[:, :NEIGHBOURS]
    return np.column_stack([top[:, 0], top.mean(axis=1)]).astype(np.float64)
