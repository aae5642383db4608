"""Secrets for :mod:`streams.text.pii`: provider API keys (``API_KEY``) and other credentials (``SECRET``).

Reuses ``streams.text.secret_shapes`` (detect-secrets' maintained rules, compiled there) unchanged and
adds the shapes it leaves to the redactor: OpenAI/Anthropic ``sk-`` keys, Google ``AIza`` keys, Hugging
Face ``hf_`` tokens, bearer tokens, and values assigned to a field whose name says it is a secret
(``db_password = "..."``, ``api_key: ...``).

``API_KEY``: a provider key shape (AWS access key id, GitHub, GitLab, Slack, Stripe, SendGrid, PyPI,
Square, Mailchimp, Azure storage, OpenAI, Anthropic, Google, Hugging Face). ``SECRET``: JWTs, PEM/OpenSSH
private-key blocks, ``user:password`` in URLs, AWS secret access keys, bearer tokens and assigned
passwords/secrets.

Placeholders are not secrets: a value holding ``xxxx``, ``your``, ``example``, ``<...>``, ``${...}``,
``...``, ``****``, ``replace``, ``changeme``, ``dummy`` or ``redacted``, or with at most 3 distinct
characters after its prefix, is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from streams.text.findings import PiiType
from streams.text.pii_patterns import Candidate
from streams.text.secret_shapes import SECRET_FIELD_NAME, SECRET_SHAPES, SecretShape

__all__ = ["is_placeholder", "secret_candidates"]

_SECRET_SHAPE_NAMES: Final = frozenset(
    {
        "private_key",
        "url_credentials",
        "aws_secret_access_key",
        "aws_secret_access_key_unquoted",
        "jwt",
    }
)
_EXTRA_KEYS: Final = SecretShape(
    "provider_keys",
    re.compile(
        r"(?<![A-Za-z0-9_\-])(?:sk-(?:proj-|ant-(?:api\d\d-)?|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"
        r"|AIza[0-9A-Za-z_\-]{35}|hf_[A-Za-z0-9]{30,})(?![A-Za-z0-9_\-])"
    ),
    ("sk-", "aiza", "hf_"),
)
_BEARER: Final = SecretShape(
    "bearer", re.compile(r"(?i)\bbearer\s+([A-Za-z0-9._~+/\-]{20,}=*)"), ("bearer",), group=1
)
# name = value / name: value / "name": "value", where the name says it is a secret. The name is found
# from a literal hint (detect-secrets' keyword regex over a whole text costs ~0.8 ms per 1 KB).
_FIELD_HINTS: Final = ("pass", "pwd", "secret", "token", "key", "credential", "auth", "private")
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_MAX_NAME: Final = 48
_VALUE_AFTER_NAME: Final = re.compile(
    r"[\"']?\s{0,3}(?:=|:|=>)\s{0,3}[\"']?([^\s\"',;)}\]]{6,200})"
)
_PLACEHOLDER_WORDS: Final = re.compile(
    r"(?i)xxxx|your|example|<|>|\$\{|\.\.\.|\*\*\*\*|replace|changeme|dummy|redacted|placeholder"
    r"|here|sample|getenv|environ"
)
_MIN_DISTINCT_CHARS: Final = 4
_KEY_PREFIX: Final = re.compile(r"^(?:[a-z]{2,8}[-_](?:[a-z]{2,8}[-_]){0,2}(?:api\d\d-)?|[A-Z]{4})")


def is_placeholder(value: str) -> bool:
    """Whether a key-shaped value is a placeholder such as ``sk-xxxx`` or ``<your-api-key>``."""
    if _PLACEHOLDER_WORDS.search(value):
        return True
    body = _KEY_PREFIX.sub("", value, count=1)
    return len(set(body.lower())) < _MIN_DISTINCT_CHARS


def _char_classes(value: str) -> int:
    return (
        any(c.islower() for c in value)
        + any(c.isupper() for c in value)
        + any(c.isdigit() for c in value)
        + any(not c.isalnum() for c in value)
    )


def _shape_type(shape: SecretShape) -> PiiType:
    return PiiType.SECRET if shape.name in _SECRET_SHAPE_NAMES else PiiType.API_KEY


def _shape_matches(text: str, lowered: str) -> Iterator[Candidate]:
    for shape in (*SECRET_SHAPES, _EXTRA_KEYS, _BEARER):
        if not shape.may_match(lowered):
            continue
        kind = PiiType.SECRET if shape is _BEARER else _shape_type(shape)
        for m in shape.pattern.finditer(text):
            start, end = m.span(shape.group)
            value = text[start:end]
            if shape.name == "private_key" or not is_placeholder(value):
                # URL credentials outrank the email shape that ``password@host`` also has.
                yield kind, start, end, 0.96 if shape.name == "url_credentials" else 0.95


def _field_name_end(text: str, pos: int) -> tuple[int, int]:
    """The identifier around ``pos``: (start, end)."""
    start = pos
    while start > 0 and pos - start < _MAX_NAME and text[start - 1] in _NAME_CHARS:
        start -= 1
    end = pos
    while end < len(text) and end - pos < _MAX_NAME and text[end] in _NAME_CHARS:
        end += 1
    return start, end


def _hint_positions(lowered: str) -> list[int]:
    """Where a field-name hint starts in the lower-cased text, in order."""
    found = []
    for hint in _FIELD_HINTS:
        pos = lowered.find(hint)
        while pos >= 0:
            found.append(pos)
            pos = lowered.find(hint, pos + 1)
    return sorted(found)


def _assigned(text: str, lowered: str) -> Iterator[Candidate]:
    last_end = -1
    for pos in _hint_positions(lowered):
        if pos < last_end:
            continue
        start, end = _field_name_end(text, pos)
        last_end = end
        m = _VALUE_AFTER_NAME.match(text, end)
        if m is None or not SECRET_FIELD_NAME.search(text[start:end]):
            continue
        value = m.group(1)
        if "(" in value or is_placeholder(value):
            continue
        if len(value) >= 8 and _char_classes(value) >= 2:
            yield PiiType.SECRET, m.start(1), m.end(1), 0.7


def secret_candidates(text: str) -> list[Candidate]:
    """Every API key and secret span in ``text`` (may overlap; the caller resolves overlaps)."""
    lowered = text.lower()
    out = list(_shape_matches(text, lowered))
    if "=" in text or ":" in text:
        out.extend(_assigned(text, lowered))
    return out
