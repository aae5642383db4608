"""PII and secrets of a prompt echoed in the model's output (issue 8, item 5, output side).

The spans come from the PII detector (callers pass them; this module never runs it). A type is echoed
when a span's value, normalized, appears in both texts:

- numbers (phone, card, SSN, date of birth, IP address) compare digits only, so ``555-010-1234`` in the
  prompt matches ``(555) 010 1234`` in the output; a run of digits in the other text may be broken by
  spaces and ``-./()+`` but not by letters;
- everything else compares case-folded words with punctuation and spacing removed, on word boundaries,
  so ``Jane  O'Neil`` matches ``jane o neil`` but ``Ann`` does not match ``planning``. Machine-made
  values (e-mail, IBAN, keys, secrets) of :data:`MIN_COMPACT_CHARS` or more also match with every
  separator removed (``sk-ab 12cd`` vs ``SKAB12CD``); names and addresses do not, so a name inside an
  e-mail address is not a name echo.

Values shorter than :data:`MIN_VALUE_CHARS` (digits: :data:`MIN_VALUE_DIGITS`) are ignored: too short to
tell an echo from chance. Any SECRET or API_KEY span in the output counts, echoed or not: a model should
never print a credential. Spans that do not fit their text are skipped.

Guarantees: pure, no model; never raises on any str and any spans; linear in the texts' lengths
times the number of spans. Accuracy: ``.venv/bin/python -m bench.bench_content`` (``echoed_pii`` rows).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

from streams.text.findings import PiiSpan, PiiType

__all__ = ["ALWAYS_LEAKED", "NUMERIC_TYPES", "echoed_pii", "normalize_value"]

NUMERIC_TYPES: Final = frozenset(
    {PiiType.PHONE, PiiType.CREDIT_CARD, PiiType.US_SSN, PiiType.DATE_OF_BIRTH, PiiType.IP_ADDRESS}
)
ALWAYS_LEAKED: Final = frozenset({PiiType.SECRET, PiiType.API_KEY})
# Machine-made values, also compared with every separator removed (names and addresses are not).
COMPACT_TYPES: Final = frozenset({PiiType.EMAIL, PiiType.IBAN, PiiType.API_KEY, PiiType.SECRET})
MIN_VALUE_CHARS: Final = 3
MIN_VALUE_DIGITS: Final = 4
MIN_COMPACT_CHARS: Final = 8
NUMBER_RUN: Final = re.compile(r"\d(?:[\d \-./()+]*\d)?")
NON_WORD: Final = re.compile(r"[\W_]+")


def _words(text: str) -> str:
    """Case-folded words joined by single spaces, padded with one space either side."""
    return " " + " ".join(NON_WORD.sub(" ", text.casefold()).split()) + " "


def normalize_value(value: str, pii_type: PiiType) -> str:
    """The comparable form of a span's text: digits for numbers, else words joined by spaces."""
    if pii_type in NUMERIC_TYPES:
        return "".join(ch for ch in value if ch.isdigit())
    return _words(value).strip()


class _Haystack:
    """One text, prepared once for every lookup: digit runs, spaced words, compact characters."""

    def __init__(self, text: str) -> None:
        self.digit_runs = [
            "".join(ch for ch in run if ch.isdigit()) for run in NUMBER_RUN.findall(text)
        ]
        self.words = _words(text)
        self.compact = self.words.replace(" ", "")

    def contains(self, value: str, pii_type: PiiType) -> bool:
        if pii_type in NUMERIC_TYPES:
            return len(value) >= MIN_VALUE_DIGITS and any(value in run for run in self.digit_runs)
        if len(value.replace(" ", "")) < MIN_VALUE_CHARS:
            return False
        if f" {value} " in self.words:
            return True
        compact = value.replace(" ", "")
        return (
            pii_type in COMPACT_TYPES
            and len(compact) >= MIN_COMPACT_CHARS
            and compact in self.compact
        )


def _values(text: str, spans: Iterable[PiiSpan]) -> list[tuple[PiiType, str]]:
    values = []
    for span in spans:
        if not isinstance(span, PiiSpan) or span.end > len(text):
            continue
        value = normalize_value(text[span.start : span.end], span.type)
        if value:
            values.append((span.type, value))
    return values


def echoed_pii(
    input_text: str,
    input_spans: Sequence[PiiSpan],
    output_text: str,
    output_spans: Sequence[PiiSpan],
) -> tuple[PiiType, ...]:
    """The PII types whose values appear in both texts, plus any secret in the output (sorted, unique)."""
    if not isinstance(input_text, str) or not isinstance(output_text, str):
        return ()
    echoed: set[PiiType] = set()
    in_output = _Haystack(output_text)
    in_input = _Haystack(input_text)
    for pii_type, value in _values(input_text, input_spans or ()):
        if in_output.contains(value, pii_type):
            echoed.add(pii_type)
    for pii_type, value in _values(output_text, output_spans or ()):
        if pii_type in ALWAYS_LEAKED or in_input.contains(value, pii_type):
            echoed.add(pii_type)
    return tuple(sorted(echoed, key=list(PiiType).index))
