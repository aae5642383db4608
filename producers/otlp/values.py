"""Reading OTLP ``AnyValue`` attributes (and decoded JSON values) into event-safe Python values.

Every reader returns ``None`` for a value of the wrong type or out of range, so a bad attribute is left out
of the event instead of breaking the event contract; strings are cut to :data:`MAX_LABEL` characters and
identifiers (operation and provider names) are lower-cased with characters outside
:data:`ALLOWED_TOKEN_CHARS` replaced by ``_``. Nothing here raises for any value or does I/O.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Final

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = [
    "ALLOWED_TOKEN_CHARS",
    "MAX_FINISH_REASONS",
    "MAX_LABEL",
    "MAX_TOKENS",
    "boolean_value",
    "bounded_float",
    "count_value",
    "finish_reasons",
    "integer_value",
    "label_value",
    "py_count",
    "py_float",
    "py_int",
    "repaired_token",
    "string_value",
    "token_value",
]

MAX_LABEL: Final = 256
MAX_TOKENS: Final = 100_000_000
MAX_FINISH_REASONS: Final = 16
ALLOWED_TOKEN_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")


def string_value(value: AnyValue | None) -> str | None:
    if value is None:
        return None
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return str(value.int_value)
    return None


def label_value(value: AnyValue | None) -> str | None:
    text = string_value(value)
    if text is None:
        return None
    text = text.strip()
    return text[:MAX_LABEL] or None


def token_value(value: AnyValue | None) -> str | None:
    """A lower-case identifier (``chat``, ``openai``, ``az.ai.inference``), repaired if needed."""
    text = label_value(value)
    return None if text is None else repaired_token(text)


@functools.lru_cache(maxsize=1024)
def repaired_token(text: str) -> str | None:
    text = text.lower()
    if not ALLOWED_TOKEN_CHARS.issuperset(text):
        text = "".join(c if c in ALLOWED_TOKEN_CHARS else "_" for c in text)
    text = text.lstrip("_.-")
    return text or None


def integer_value(value: AnyValue) -> int | None:
    which = value.WhichOneof("value")
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        number = value.double_value
        return int(number) if math.isfinite(number) and number.is_integer() else None
    if which == "string_value":
        text = value.string_value.strip()
        if text.lstrip("-").isdigit() and len(text) < 20:
            return int(text)
    return None


def count_value(value: AnyValue) -> int | None:
    number = integer_value(value)
    return number if number is not None and 0 <= number <= MAX_TOKENS else None


def bounded_float(low: float, high: float) -> Callable[[AnyValue], float | None]:
    def convert(value: AnyValue) -> float | None:
        which = value.WhichOneof("value")
        if which == "double_value":
            number = value.double_value
        elif which == "int_value":
            number = float(value.int_value)
        elif which == "string_value":
            try:
                number = float(value.string_value)
            except ValueError:
                return None
        else:
            return None
        return number if math.isfinite(number) and low <= number <= high else None

    return convert


def boolean_value(value: AnyValue) -> bool | None:
    return value.bool_value if value.WhichOneof("value") == "bool_value" else None


def finish_reasons(value: AnyValue) -> list[str] | None:
    which = value.WhichOneof("value")
    if which == "string_value":
        items = [value.string_value]
    elif which == "array_value":
        items = [v.string_value for v in value.array_value.values if v.HasField("string_value")]
    else:
        return None
    reasons = [item[:MAX_LABEL] for item in items if item][:MAX_FINISH_REASONS]
    return reasons or None


def py_float(low: float, high: float) -> Callable[[object], float | None]:
    def convert(value: object) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        number = float(value)
        return number if math.isfinite(number) and low <= number <= high else None

    return convert


def py_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def py_count(value: object) -> int | None:
    number = py_int(value)
    return number if number is not None and 0 <= number <= MAX_TOKENS else None
