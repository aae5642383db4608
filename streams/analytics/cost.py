"""The cost of one LLM call, computed at ingest.

:class:`CostCalculator` prices an event's tokens with, in order of precedence:

1. a price override for the (provider, model)
   (``streams.analytics.pricing.overrides``): custom, fine-tuned and
   self-hosted models;
2. genai-prices' bundled snapshot (``streams.analytics.pricing.rates``); nothing is fetched at run time.

Guarantees:
- ``cost_usd`` is the provider-reported cost when the event carries one (``cost_source="provider"``),
  else the calculated cost (``"override"`` or ``"genai-prices"``). The calculated figure is kept in
  ``calculated_cost_usd`` in both cases, so the two can be compared.
- A model without a price gets ``None``, never 0 (``cost_source=""``); so does a model genai-prices
  prices only per audio hour, page or character. Models genai-prices lists with no prices at all
  (free tiers) cost 0. An event whose model has no price is counted in
  :meth:`CostCalculator.unknown_models` under its (provider, model), whether or not a reported cost was
  present (a missing model counts as ``""``). Events with neither a model nor tokens (tool or retrieval
  spans) are not counted. The counter
  holds at most ``max_unknown_models`` keys; later keys are summed under :data:`OTHER_MODELS_KEY`.
- Token semantics follow the llmwatch contract (OTel): cache read and cache creation tokens are inside
  ``input_tokens``, reasoning tokens inside ``output_tokens``. Inconsistent counts raise ValueError.
- The calculated cost equals genai-prices' ``calc_price`` for the same usage, model, provider and
  request time, to ~1e-15 relative (float instead of Decimal).
- Price resolution is cached per (provider, model) in a bounded LRU; a cached event costs ~1-3 µs
  (``bench/bench_cost.py``; genai-prices' ``calc_price`` takes ~65 µs), a first-seen model ~0.6 ms.
  Nothing blocks. Not thread-safe (the worker is one asyncio thread); use one calculator per thread.
- Prices are chosen for the call's time (``at``), else the calculator's ``on``, else now (UTC); only
  models whose prices change over time or by hour (e.g. DeepSeek off-peak) depend on it.
"""

from __future__ import annotations

import enum
import functools
import logging
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Final

from streams.analytics.pricing.overrides import PriceOverrides, load_price_overrides
from streams.analytics.pricing.rates import BundledPrices, ModelRates, TieredRates, compile_model

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "MAX_UNKNOWN_MODELS",
    "OTHER_MODELS_KEY",
    "CostCalculator",
    "CostResult",
    "CostSource",
    "PriceOverrides",
    "load_price_overrides",
]

logger = logging.getLogger(__name__)

DEFAULT_CACHE_SIZE: Final = 4096
MAX_UNKNOWN_MODELS: Final = 1024
OTHER_MODELS_KEY: Final = ("*", "*")


class CostSource(enum.StrEnum):
    """Where ``cost_usd`` came from."""

    PROVIDER = "provider"
    OVERRIDE = "override"
    GENAI_PRICES = "genai-prices"
    NONE = ""


@dataclass(frozen=True, slots=True)
class CostResult:
    """The cost columns of one event (USD)."""

    cost_usd: float | None
    calculated_cost_usd: float | None
    reported_cost_usd: float | None
    cost_source: CostSource


NO_COST: Final = CostResult(None, None, None, CostSource.NONE)


@dataclass(frozen=True, slots=True)
class _Priced:
    rates: ModelRates
    source: CostSource


def _as_utc_datetime(on: date | datetime | None) -> datetime | None:
    if on is None:
        return None
    if isinstance(on, datetime):
        return on if on.tzinfo is not None else on.replace(tzinfo=UTC)
    return datetime.combine(on, time.min, tzinfo=UTC)


def _inconsistent_tokens(
    input_tokens: int, output_tokens: int, cache_read: int, cache_creation: int, reasoning: int
) -> ValueError:
    return ValueError(
        "token counts are inconsistent (cache tokens are inside input, reasoning inside output), "
        f"got input={input_tokens!r}, output={output_tokens!r}, cache_read={cache_read!r}, "
        f"cache_creation={cache_creation!r}, reasoning={reasoning!r}"
    )


