"""Provider and model names as the price and lifecycle tables see them.

Events carry OTel ``gen_ai.provider.name`` values (``gcp.vertex_ai``, ``aws.bedrock``, ``x_ai``...);
genai-prices and the lifecycle file use short provider ids (``google``, ``aws``, ``x-ai``).
:func:`canonical_provider` maps the former onto the latter through :data:`PROVIDER_ALIASES`, the one
table of such aliases. Names are compared case-insensitively everywhere (genai-prices lower-cases model
references too).

:class:`NamePattern` matches a name exactly or with a shell-style glob (``*``, ``?``, ``[...]``).

Nothing here does I/O or blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final

__all__ = [
    "GLOB_CHARS",
    "PROVIDER_ALIASES",
    "NamePattern",
    "canonical_provider",
]

# OTel gen_ai.provider.name well-known values -> genai-prices provider ids (identity when equal).
PROVIDER_ALIASES: Final[dict[str, str]] = {
    "aws.bedrock": "aws",
    "azure.ai.inference": "azure",
    "azure.ai.openai": "azure",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "gcp.vertex_ai": "google",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
}

GLOB_CHARS: Final = frozenset("*?[")


def canonical_provider(provider: str | None) -> str:
    """The short provider id for an event's provider name; ``""`` when there is none."""
    if not provider:
        return ""
    name = provider.strip().lower()
    return PROVIDER_ALIASES.get(name, name)


@dataclass(frozen=True, slots=True)
class NamePattern:
    """An exact name or a glob, compared case-insensitively."""

    pattern: str

    def __post_init__(self) -> None:
        if not self.pattern.strip():
            raise ValueError(f"a name pattern must not be blank, got {self.pattern!r}")
        object.__setattr__(self, "pattern", self.pattern.strip().lower())

    @property
    def is_glob(self) -> bool:
        return any(char in GLOB_CHARS for char in self.pattern)

    def matches(self, name: str) -> bool:
        """Whether ``name`` (any case) is this name or matches this glob."""
        lowered = name.lower()
        if self.is_glob:
            return fnmatchcase(lowered, self.pattern)
        return lowered == self.pattern
