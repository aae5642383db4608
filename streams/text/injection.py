"""Prompt-injection and jailbreak detector: pattern signals plus learned heads over MiniLM embeddings.

A text is cut into overlapping chunks (about 96 words, :mod:`streams.text.injection_features`). Each chunk
is scored by a cascade:

1. the cheap head (logistic regression over hashed word/character n-grams and the pattern layer's signals:
   :mod:`producers.guard.injection_patterns`, which also undoes base64/hex/ROT13/leetspeak/zero-width/
   look-alike obfuscation);
2. chunks whose cheap score falls inside the trained uncertainty band are embedded with the bundled MiniLM
   encoder and re-scored by the full head (embedding + signals + cheap logit).

A chunk whose pattern-layer score reaches ``PATTERN_FLAG_SCORE`` is lifted to at least the flag threshold.
The text's score is the maximum over its chunks; ``start``/``end`` locate the worst chunk. ``flagged`` is
``score >= threshold(source)``; the thresholds come from ``data/injection/heads.json`` (set for a
false-positive rate of at most 1% on the train split's out-of-fold scores) and can be overridden per
source (``prompt``, ``retrieval``, ``tool``, ``output``). ``category`` is the category head's family for
the worst chunk (instruction overrides, role-play and extraction found in retrieved or tool text are
reported as ``indirect_injection``), or the pattern layer's when the text is not flagged.

Accuracy and speed (dev split, never trained on), measured by ``.venv/bin/python -m bench.bench_injection``:
see ``bench/results/injection.json``. Retrain with ``.venv/bin/python -m bench.train_injection``.
What can block: the first call loads MiniLM (about a second); texts in the uncertainty band cost one
encoder pass per chunk (CPU-bound). Never raises on any ``str`` (a failure scores the text 0).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import sparse

from producers.guard.injection_patterns import CATEGORIES, PatternSignals
from streams.text.embeddings import Encoder, load_encoder
from streams.text.findings import InjectionVerdict
from streams.text.injection_features import (
    Chunk,
    chunk_signals,
    chunk_text,
    hashed_features,
    neighbour_summary,
    pattern_features,
)

__all__ = ["DATA_DIR", "SOURCES", "InjectionDetector"]

logger = logging.getLogger(__name__)

DATA_DIR: Final = Path(__file__).parent / "data" / "injection"
SOURCES: Final = ("prompt", "retrieval", "tool", "output")
ENCODER_TOKENS: Final = 128
# A chunk whose pattern-layer score reaches this is flagged whatever the learned heads say (strong rules
# such as ``ignore_previous`` are precise on the dev set: FPR 1.8% at 0.5 for the layer alone).
PATTERN_FLAG_SCORE: Final = 0.85
# Families that, found in retrieved or tool text, are reported as indirect injection.
_INDIRECT_WHEN_EMBEDDED: Final = frozenset(
    {"instruction_override", "roleplay_jailbreak", "prompt_extraction"}
)
_EMBEDDED_SOURCES: Final = frozenset({"retrieval", "tool"})


@dataclass(frozen=True, slots=True)
class _Heads:
    cheap_coef: npt.NDArray[np.float32]
    cheap_intercept: float
    full_coef: npt.NDArray[np.float32]
    full_intercept: float
    category_coef: npt.NDArray[np.float32]
    category_intercept: npt.NDArray[np.float32]
    attack_vectors: npt.NDArray[np.float32]
    flag_threshold: float
    cascade_band: tuple[float, float]

    @classmethod
    def load(cls, folder: Path) -> _Heads:
        arrays = np.load(folder / "heads.npz", allow_pickle=False)
        meta = json.loads((folder / "heads.json").read_text())
        low, high = meta["cascade_band"]
        return cls(
            arrays["cheap_coef"].astype(np.float32),
            float(arrays["cheap_intercept"][0]),
            arrays["full_coef"].astype(np.float32),
            float(arrays["full_intercept"][0]),
            arrays["category_coef"].astype(np.float32),
            arrays["category_intercept"].astype(np.float32),
            arrays["attack_vectors"].astype(np.float32),
            float(meta["flag_threshold"]),
            (float(low), float(high)),
        )


def _sigmoid(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


@dataclass
class _Scored:
    """All chunks of a batch with their cheap features and scores."""

    owners: list[int]
    chunks: list[Chunk]
    signals: list[PatternSignals]
    cheap_x: sparse.csr_matrix
    patterns: npt.NDArray[np.float32]
    cheap_logit: npt.NDArray[np.float64]
    score: npt.NDArray[np.float64]
    encoded: npt.NDArray[np.bool_]


class InjectionDetector:
    """Scores texts for prompt injection and jailbreaks; thread-compatible (no shared mutable state)."""

    def __init__(
        self,
        *,
        thresholds: Mapping[str, float] | None = None,
        encoder: Encoder | None = None,
        data_dir: Path = DATA_DIR,
        use_encoder: bool = True,
    ) -> None:
        self._heads = _Heads.load(data_dir)
        self._thresholds = {source: self._heads.flag_threshold for source in SOURCES}
        for source, value in (thresholds or {}).items():
            if source not in SOURCES:
                raise ValueError(f"threshold source must be one of {SOURCES}, got {source!r}")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"threshold must be in [0, 1], got {value!r}")
            self._thresholds[source] = value
        self._encoder = encoder
        self._use_encoder = use_encoder

    def threshold(self, source: str) -> float:
        """The flag threshold for texts from ``source`` (the prompt's for an unknown source)."""
        return self._thresholds.get(source, self._thresholds["prompt"])

    def score(self, text: str, *, source: str = "prompt") -> InjectionVerdict:
        """One text's verdict; never raises."""
        return self.score_batch([text], [source])[0]

    def score_batch(
        self, texts: Sequence[str], sources: Sequence[str] | None = None
    ) -> list[InjectionVerdict]:
        """One verdict per text (``sources`` defaults to all ``prompt``); never raises."""
        safe = [t if isinstance(t, str) else "" for t in texts]
        origin = list(sources) if sources is not None else ["prompt"] * len(safe)
        origin += ["prompt"] * (len(safe) - len(origin))
        try:
            return self._score(safe, origin)
        except Exception:  # a detector must never take the analysis consumer down
            logger.exception("injection scoring failed for a batch of %d texts", len(safe))
            return [InjectionVerdict(score=0.0, flagged=False) for _ in safe]

    def _encoder_or_none(self) -> Encoder | None:
        if self._use_encoder and self._encoder is None:
            self._encoder = load_encoder(ENCODER_TOKENS)
        return self._encoder if self._use_encoder else None

    def _cheap(self, texts: list[str]) -> _Scored:
        owners: list[int] = []
        chunks: list[Chunk] = []
        signals: list[PatternSignals] = []
        for index, text in enumerate(texts):
            pieces = chunk_text(text)
            owners += [index] * len(pieces)
            chunks += pieces
            signals += chunk_signals(text, pieces)
        pieces_text = [texts[o][c.start : c.end] for o, c in zip(owners, chunks, strict=True)]
        patterns = (
            np.vstack([pattern_features(s) for s in signals]) if signals else np.zeros((0, 1))
        )
        cheap_x = sparse.hstack([hashed_features(pieces_text), patterns], format="csr")
        logit = cheap_x @ self._heads.cheap_coef + self._heads.cheap_intercept
        cheap_logit = np.asarray(logit, dtype=np.float64).ravel()
        return _Scored(
            owners,
            chunks,
            signals,
            cheap_x,
            patterns.astype(np.float32),
            cheap_logit,
            _sigmoid(cheap_logit),
            np.zeros(len(chunks), dtype=bool),
        )

    def _refine(self, texts: list[str], scored: _Scored) -> None:
        """Re-score the chunks in the uncertainty band with the full head over MiniLM embeddings."""
        low, high = self._heads.cascade_band
        uncertain = np.flatnonzero((scored.score >= low) & (scored.score <= high))
        encoder = self._encoder_or_none()
        if encoder is None or uncertain.size == 0:
            return
        pieces = [
            texts[scored.owners[i]][scored.chunks[i].start : scored.chunks[i].end]
            for i in uncertain
        ]
        embeddings = encoder.encode(pieces)
        neighbours = neighbour_summary(embeddings @ self._heads.attack_vectors.T)
        features = np.hstack(
            [
                embeddings,
                scored.patterns[uncertain],
                scored.cheap_logit[uncertain, None],
                neighbours,
            ]
        )
        logit = features @ self._heads.full_coef + self._heads.full_intercept
        scored.score[uncertain] = _sigmoid(logit.astype(np.float64))
        scored.encoded[uncertain] = True

    def _category(self, scored: _Scored, chunk: int, source: str, flagged: bool) -> str | None:
        if not flagged:
            return scored.signals[chunk].category
        row = scored.cheap_x[chunk]
        logits = (
            np.asarray(row @ self._heads.category_coef.T).ravel() + self._heads.category_intercept
        )
        family = CATEGORIES[int(np.argmax(logits))]
        if source in _EMBEDDED_SOURCES and family in _INDIRECT_WHEN_EMBEDDED:
            return "indirect_injection"
        return family

    def _pattern_floor(self, scored: _Scored) -> None:
        """Lift chunks with a strong pattern score to at least the flag threshold, keeping the order."""
        threshold = self._heads.flag_threshold
        pattern = np.array([s.score for s in scored.signals], dtype=np.float64)
        strong = pattern >= PATTERN_FLAG_SCORE
        lifted = threshold + (1.0 - threshold) * (pattern - PATTERN_FLAG_SCORE) / (
            1.0 - PATTERN_FLAG_SCORE
        )
        scored.score[strong] = np.maximum(scored.score[strong], lifted[strong])

    def _score(self, texts: list[str], sources: list[str]) -> list[InjectionVerdict]:
        scored = self._cheap(texts)
        self._refine(texts, scored)
        self._pattern_floor(scored)
        worst: dict[int, int] = {}
        for chunk, owner in enumerate(scored.owners):
            if owner not in worst or scored.score[chunk] > scored.score[worst[owner]]:
                worst[owner] = chunk
        verdicts = []
        for index, source in enumerate(sources):
            if index not in worst:
                verdicts.append(InjectionVerdict(score=0.0, flagged=False))
                continue
            chunk = worst[index]
            score = float(np.clip(scored.score[chunk], 0.0, 1.0))
            flagged = score >= self.threshold(source)
            span = scored.chunks[chunk]
            category = self._category(scored, chunk, source, flagged)
            verdicts.append(InjectionVerdict(score, flagged, category, span.start, span.end))
        return verdicts
