"""Price overrides for custom, fine-tuned and self-hosted models (a YAML file, checked with pydantic).

File shape (see ``config/prices.example.yaml``)::

    version: 1
    models:
      - provider: openai                 # event provider name or genai-prices id; glob allowed
        model: "ft:gpt-4o-mini-*"        # exact name or glob, case-insensitive
        input_mtok: 0.30                 # USD per million tokens
        output_mtok: 1.20
        cache_read_mtok: 0.15            # optional, default: input_mtok
        cache_write_mtok: 0.30           # optional, default: input_mtok
        reasoning_mtok: 1.20             # optional, default: output_mtok
      - provider: vllm
        model: meta-llama/Llama-3.1-8B-Instruct
        self_hosted:
          gpu_hour_usd: 2.50             # USD per GPU-hour
          gpus: 2                        # GPUs serving the model
          tokens_per_second: 2500        # sustained tokens/s (input + output) of the deployment

Self-hosted price: every token (input, cached, output, reasoning) costs the same::

    usd_per_token = gpu_hour_usd * gpus / (3600 * tokens_per_second)

e.g. 2.50 USD * 2 GPUs / (3600 s * 2500 tokens/s) = 0.000000556 USD per token (0.556 USD per million).
Use the deployment's average sustained throughput, so idle time is paid for by the tokens served.

Matching: an entry applies when its provider matches the event's provider name or its canonical id
(``streams.analytics.pricing.naming``) and its model matches the model name. Entries with exact names win over
globs; among globs the first in file order wins. A missing event provider is matched as ``""`` (so
``provider: "*"`` covers it).

Errors: every problem raises :class:`PriceOverrideError` naming the file, the entry (index, provider and
model) and the bad value. Reading the file is the only I/O; matching never blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from streams.analytics.pricing.files import describe_errors, read_mapping, require_unique_entries
from streams.analytics.pricing.naming import NamePattern, canonical_provider
from streams.analytics.pricing.rates import TokenRates

__all__ = [
    "SECONDS_PER_HOUR",
    "TOKENS_PER_MILLION",
    "PriceOverride",
    "PriceOverrideError",
    "PriceOverrideFile",
    "PriceOverrides",
    "SelfHostedCost",
    "load_price_overrides",
]

SECONDS_PER_HOUR: Final = 3600
TOKENS_PER_MILLION: Final = 1_000_000


class PriceOverrideError(ValueError):
    """A price-override file that cannot be used; the message names the file, entry and value."""


class SelfHostedCost(BaseModel):
    """A self-hosted deployment (vLLM, TGI...) priced from its GPU cost and throughput."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    gpu_hour_usd: float = Field(gt=0.0)
    gpus: int = Field(ge=1)
    tokens_per_second: float = Field(gt=0.0)

    @property
    def usd_per_token(self) -> float:
        return self.gpu_hour_usd * self.gpus / (SECONDS_PER_HOUR * self.tokens_per_second)


class PriceOverride(BaseModel):
    """One model's price: per-million-token prices, or a self-hosted GPU cost."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)
    input_mtok: float | None = Field(default=None, ge=0.0)
    output_mtok: float | None = Field(default=None, ge=0.0)
    cache_read_mtok: float | None = Field(default=None, ge=0.0)
    cache_write_mtok: float | None = Field(default=None, ge=0.0)
    reasoning_mtok: float | None = Field(default=None, ge=0.0)
    self_hosted: SelfHostedCost | None = None

    @field_validator("provider", "model", mode="after")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(f"must not be blank, got {value!r}")
        return value.strip()

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        per_token = {
            name: getattr(self, name)
            for name in (
                "input_mtok",
                "output_mtok",
                "cache_read_mtok",
                "cache_write_mtok",
                "reasoning_mtok",
            )
            if getattr(self, name) is not None
        }
        if self.self_hosted is not None and per_token:
            raise ValueError(
                f"give self_hosted or per-token prices, not both; got also {per_token}"
            )
        if self.self_hosted is None and (self.input_mtok is None or self.output_mtok is None):
            raise ValueError(
                "needs input_mtok and output_mtok (or self_hosted), "
                f"got input_mtok={self.input_mtok!r}, output_mtok={self.output_mtok!r}"
            )
        return self

    def rates(self) -> TokenRates:
        """Per-token USD rates; see the module docstring for the defaults and the GPU formula."""
        if self.self_hosted is not None:
            rate = self.self_hosted.usd_per_token
            return TokenRates(0.0, rate, rate, rate, rate, rate)
        assert self.input_mtok is not None and self.output_mtok is not None  # by _one_kind
        input_mtok, output_mtok = self.input_mtok, self.output_mtok

        def per_token(mtok: float | None, default: float) -> float:
            return (default if mtok is None else mtok) / TOKENS_PER_MILLION

        return TokenRates(
            per_call=0.0,
            input=per_token(input_mtok, input_mtok),
            cache_read=per_token(self.cache_read_mtok, input_mtok),
            cache_write=per_token(self.cache_write_mtok, input_mtok),
            output=per_token(output_mtok, output_mtok),
            reasoning=per_token(self.reasoning_mtok, output_mtok),
        )


class PriceOverrideFile(BaseModel):
    """The whole override file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    models: list[PriceOverride] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        require_unique_entries(self.models)
        return self


class PriceOverrides:
    """Compiled override entries; :meth:`find` gives the rates for a (provider, model)."""

    def __init__(self, entries: Sequence[PriceOverride], source: str = "<memory>") -> None:
        self.source = source
        self.entries: tuple[PriceOverride, ...] = tuple(entries)
        self._exact: dict[tuple[str, str], TokenRates] = {}
        self._globs: list[tuple[NamePattern, NamePattern, TokenRates]] = []
        for entry in self.entries:
            provider, model = NamePattern(entry.provider), NamePattern(entry.model)
            if provider.is_glob or model.is_glob:
                self._globs.append((provider, model, entry.rates()))
            else:
                self._exact[(provider.pattern, model.pattern)] = entry.rates()

    def __len__(self) -> int:
        return len(self.entries)

    def find(self, provider: str | None, model: str) -> TokenRates | None:
        """The override rates for an event's provider and model, or None."""
        raw = (provider or "").strip().lower()
        names = (raw, canonical_provider(raw)) if raw else ("",)
        lowered = model.lower()
        for name in names:
            if (rates := self._exact.get((name, lowered))) is not None:
                return rates
        for provider_pattern, model_pattern, rates in self._globs:
            if model_pattern.matches(lowered) and any(provider_pattern.matches(n) for n in names):
                return rates
        return None


def load_price_overrides(path: str | Path) -> PriceOverrides:
    """Read and check a price-override file; raises PriceOverrideError naming the bad value."""
    file = Path(path)
    raw = read_mapping(file.read_text(encoding="utf-8"), str(file), PriceOverrideError)
    try:
        parsed = PriceOverrideFile.model_validate(raw)
    except ValidationError as e:
        raise PriceOverrideError(describe_errors(str(file), "price overrides", raw, e)) from e
    return PriceOverrides(parsed.models, source=str(file))