class CostCalculator:
    """Prices events; see the module docstring for the guarantees."""

    def __init__(
        self,
        overrides: PriceOverrides | None = None,
        *,
        on: date | datetime | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        max_unknown_models: int = MAX_UNKNOWN_MODELS,
    ) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be >= 1, got {cache_size!r}")
        if max_unknown_models < 1:
            raise ValueError(f"max_unknown_models must be >= 1, got {max_unknown_models!r}")
        self._overrides = overrides
        self._on = _as_utc_datetime(on)
        self._bundled = BundledPrices()
        self._compiled: dict[int, ModelRates | None] = {}
        self._unknown: dict[tuple[str, str], int] = {}
        self._max_unknown = max_unknown_models
        self._resolve = functools.lru_cache(maxsize=cache_size)(self._resolve_uncached)

    def price(
        self,
        provider: str | None,
        model: str | None,
        input_tokens: int,
        output_tokens: int,
        cache_read_input_tokens: int = 0,
        cache_creation_input_tokens: int = 0,
        reasoning_output_tokens: int = 0,
        reported_cost_usd: float | None = None,
        at: datetime | None = None,
    ) -> CostResult:
        """The cost of one call; pass the response model when known, else the request model."""
        if reported_cost_usd is not None and not 0.0 <= reported_cost_usd < math.inf:
            raise ValueError(
                f"reported_cost_usd must be a finite amount >= 0, got {reported_cost_usd!r}"
            )
        priced = self._resolve(provider, model) if model else None
        calculated: float | None = None
        if priced is not None:
            if (
                input_tokens < cache_read_input_tokens + cache_creation_input_tokens
                or output_tokens < reasoning_output_tokens
                or min(cache_read_input_tokens, cache_creation_input_tokens) < 0
                or reasoning_output_tokens < 0
            ):
                raise _inconsistent_tokens(
                    input_tokens,
                    output_tokens,
                    cache_read_input_tokens,
                    cache_creation_input_tokens,
                    reasoning_output_tokens,
                )
            rates = priced.rates.fixed
            if rates is None:
                rates = priced.rates.select(input_tokens, at or self._on or datetime.now(UTC))
            calculated = rates.cost(
                input_tokens,
                output_tokens,
                cache_read_input_tokens,
                cache_creation_input_tokens,
                reasoning_output_tokens,
            )
        elif model or input_tokens or output_tokens:
            self._count_unknown(provider or "", model or "")
        if reported_cost_usd is not None:
            return CostResult(reported_cost_usd, calculated, reported_cost_usd, CostSource.PROVIDER)
        if priced is None:
            return NO_COST
        return CostResult(calculated, calculated, None, priced.source)

    def unknown_models(self) -> dict[tuple[str, str], int]:
        """Events seen per (provider, model) that had no price (a copy)."""
        return dict(self._unknown)

    def cache_info(self) -> functools._CacheInfo:
        """Hits, misses and size of the (provider, model) resolution cache."""
        return self._resolve.cache_info()

    def _count_unknown(self, provider: str, model: str) -> None:
        key = (provider, model)
        if key not in self._unknown and len(self._unknown) >= self._max_unknown:
            key = OTHER_MODELS_KEY
        self._unknown[key] = self._unknown.get(key, 0) + 1

    def _resolve_uncached(self, provider: str | None, model: str) -> _Priced | None:
        if self._overrides is not None:
            override = self._overrides.find(provider, model)
            if override is not None:
                return _Priced(
                    ModelRates(fixed=override, default=TieredRates(override)), CostSource.OVERRIDE
                )
        found = self._bundled.find(provider, model)
        if found is None:
            logger.debug("no price for provider=%r model=%r; its cost is NULL", provider, model)
            return None
        info = found[1]
        if id(info) not in self._compiled:
            try:
                self._compiled[id(info)] = compile_model(info)
            except (ValueError, ArithmeticError) as e:
                logger.warning("cannot use genai-prices' prices of model %r: %s", info.id, e)
                self._compiled[id(info)] = None
        rates = self._compiled[id(info)]
        return None if rates is None else _Priced(rates, CostSource.GENAI_PRICES)
