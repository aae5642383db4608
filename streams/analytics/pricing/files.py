"""Reading the YAML files of the pricing and lifecycle tables, with errors that name the bad value.

Both files are a mapping with a ``models`` list of entries. :func:`read_mapping` parses one with a safe
loader that keeps dates as strings (so pydantic checks them and shows a bad one as written);
:func:`describe_errors` turns a pydantic error into one line per problem naming the file, the entry
(index, provider and model), the field and the value. Nothing here blocks beyond the caller's read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

import yaml
from pydantic import ValidationError

__all__ = [
    "EntryLabel",
    "ProviderModelEntry",
    "describe_errors",
    "provider_model_label",
    "read_mapping",
    "require_unique_entries",
    "shown",
]

MAX_SHOWN_VALUE_CHARS: Final = 80
_YAML_TIMESTAMP_TAG: Final = "tag:yaml.org,2002:timestamp"


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: dates stay strings, so pydantic checks and names them."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _YAML_TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def shown(value: Any) -> str:
    """``repr(value)``, cut to :data:`MAX_SHOWN_VALUE_CHARS`."""
    text = repr(value)
    if len(text) > MAX_SHOWN_VALUE_CHARS:
        return text[: MAX_SHOWN_VALUE_CHARS - 3] + "..."
    return text


def read_mapping(text: str, source: str, error: type[ValueError]) -> dict[str, Any]:
    """The YAML mapping in ``text``; raises ``error`` naming ``source`` when it is not one."""
    try:
        raw = yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as e:
        raise error(f"{source}: not valid YAML: {e}") from e
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise error(f"{source}: expected a mapping with 'models', got {shown(raw)}")
    return raw


EntryLabel = Callable[[dict[str, Any]], str]


def provider_model_label(entry: dict[str, Any]) -> str:
    return f"provider={entry.get('provider')!r}, model={entry.get('model')!r}"


def _entry_name(raw: dict[str, Any], list_key: str, index: int, label: EntryLabel) -> str:
    entries = raw.get(list_key)
    entry = entries[index] if isinstance(entries, list) and index < len(entries) else None
    if isinstance(entry, dict):
        return f"{list_key}[{index}] ({label(entry)})"
    return f"{list_key}[{index}]"


def describe_errors(
    source: str,
    what: str,
    raw: dict[str, Any],
    error: ValidationError,
    *,
    list_key: str = "models",
    label: EntryLabel = provider_model_label,
    own_messages: bool = False,
) -> str:
    """``"<source>: invalid <what>: models[2] (provider=.., model=..): field: msg, got value; .."``

    ``own_messages``: messages of the file model's own validators already show the value, so they
    are given as written (without pydantic's "Value error, " prefix and without the input).
    """
    lines = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        where, field_loc = "file", loc
        if len(loc) >= 2 and loc[0] == list_key and isinstance(loc[1], int):
            where, field_loc = _entry_name(raw, list_key, loc[1], label), loc[2:]
        field = ".".join(str(part) for part in field_loc)
        field_text = f" {field}:" if field else ""
        if own_messages and item["type"] == "value_error":
            message = item["msg"].removeprefix("Value error, ")
            lines.append(f"{where}:{field_text} {message}")
        else:
            lines.append(f"{where}:{field_text} {item['msg']}, got {shown(item['input'])}")
    return f"{source}: invalid {what}: " + "; ".join(lines)


class ProviderModelEntry(Protocol):
    provider: str
    model: str


def require_unique_entries(entries: Iterable[ProviderModelEntry]) -> None:
    """Raise ValueError naming the first (provider, model) pair listed twice (case-insensitive)."""
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        key = (entry.provider.lower(), entry.model.lower())
        if key in seen:
            raise ValueError(f"duplicate entry for provider={key[0]!r}, model={key[1]!r}")
        seen.add(key)
