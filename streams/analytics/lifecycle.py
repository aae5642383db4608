"""Model lifecycle: flag traffic to models that are deprecated or about to be retired.

Sources, first match wins:

1. a lifecycle file, by default ``streams/analytics/data/model_deprecations.yaml``
   (maintained by hand from the
   providers' deprecation pages: provider, model, deprecation_date, retirement_date, replacement, source);
2. genai-prices' bundled snapshot. It has no dates, only a ``deprecated`` flag on some models (71 in
   genai-prices 0.2.3); a flagged model is reported as ``deprecated`` with unknown dates.

Matching: a file entry's provider is compared with the event's provider name as sent (e.g.
``gcp.vertex_ai``, for platform-specific schedules) and with its canonical id (``google``, see
``streams.analytics.pricing.naming``); without an event provider, the provider genai-prices infers from the
model name (``claude-2.1`` -> ``anthropic``) is used. An entry's model is an exact name or a glob,
case-insensitive. Exact entries win over globs, globs apply in file order. Retirement schedules differ
between platforms: an ``openai`` entry does not apply to ``azure`` traffic.

Status for a day ``today`` and a warning window of ``warn_days`` (checked in this order):
``retired`` from the retirement date on; ``retiring_soon`` when it is 1..warn_days days ahead;
``deprecated`` from the deprecation date on (or when flagged without a date); ``deprecation_soon`` when it
is 1..warn_days days ahead; else ``ok``. Unknown models are ``ok``.

Errors: a bad file raises :class:`LifecycleFileError` naming the file, the entry and the bad value.
Loading reads one file; lookups are cached per (provider, model) in a bounded LRU and never block.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from streams.analytics.pricing.files import describe_errors, read_mapping, require_unique_entries
from streams.analytics.pricing.naming import NamePattern, canonical_provider
from streams.analytics.pricing.rates import GENAI_PRICES_VERSION, BundledPrices

__all__ = [
    "BUNDLED_LIFECYCLE_FILE",
    "DEFAULT_CACHE_SIZE",
    "DeprecationCatalog",
    "DeprecationStatus",
    "LifecycleFile",
    "LifecycleFileError",
    "ModelLifecycle",
]

BUNDLED_LIFECYCLE_FILE: Final = "data/model_deprecations.yaml"
DEFAULT_CACHE_SIZE: Final = 4096
GENAI_PRICES_SOURCE: Final = f"genai-prices {GENAI_PRICES_VERSION}: deprecated flag (no dates)"


class DeprecationStatus(enum.StrEnum):
    OK = "ok"
    DEPRECATION_SOON = "deprecation_soon"
    DEPRECATED = "deprecated"
    RETIRING_SOON = "retiring_soon"
    RETIRED = "retired"


class LifecycleFileError(ValueError):
    """A lifecycle file that cannot be used; the message names the file, entry and value."""


class ModelLifecycle(BaseModel):
    """What is known of one model's end of life."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)
    deprecation_date: date | None = None
    retirement_date: date | None = None
    # Known to be deprecated although the date is not (genai-prices' flag).
    deprecated: bool = False
    replacement: str | None = None
    source: str = Field(min_length=1)

    @field_validator("provider", "model", "source", mode="after")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(f"must not be blank, got {value!r}")
        return value.strip()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.deprecation_date is None and self.retirement_date is None and not self.deprecated:
            raise ValueError("needs a deprecation_date, a retirement_date or deprecated: true")
        if self.deprecated and self.deprecation_date is not None:
            raise ValueError(
                "deprecated: true is for entries without a deprecation_date, "
                f"got deprecation_date={self.deprecation_date.isoformat()}"
            )
        if (
            self.deprecation_date is not None
            and self.retirement_date is not None
            and self.retirement_date < self.deprecation_date
        ):
            raise ValueError(
                f"retirement_date {self.retirement_date.isoformat()} is before "
                f"deprecation_date {self.deprecation_date.isoformat()}"
            )
        return self

    def status(self, today: date, warn_days: int) -> DeprecationStatus:
        """This model's status on ``today`` with a warning window of ``warn_days`` days."""
        if self.retirement_date is not None:
            days = (self.retirement_date - today).days
            if days <= 0:
                return DeprecationStatus.RETIRED
            if days <= warn_days:
                return DeprecationStatus.RETIRING_SOON
        if self.deprecation_date is not None:
            days = (self.deprecation_date - today).days
            if days <= 0:
                return DeprecationStatus.DEPRECATED
            if days <= warn_days:
                return DeprecationStatus.DEPRECATION_SOON
        return DeprecationStatus.DEPRECATED if self.deprecated else DeprecationStatus.OK


