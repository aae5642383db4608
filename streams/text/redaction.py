"""Pattern-based redaction of secrets and personal data in captured text, metadata and dead letters.

Runs in the worker before any text or metadata value reaches the ``calls`` topic or storage (privacy
by default: the SDK does not capture text at all unless told to), and on every dead letter
(``streams.ingest.deadletter``). Each match is replaced by a typed placeholder such as ``<EMAIL>``;
:meth:`Redactor.redact` returns the text and the count per kind, so guardrail metrics can count what
was removed without keeping it. :meth:`Redactor.redact_mapping` does the same for every value of a
mapping (metadata); a value under a name that says it is a secret (``password``, ``api_key``,
``secret``... detect-secrets' keyword list) is replaced whole.

Finds (patterns, not a model): well-formed emails, card numbers (Luhn-checked), US SSNs, IPv4
addresses, IBANs, phone numbers in international or North-American form, bearer tokens, and the
secret shapes of ``streams.text.secret_shapes`` (kind ``SECRET``): OpenAI/Anthropic ``sk-`` keys, Google
``AIza`` keys, AWS access key ids and secret access keys named as such, GitHub classic and
fine-grained tokens, GitLab, Slack, Stripe live keys, JWTs, SendGrid, PyPI, Square, Azure storage and
Mailchimp keys, PEM/OpenSSH/PGP/PuTTY private key blocks (spanning lines), and ``user:password@`` in
URLs. Misses: names, street addresses, free-form passwords in prose, bare AWS secret keys with no
``aws...key`` name near them, and secret shapes not listed there.

Cost (measured on these 2-core machines with other work running, load ~5; expect about half on an
idle core): ~45 µs for a 60-character text and ~1 ms for a 2 KB text (before the secret shapes were
added: ~30 µs and ~0.67 ms). The secret shapes run only on texts that hold one of their literal
markers. Texts of up to ``CACHED_TEXT_CHARS`` characters are cached (at most ``CACHE_ENTRIES``), so
a repeated metadata value (regions, feature names) costs a dict lookup. Every pattern is linear in
the text's length, even for hostile input (repeated prefixes such
as ``a.a.a.``, ``eyJeyJ``, ``aws key=``): the worst seen is ~4 µs per character (100 KB of
``aws key=``), where ``a.a.a.`` once took 33 s per 100 KB. Nothing here blocks or does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from streams.text.secret_shapes import SECRET_FIELD_NAME, SECRET_SHAPES

__all__ = ["REDACTION_KINDS", "SECRET", "SECRET_PLACEHOLDER", "Redaction", "Redactor", "add_counts"]


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
    group: int = 0  # the part of a match that is replaced (0: all of it)
    markers: tuple[str, ...] = ()  # run only if the lower-cased text holds one of them (): always

    def may_match(self, lowered: str) -> bool:
        return not self.markers or any(marker in lowered for marker in self.markers)


SECRET: Final = "SECRET"
# The redaction cache: texts up to this long, at most this many (~10 MB at the bound).
CACHED_TEXT_CHARS: Final = 256
CACHE_ENTRIES: Final = 16_384

# Order matters: secrets and cards before phone numbers, which would match parts of them; the secret
# shapes (private-key blocks first) before everything else.
_RULES: Final[tuple[_Rule, ...]] = (
    *(_Rule(SECRET, s.pattern, group=s.group, markers=s.markers) for s in SECRET_SHAPES),
    _Rule(
        SECRET,
        re.compile(
            r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}"
            r"|xox[abpr]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{35})\b"
        ),
    ),
    _Rule("BEARER_TOKEN", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-]{20,}")),
    # Starts only where no local-part character precedes: with ``\b`` a run like ``a.a.a.a...``
    # was rescanned from every word start (quadratic: 100 KB took 33 s).
    _Rule(
        "EMAIL",
        re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b"),
    ),
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

SECRET_PLACEHOLDER: Final = f"<{SECRET}>"
REDACTION_KINDS: Final[tuple[str, ...]] = tuple(dict.fromkeys(rule.kind for rule in _RULES))


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

        self._secret_fields = kinds is None or SECRET in kinds
        # text -> its redaction, for texts of at most CACHED_TEXT_CHARS (bounded, cleared when full;
        # in memory only, like the rows being redacted).
        self._cache: dict[str, Redaction] = {}

    def redact(self, text: str) -> Redaction:
        """``text`` with every finding replaced, and the count per kind. Short texts (metadata
        values, which repeat: regions, feature names, ids) are answered from a bounded cache."""
        if len(text) > CACHED_TEXT_CHARS:
            return self._redact(text)
        known = self._cache.get(text)
        if known is None:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            known = self._cache[text] = self._redact(text)
        return Redaction(text=known.text, counts=dict(known.counts))

    def _redact(self, text: str) -> Redaction:
        counts: dict[str, int] = {}
        lowered = text.lower()
        for rule in self._rules:
            if rule.may_match(lowered):
                text = rule.pattern.sub(self._replacer(rule, counts), text)
        return Redaction(text=text, counts=counts)

    def is_secret_field(self, name: str) -> bool:
        """Whether a field called ``name`` holds a secret as a whole (``password``, ``api_key``...)."""
        return self._secret_fields and SECRET_FIELD_NAME.search(name) is not None

    def redact_field(self, name: str, text: str) -> Redaction:
        """Redact the value of a named field: all of it if the name says it is a secret."""
        if text and self.is_secret_field(name):
            return Redaction(text=SECRET_PLACEHOLDER, counts={SECRET: 1})
        return self.redact(text)

    def redact_mapping(
        self, values: Mapping[str, str], counts: dict[str, int] | None = None
    ) -> dict[str, str]:
        """Every value redacted (keys are kept: they name fields); adds what it found to ``counts``."""
        out: dict[str, str] = {}
        for name, value in values.items():
            result = self.redact_field(name, value)
            out[name] = result.text
            if counts is not None:
                add_counts(counts, result.counts)
        return out

    @staticmethod
    def _replacer(rule: _Rule, counts: dict[str, int]) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            found = match.group(0)
            if not rule.accept(found):
                return found
            counts[rule.kind] = counts.get(rule.kind, 0) + 1
            if not rule.group:
                return f"<{rule.kind}>"
            start, end = (
                match.start(rule.group) - match.start(),
                match.end(rule.group) - match.start(),
            )
            return f"{found[:start]}<{rule.kind}>{found[end:]}"

        return replace


def add_counts(into: dict[str, int], counts: Mapping[str, int]) -> None:
    """Add per-kind redaction counts into a running total."""
    for kind, n in counts.items():
        into[kind] = into.get(kind, 0) + n
