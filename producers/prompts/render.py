"""Fill a prompt template's ``{{ name }}`` placeholders.

Guarantees:
- Mustache-style variables only: ``{{name}}``, ``{{ name }}`` (any whitespace inside the braces); a
  name is a letter or ``_`` followed by letters, digits, ``_``, ``.`` or ``-``. No sections, partials or
  HTML escaping: a value is inserted as ``str(value)``.
- Single pass: a value that itself contains ``{{ x }}`` is inserted verbatim, never rendered again.
- Never raises on a missing variable: its placeholder is left as written and its name is reported in
  :attr:`RenderResult.missing` (each name once, in order of first appearance). Text that only looks
  like a placeholder (``{{ 1 }}``, ``{{}}``) is left alone and not reported.

Pure; nothing here blocks or does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["PLACEHOLDER", "RenderResult", "placeholders", "render"]

PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")


@dataclass(frozen=True, slots=True)
class RenderResult:
    text: str
    missing: tuple[str, ...] = ()


def placeholders(template: str) -> tuple[str, ...]:
    """The variable names a template uses, each once, in order of first appearance."""
    return tuple(dict.fromkeys(match.group(1) for match in PLACEHOLDER.finditer(template)))


def render(template: str, variables: Mapping[str, object]) -> RenderResult:
    """``template`` with each ``{{ name }}`` replaced by ``str(variables[name])``."""
    missing: dict[str, None] = {}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return str(variables[name])
        missing[name] = None
        return match.group(0)

    text = PLACEHOLDER.sub(fill, template)
    return RenderResult(text=text, missing=tuple(missing))