class LifecycleFile(BaseModel):
    """The whole lifecycle file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    models: list[ModelLifecycle] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        require_unique_entries(self.models)
        return self


def _parse(text: str, source: str) -> list[ModelLifecycle]:
    raw = read_mapping(text, source, LifecycleFileError)
    try:
        return LifecycleFile.model_validate(raw).models
    except ValidationError as e:
        raise LifecycleFileError(describe_errors(source, "model lifecycle entries", raw, e)) from e


class DeprecationCatalog:
    """Lifecycle lookups for (provider, model) pairs; see the module docstring."""

    def __init__(
        self,
        entries: Sequence[ModelLifecycle],
        *,
        include_genai_prices: bool = True,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be >= 1, got {cache_size!r}")
        self.entries: tuple[ModelLifecycle, ...] = tuple(entries)
        self._exact: dict[tuple[str, str], ModelLifecycle] = {}
        self._globs: list[tuple[NamePattern, NamePattern, ModelLifecycle]] = []
        for entry in self.entries:
            provider, model = NamePattern(entry.provider), NamePattern(entry.model)
            if provider.is_glob or model.is_glob:
                self._globs.append((provider, model, entry))
            else:
                self._exact[(provider.pattern, model.pattern)] = entry
        self._bundled = BundledPrices()
        self._include_genai_prices = include_genai_prices
        self._lookup = functools.lru_cache(maxsize=cache_size)(self._lookup_uncached)
        self._status = functools.lru_cache(maxsize=cache_size)(self._status_uncached)

    @classmethod
    def load(cls, path: Path | None = None, *, include_genai_prices: bool = True) -> Self:
        """The catalog from ``path`` (default: the bundled file) plus genai-prices' flags."""
        if path is None:
            source = f"streams/{BUNDLED_LIFECYCLE_FILE}"
            text = (Path(__file__).parent / BUNDLED_LIFECYCLE_FILE).read_text(encoding="utf-8")
        else:
            source, text = str(path), Path(path).read_text(encoding="utf-8")
        return cls(_parse(text, source), include_genai_prices=include_genai_prices)

    def lookup(self, provider: str | None, model: str) -> ModelLifecycle | None:
        """What is known of ``model``'s end of life (cached); None when nothing is."""
        return self._lookup(provider, model)

    def status(
        self, provider: str | None, model: str | None, today: date, warn_days: int
    ) -> DeprecationStatus:
        """The model's lifecycle status on ``today`` (cached); ``ok`` for unknown models."""
        if warn_days < 0:
            raise ValueError(f"warn_days must be >= 0, got {warn_days!r}")
        if not model:
            return DeprecationStatus.OK
        return self._status(provider, model, today, warn_days)

    def _status_uncached(
        self, provider: str | None, model: str, today: date, warn_days: int
    ) -> DeprecationStatus:
        lifecycle = self._lookup(provider, model)
        return DeprecationStatus.OK if lifecycle is None else lifecycle.status(today, warn_days)

    def _lookup_uncached(self, provider: str | None, model: str) -> ModelLifecycle | None:
        raw = (provider or "").strip().lower()
        lowered = model.strip().lower()
        if raw:
            names: tuple[str, ...] = (raw, canonical_provider(raw))
        else:
            inferred = self._bundled.infer_provider(lowered)
            names = ("",) if inferred is None else ("", inferred.id)
        for name in names:
            if (entry := self._exact.get((name, lowered))) is not None:
                return entry
        for provider_pattern, model_pattern, entry in self._globs:
            if model_pattern.matches(lowered) and any(provider_pattern.matches(n) for n in names):
                return entry
        return self._from_genai_prices(provider, lowered)

    def _from_genai_prices(self, provider: str | None, model: str) -> ModelLifecycle | None:
        if not self._include_genai_prices:
            return None
        found = self._bundled.find(provider, model)
        if found is None or not found[1].deprecated:
            return None
        return ModelLifecycle(
            provider=found[0].id, model=found[1].id, deprecated=True, source=GENAI_PRICES_SOURCE
        )
