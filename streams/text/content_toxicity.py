"""Toxicity and profanity scores from alt-profanity-check, with benign senses rewritten first.

alt-profanity-check is a linear model over word n-grams with a bundled scikit-learn model: fast (tens of
thousands of short texts/s in a batch) but blind to sense. Before scoring, this module rewrites a few
benign senses it gets wrong into neutral words:

- process control: "kill the process", "kill -9 1234", "killed the worker" -> "stop";
- idioms: "shoot me an email/a message" -> "send me";
- anatomy in a clinical context: "penis", "anus", "vagina", "breast", ... -> "organ", but only when the
  text also has a clinical word (doctor, patient, symptom, cancer, exam, ...).

A text is split into chunks (sentences grouped to about ``chunk_chars``) and its score is the highest
chunk's probability, so one insult in a long text is not diluted.

Guarantees: never raises on any str; the model loads once per process on first use (about 2 s: joblib
load of the bundled model). Accuracy and speed: ``.venv/bin/python -m bench.bench_content``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["benign_rewrite", "chunk_text", "toxicity_scores"]

_TARGETS: Final = (
    r"(?:process|pid|job|thread|task|server|container|pod|session|daemon|worker|query|connection"
    r"|tab|app|program|service|instance|node|loop|command|signal|request|build|kernel|shell|script)"
    r"(?:es|s)?"
)
TECH_KILL: Final = re.compile(
    rf"\bkill(?:ed|ing|s|all)?\b(?=(?:\s+-\S+)*\s+(?:\d+|%\d+|\$\w+|"
    rf"(?:(?:the|a|an|that|this|all|any|every|its|my|your|our|each|stuck|old|running|hung|idle)\s+){{0,3}}"
    rf"(?:[\w.-]+\s+)?{_TARGETS}\b))",
    re.IGNORECASE,
)
KILL_SIGNAL: Final = re.compile(r"\bkill\s+-(?:\d+|[A-Z]+)\b", re.IGNORECASE)
SHOOT_MESSAGE: Final = re.compile(
    r"\bshoot\s+(?:me|us|him|her|them)\s+(?:an?\s+)?(?:quick\s+)?(?:e-?mail|message|note|text|line|dm)",
    re.IGNORECASE,
)
ANATOMY: Final = re.compile(
    r"\b(?:penis|penile|vagina[l]?|vulva[r]?|anus|anal|rectum|rectal|testic(?:le|les|ular)|scrotum"
    r"|breasts?|nipples?|clitoris|labia|genitals?|genitalia|urethra[l]?|prostate|cervix|cervical"
    r"|buttocks?|groin|erection|erectile|ejaculation|sperm|semen|orgasm|sexual|intercourse)\b",
    re.IGNORECASE,
)
CLINICAL: Final = re.compile(
    r"\b(?:doctors?|physicians?|patients?|nurses?|clinic(?:al)?|hospital|medical|medicine|symptoms?"
    r"|diagnos\w*|cancer|tumou?r|infection|disease|exam(?:ination)?|screening|surgery|surgical|biopsy"
    r"|treatment|therapy|anatomy|anatomical|health|healthcare|urolog\w*|gynaecolog\w*|gynecolog\w*"
    r"|obstetric\w*|fissure|inflammation|lining|reproductive|dysfunction|syndrome|std|sti|hpv|hiv"
    r"|vaccine|lump|self-exam|mammogram|ultrasound|prescri\w*|pharmac\w*)\b",
    re.IGNORECASE,
)
# After . ! ? and a space, after CJK full stops (no space follows them), or at a line break.
SENTENCE_BREAK: Final = re.compile(r"(?<=[.!?])\s+|(?<=[\u3002\uff01\uff1f])|\n+")
CHARS_PER_TOKEN: Final = 4
MAX_TEXT_CHARS: Final = 200_000  # scored up to here; beyond is not read


def benign_rewrite(text: str) -> str:
    """``text`` with the benign senses above replaced by neutral words (for scoring only)."""
    text = KILL_SIGNAL.sub("stop", text)
    text = TECH_KILL.sub("stop", text)
    text = SHOOT_MESSAGE.sub("send me a message", text)
    if CLINICAL.search(text):
        text = ANATOMY.sub("organ", text)
    return text


def _split_long(piece: str, max_chars: int) -> list[str]:
    """A piece longer than ``max_chars`` cut at spaces (or hard, for text without spaces)."""
    parts: list[str] = []
    while len(piece) > max_chars:
        cut = piece.rfind(" ", 0, max_chars)
        cut = cut if cut > max_chars // 2 else max_chars
        parts.append(piece[:cut])
        piece = piece[cut:].lstrip()
    if piece:
        parts.append(piece)
    return parts


def chunk_text(text: str, chunk_tokens: int) -> list[str]:
    """Sentences of ``text`` grouped into chunks of about ``chunk_tokens`` tokens (4 chars a token).

    Always at least one chunk (``""`` for an empty text)."""
    max_chars = max(1, chunk_tokens * CHARS_PER_TOKEN)
    text = text[:MAX_TEXT_CHARS]
    pieces = [
        p
        for s in SENTENCE_BREAK.split(text)
        if s.strip()
        for p in _split_long(s.strip(), max_chars)
    ]
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + 1 + len(piece) > max_chars:
            chunks.append(current)
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    if current or not chunks:
        chunks.append(current)
    return chunks


@functools.cache
def _predict_prob() -> Callable[[Sequence[str]], npt.NDArray[np.float64]]:
    from profanity_check import predict_prob

    return predict_prob  # type: ignore[no-any-return]


def toxicity_scores(chunked: Sequence[Sequence[str]]) -> list[float]:
    """The highest chunk probability of each text, from one batched model call."""
    flat = [benign_rewrite(chunk) for chunks in chunked for chunk in chunks]
    if not flat:
        return []
    probs = _predict_prob()(flat)
    scores: list[float] = []
    position = 0
    for chunks in chunked:
        width = len(chunks)
        scores.append(float(np.max(probs[position : position + width])) if width else 0.0)
        position += width
    return scores
