"""What a dead letter keeps of the bytes it stands for: redacted, capped, with the original's size and hash.

:func:`store_payload` is the one way raw payload bytes become a stored dead-letter payload;
``streams.ingest.records.DeadLetter`` applies it (and :func:`store_reason`) on construction, so neither the
``dlq`` topic record nor the ``llm_dlq`` row can hold the raw bytes.

Guarantees:
- Size: the stored payload is at most :data:`PAYLOAD_CAP_BYTES` and the stored reason at most
  :data:`REASON_CAP_CHARS` characters, so a dead letter always fits a Kafka record and a row. A payload
  cut short ends with :data:`TRUNCATED_MARKER` (cut on a UTF-8 character boundary).
- Identity: ``original_size`` and ``original_sha256`` are those of the raw bytes, before any change.
- Privacy: text goes through the full ``streams.text.redaction.Redactor`` (every kind), whatever the worker's
  ``redact_text`` setting. For a JSON payload every string at any depth (values and keys) is redacted,
  and a value under a field named like a secret (``password``, ``api_key``...) is replaced whole. Other
  bytes are decoded as UTF-8 (invalid bytes become U+FFFD) and redacted as one text. The redactor's
  own limits apply (see its docstring: it misses names and addresses).
- Fidelity: when nothing is redacted and the bytes fit, they are kept exactly as they came. Otherwise a
  JSON payload is re-serialized compactly (orjson), so its formatting may change.
- Determinism: the same bytes always give the same stored payload, and storing a stored payload again
  gives it back, so a dead letter read back from the ``dlq`` topic has the same row.
- Cost: what lies past the cap is cut before it is redacted: a string is redacted only up to
  :data:`REDACTION_LOOKAHEAD_CHARS` past the cap (more only if redaction shrank it by that much), so a 15 MiB
  payload costs a JSON parse, a sha256 and ~0.3 MiB of redaction (~0.2 s here), not 15 MiB of it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

import orjson

from streams.text.redaction import SECRET_PLACEHOLDER, Redactor

__all__ = [
    "PAYLOAD_CAP_BYTES",
    "REASON_CAP_CHARS",
    "REDACTION_LOOKAHEAD_CHARS",
    "TRUNCATED_MARKER",
    "StoredPayload",
    "store_payload",
    "store_reason",
]

PAYLOAD_CAP_BYTES: Final = 256 * 1024
REASON_CAP_CHARS: Final = 4096
TRUNCATED_MARKER: Final = b"...<TRUNCATED>"
# Text redacted past a cut point: longer than any secret shape the redactor finds in one match (a PEM
# block is found from its BEGIN line to the end of the text, so a cut through one is still redacted).
# A secret cut through at the end of what was redacted therefore lies wholly past the cap.
REDACTION_LOOKAHEAD_CHARS: Final = 16 * 1024

_REDACTOR: Final = Redactor()


@dataclass(frozen=True, slots=True)
class StoredPayload:
    payload: bytes
    original_size: int
    original_sha256: str


def store_payload(raw: bytes, redactor: Redactor = _REDACTOR) -> StoredPayload:
    """The stored form of ``raw``: redacted, at most :data:`PAYLOAD_CAP_BYTES` long."""
    body = _redacted(raw, redactor)
    if len(body) > PAYLOAD_CAP_BYTES:
        body = _cut(body, PAYLOAD_CAP_BYTES - len(TRUNCATED_MARKER)) + TRUNCATED_MARKER
    return StoredPayload(body, len(raw), hashlib.sha256(raw).hexdigest())


def store_reason(reason: str, redactor: Redactor = _REDACTOR) -> str:
    """A dead letter's reason, redacted (reasons quote bad values) and at most REASON_CAP_CHARS."""
    text = _redact_head(reason, REASON_CAP_CHARS, redactor)
    if len(text) <= REASON_CAP_CHARS:
        return text
    marker = TRUNCATED_MARKER.decode()
    return text[: REASON_CAP_CHARS - len(marker)] + marker


def _redacted(raw: bytes, redactor: Redactor) -> bytes:
    """``raw`` itself if redaction changes nothing in it, else its redacted form (maybe cut)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    else:
        walker = _JsonRedaction(redactor, PAYLOAD_CAP_BYTES)
        try:
            redacted = walker.value(doc)
        except RecursionError:  # nesting deeper than Python's stack: redact it as plain text
            pass
        else:
            return orjson.dumps(redacted) if walker.changed else raw
    text = raw.decode("utf-8", errors="replace")
    out = _redact_head(text, PAYLOAD_CAP_BYTES, redactor)
    return raw if out == text else out.encode()


def _redact_head(text: str, keep: int, redactor: Redactor) -> str:
    """``text`` redacted; may be cut where its redacted form is past ``keep`` + the lookahead.

    Each character takes at least one byte once encoded, so whatever lies past ``keep`` characters of
    the result also lies past ``keep`` bytes of the stored payload, and is cut from it.
    """
    if keep <= 0:
        return ""
    end = keep + REDACTION_LOOKAHEAD_CHARS
    while end < len(text):
        head = redactor.redact(text[:end]).text
        if len(head) >= keep + REDACTION_LOOKAHEAD_CHARS:
            return head
        end *= 2  # redaction shrank the head below the cap: look further
    return redactor.redact(text).text


class _JsonRedaction:
    """Redacts every string of a parsed JSON document, in serialization order, within a budget.

    ``left`` is how many characters of strings may still appear before the cap: strings met once it is
    spent would be cut from the stored payload anyway, so they become "" unread.
    """

    def __init__(self, redactor: Redactor, budget: int) -> None:
        self.redactor = redactor
        self.left = budget
        self.changed = False

    def value(self, value: Any, name: str = "") -> Any:
        if isinstance(value, str):
            return self.text(value, name)
        if isinstance(value, list):
            return [self.value(item, name) for item in value]
        if isinstance(value, dict):
            return self.mapping(value)
        if value is None or isinstance(value, bool) or not name:
            return value
        if self.redactor.is_secret_field(name):  # e.g. {"pin_password": 1234}
            self.changed = True
            return SECRET_PLACEHOLDER
        return value

    def mapping(self, doc: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, item in doc.items():
            key = self.text(name, "")
            if key in out:  # two keys redacted alike: keep both values
                key = f"{key}#{len(out)}"
            out[key] = self.value(item, name)
        return out

    def text(self, text: str, name: str) -> str:
        if text and name and self.redactor.is_secret_field(name):
            out = SECRET_PLACEHOLDER
        else:
            out = _redact_head(text, self.left, self.redactor)
        self.left -= len(out)
        if out != text:
            self.changed = True
        return out


def _cut(body: bytes, limit: int) -> bytes:
    """The first ``limit`` bytes or fewer, not ending inside a UTF-8 character."""
    end = limit
    while end > 0 and body[end] & 0xC0 == 0x80:  # body[end] continues a character: drop it all
        end -= 1
    return body[:end]
