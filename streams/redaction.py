"""Pattern-based redaction of secrets and personal data in captured prompt/output text.

Runs in the worker before any text reaches the ``calls`` topic or storage (privacy by default: the SDK
does not capture text at all unless told to). Each match is replaced by a typed placeholder such as
``<EMAIL>``; :meth:`Redactor.redact` returns the text and the count per kind, so guardrail metrics can
count what was removed without keeping it.

Accuracy: patterns, not a model. It finds well-formed emails, card numbers (Luhn-checked), US SSNs,
IPv4 addresses, IBANs, phone numbers in international or North-American form, and common API-key and
bearer-token shapes. It does not find names or street addresses. Cost: ~10-30 µs per short text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

__all__ = ["REDACTION_KINDS", "Redaction", "Redactor"]


def _luhn_ok(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _always(_: str) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    accept: Callable[[str], bool] = _always


# Order matters: secrets and cards before phone numbers, which would match parts of them.
_RULES: Final[tuple[_Rule, ...]] = (
    _Rule(
        "SECRET",
        re.compile(
            r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}"
            r"|xox[abpr]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{35})\b"
        ),
    ),
    _Rule("BEARER_TOKEN", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-]{20,}")),
    _Rule("EMAIL", re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")),
    _Rule("CREDIT_CARD", re.compile(r"\b(?:\d[ \-]?){12,18}\d\b"), _luhn_ok),
    _Rule("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")),
    _Rule("US_SSN", re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")),
    _Rule(
        "IP_ADDRESS",
        re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"),
    ),
    _Rule(
        "PHONE",
        # Not inside a longer run of digit groups (card-like numbers that fail Luhn stay untouched).
        re.compile(
            r"(?<![\w+])(?<!\d[ .\-])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{2,4}\)|\d{2,4})"
            r"[ .\-]\d{3,4}[ .\-]\d{3,4}\b(?![ .\-]?\d)"
        ),
    ),
)

REDACTION_KINDS: Final[tuple[str, ...]] = tuple(rule.kind for rule in _RULES)


@dataclass(frozen=True, slots=True)
class Redaction:
    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Redactor:
    """Replace personal data and secrets in text with ``<KIND>`` placeholders."""

    def __init__(self, kinds: frozenset[str] | None = None) -> None:
        unknown = (kinds or frozenset()) - set(REDACTION_KINDS)
        if unknown:
            raise ValueError(
                f"unknown redaction kinds {sorted(unknown)!r}; known: {REDACTION_KINDS}"
            )
        self._rules = tuple(r for r in _RULES if kinds is None or r.kind in kinds)

    def redact(self, text: str) -> Redaction:
        counts: dict[str, int] = {}
        for rule in self._rules:
            text = rule.pattern.sub(self._replacer(rule, counts), text)
        return Redaction(text=text, counts=counts)

    @staticmethod
    def _replacer(rule: _Rule, counts: dict[str, int]) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            found = match.group(0)
            if not rule.accept(found):
                return found
            counts[rule.kind] = counts.get(rule.kind, 0) + 1
            return f"<{rule.kind}>"

        return replace
