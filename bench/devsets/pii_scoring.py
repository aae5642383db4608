"""Span scoring for the PII detector's bench and tests: per-type precision, recall, F1 and exact recall.

A gold span ``(type, start, end)`` is found when a predicted span of the same type covers at least half
of it; a predicted span is a true positive when it covers at least half of some gold span of its type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from bench.devsets.pii import LabelledText
from streams.text.findings import PiiSpan, PiiType

__all__ = ["MIN_OVERLAP", "TypeScore", "score_spans"]

MIN_OVERLAP: Final = 0.5


@dataclass(slots=True)
class TypeScore:
    gold: int = 0
    found: int = 0  # gold spans covered >= 50%
    exact: int = 0  # gold spans matched exactly
    predicted: int = 0
    correct: int = 0  # predicted spans covering >= 50% of a gold span

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.gold if self.gold else 1.0

    @property
    def exact_recall(self) -> float:
        return self.exact / self.gold if self.gold else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "gold": self.gold,
            "predicted": self.predicted,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "exact_recall": round(self.exact_recall, 4),
        }


def _covers(span: tuple[int, int], gold: tuple[int, int]) -> bool:
    overlap = min(span[1], gold[1]) - max(span[0], gold[0])
    return overlap >= MIN_OVERLAP * (gold[1] - gold[0])


def score_spans(
    data: Sequence[LabelledText], predicted: Sequence[Sequence[PiiSpan]]
) -> dict[str, TypeScore]:
    """Per-type scores (and ``ALL``) of ``predicted`` against the gold spans of ``data``."""
    scores = {t.value: TypeScore() for t in PiiType}
    for item, spans in zip(data, predicted, strict=True):
        for kind, start, end in item.spans:
            s = scores[kind]
            s.gold += 1
            same = [(p.start, p.end) for p in spans if p.type == kind]
            s.found += any(_covers(p, (start, end)) for p in same)
            s.exact += (start, end) in same
        for p in spans:
            s = scores[p.type.value]
            s.predicted += 1
            s.correct += any(
                k == p.type and _covers((p.start, p.end), (gs, ge)) for k, gs, ge in item.spans
            )
    total = TypeScore()
    for s in scores.values():
        for name in ("gold", "found", "exact", "predicted", "correct"):
            setattr(total, name, getattr(total, name) + getattr(s, name))
    scores["ALL"] = total
    return scores
