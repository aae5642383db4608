"""``watch.guard(text)``: an in-process check an app may run before it sends a prompt.

Pattern layer only (no model): the prompt-injection signals of ``producers.guard.injection_patterns``
plus a few high-precision shapes of data that should not be sent to a third-party model (email
addresses, US SSNs, Luhn-valid card numbers, provider API keys, JWTs, PEM private keys). The full
detectors run in the text-analysis consumer (``llmwatch analyze``); this is the cheap first line.

Guarantees: :func:`guard` never raises (any internal error gives an ``allow`` verdict with
``error`` set) and never blocks; it reads at most :data:`MAX_GUARD_CHARS` characters. Measured p99 in
``bench/bench_guard.py`` (``docs/guardrails.md``). The verdict carries types and scores, never the text.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Final

from producers.guard.injection_patterns import injection_signals

__all__ = ["FLAG_SCORE", "MAX_GUARD_CHARS", "GuardVerdict", "guard"]

log = logging.getLogger("producers.guard")

# Longer prompts are checked on their first and last halves of this budget (attacks sit at the ends).
MAX_GUARD_CHARS: Final = 20_000
# An injection pattern score at or above this flags the text.
FLAG_SCORE: Final = 0.5
BLOCK_SCORE: Final = 0.85

_SHAPES: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (
        "EMAIL",
        re.compile(
            r"\b[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b"
        ),
    ),
    ("US_SSN", re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")),
    (
        "API_KEY",
        re.compile(
            r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}"
            r"|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})"
        ),
    ),
    (
        "SECRET",
        re.compile(
            r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----|\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}"
        ),
    ),
)
_CARD: Final = re.compile(r"\b(?:\d[ -]?){13,19}\b")
_FOUR_DIGITS: Final = re.compile(r"\d{4}")
# Substrings each shape needs: a text without any of them skips that shape's regex.
_HINTS: Final[dict[str, tuple[str, ...]]] = {
    "EMAIL": ("@",),
    "US_SSN": ("-",),
    "API_KEY": ("sk-", "AKIA", "gh", "xox", "AIza"),
    "SECRET": ("-----BEGIN", "eyJ"),
}


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """What the pattern layer found: a decision, the injection score and category, data types seen."""

    decision: str  # "allow", "flag" or "block"
    injection_score: float = 0.0
    injection_category: str | None = None
    data_types: tuple[str, ...] = ()  # e.g. ("EMAIL", "API_KEY")
    error: str | None = None


_ALLOW: Final = GuardVerdict("allow")


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _data_types(text: str) -> tuple[str, ...]:
    found = [
        name
        for name, pattern in _SHAPES
        if any(hint in text for hint in _HINTS[name]) and pattern.search(text)
    ]
    if _FOUR_DIGITS.search(text) is None:
        return tuple(found)
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            found.append("CREDIT_CARD")
            break
    return tuple(found)


def _window(text: str) -> str:
    if len(text) <= MAX_GUARD_CHARS:
        return text
    half = MAX_GUARD_CHARS // 2
    return text[:half] + "\n" + text[-half:]


def guard(text: object) -> GuardVerdict:
    """Check one prompt. Never raises: a non-string or an internal error gives ``allow``."""
    if not isinstance(text, str) or not text:
        return _ALLOW
    try:
        window = _window(text)
        signals = injection_signals(window)
        types = _data_types(window)
    except Exception as exc:  # the guard must never break the app
        log.debug("llmwatch: guard failed", exc_info=True)
        return GuardVerdict("allow", error=f"{type(exc).__name__}: {exc}")
    score = signals.score
    if score >= BLOCK_SCORE or "API_KEY" in types or "SECRET" in types:
        decision = "block"
    elif score >= FLAG_SCORE or types:
        decision = "flag"
    else:
        decision = "allow"
    return GuardVerdict(decision, score, signals.category if score >= FLAG_SCORE else None, types)
