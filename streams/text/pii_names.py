"""Person names for :mod:`streams.text.pii`: a gazetteer of US census names plus context cues, no model.

Gazetteer (``streams/text/data/pii/``, see its README): 5,163 first names and 88,799 surnames of the
1990 US census (public domain), as shipped in the ``names`` 0.3.0 package on PyPI (MIT).

A candidate is a run of 1-4 capitalised words (``O'Brien``, ``McDonald``, ``Jean-Luc`` and particles such
as ``van``/``de`` inside); leading words that cannot be names (``The``, ``Dear``, ``Thanks``...) are cut
off and remembered as cues. A run is a PERSON when:
- it follows a title (Mr, Ms, Dr, Herr, Mme...) or a cue (``my name is``, ``Dear``, ``spoke with``,
  ``Regards,`` then a new line...): 0.8 for 2+ words, 0.7 for a known first name alone;
- it has 2+ words, the first a census first name and the others not common words: 0.85;
- it has 2+ words, the last a census surname, none a common word, and no word seen in lower case
  elsewhere in the text: 0.6.
A single capitalised word is a name only after a cue. Surnames alone (``Smith said``) are missed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Final

from streams.text.findings import PiiType
from streams.text.pii_patterns import Candidate
from streams.text.pii_words import CUE_BEFORE, NOT_NAMES, TITLES

__all__ = ["first_names", "last_names", "name_candidates", "uncertain_name_run"]

_DATA: Final = Path(__file__).parent / "data" / "pii"
_UP: Final = (
    "A-ZÀ-ÖØ-ÞĀ-\u017f"  # Latin-1 and Latin Extended-A capitals (the latter range is mixed case)
)
_LO: Final = "a-zß-öø-ÿĀ-\u017f"
_CAP_TAIL: Final = (
    rf"(?:[{_LO}]+|['\u2019][{_UP}{_LO}][{_LO}]+)(?:[{_UP}][{_LO}]+)?(?:-[{_UP}][{_LO}]+)?"
)
_CAP_WORD: Final = rf"[{_UP}]{_CAP_TAIL}"
_PARTICLE: Final = r"(?:van|von|de|der|den|del|della|di|da|du|dos|le|la|bin|al|ter|ten)"
_RUN: Final = re.compile(
    rf"[{_UP}](?<![\w@./\-][{_UP}]){_CAP_TAIL}"
    rf"(?:[ ](?:{_PARTICLE}[ ]){{0,2}}{_CAP_WORD}){{0,3}}(?![\w@\-]|\.\w)"
)
_CUE_WINDOW: Final = 28
_LOWER_WORD: Final = re.compile(rf"\b[{_LO}]+\b")


@cache
def first_names() -> frozenset[str]:
    return frozenset((_DATA / "census_first_names.txt").read_text("utf-8").split())


@cache
def last_names() -> frozenset[str]:
    return frozenset((_DATA / "census_last_names.txt").read_text("utf-8").split())


def _split_words(run: str, start: int) -> list[tuple[str, int, int]]:
    return [(m.group(), start + m.start(), start + m.end()) for m in re.finditer(r"\S+", run)]


def _cue_before(text: str, start: int) -> bool:
    window = text[max(0, start - _CUE_WINDOW) : start].lower()
    return CUE_BEFORE.search(window) is not None


def _decide(
    words: list[tuple[str, int, int]], cue: bool, lowered_words: frozenset[str]
) -> float | None:
    """The score of a run of name-like words (common words already cut off), or None."""
    names = [w for w, _, _ in words if w.lower() not in _PARTICLES_SET]
    lower = [w.lower() for w in names]
    if not lower:
        return None
    if any(w in NOT_NAMES for w in lower):
        return None
    first = lower[0] in first_names()
    if len(names) == 1:
        if not cue:
            return None
        return 0.7 if first or lower[0] in last_names() else 0.65
    if cue:
        return 0.8
    if first and not any(w in lowered_words for w in lower[1:]):
        return 0.85
    if lower[-1] in last_names() and not any(w in lowered_words for w in lower):
        return 0.6
    return None


_PARTICLES_SET: Final = frozenset(_PARTICLE.strip("(?:)").split("|"))


def name_candidates(text: str) -> Iterator[Candidate]:
    """PERSON spans in ``text`` from the gazetteer and cues."""
    lowered_words: frozenset[str] | None = None
    for m in _RUN.finditer(text):
        words = _split_words(m.group(), m.start())
        cue = False
        while words and (words[0][0].lower() in NOT_NAMES or words[0][0].rstrip(".") in TITLES):
            cue = cue or words[0][0].rstrip(".") in TITLES or words[0][0].lower() in _CUE_WORDS
            words = words[1:]
        while words and words[-1][0].lower() in NOT_NAMES:
            words = words[:-1]
        if not words:
            continue
        cue = cue or _cue_before(text, words[0][1])
        if lowered_words is None:
            lowered_words = frozenset(_LOWER_WORD.findall(text))
        score = _decide(words, cue, lowered_words)
        if score is not None:
            yield PiiType.PERSON, words[0][1], words[-1][2], score


_CUE_WORDS: Final = frozenset({"dear", "hi", "hello", "hey", "thanks", "regards", "cheers", "by"})


def uncertain_name_run(text: str) -> bool:
    """Whether ``text`` has a run of 2+ capitalised non-common words whose first is no known first name."""
    for m in _RUN.finditer(text):
        words = [w for w in m.group().split() if w.lower() not in NOT_NAMES]
        if len(words) >= 2 and words[0].lower() not in first_names():
            return True
    return False
