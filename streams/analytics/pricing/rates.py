"""Per-token rates, compiled once per model from genai-prices' bundled snapshot.

genai-prices prices one call in ~70 µs (Decimal arithmetic over its unit registry), too slow for every
event at 20,000 events/s. So each model's prices are compiled once into :class:`TokenRates`, six floats,
and an event then costs a handful of multiplications.

Token classes (disjoint, as llmwatch and OTel count them):

- plain input  = ``input_tokens - cache_read_input_tokens - cache_creation_input_tokens``
- cache read   = ``cache_read_input_tokens``
- cache write  = ``cache_creation_input_tokens``
- plain output = ``output_tokens - reasoning_output_tokens``
- reasoning    = ``reasoning_output_tokens``

genai-prices counts the same way: its ``input_tokens`` unit is the ancestor of ``cache_read_tokens`` and
``cache_write_tokens`` and ``output_tokens`` the ancestor of ``output_reasoning_tokens``, so a cache
token is priced once, at the most specific price the model has (its cache price, else the input price).
The mapping onto its ``Usage`` is :data:`GENAI_USAGE_KEYS`.

Accuracy: the rates are not read from the price table by hand. They are measured by evaluating
genai-prices' own ``ModelPrice.calc_price`` (exact Decimal) on unit probes: the price is linear in the
five token classes (plus a fixed per-request price) between tier thresholds, so the probe differences are
exactly the per-token rates. The float result then matches ``calc_price`` to ~1e-15 relative.

Tiered prices (``TieredPrices``: every token is priced at the tier reached by the call's total input
tokens) compile to one :class:`TokenRates` per tier. Time-conditional prices (price changes on a date,
off-peak hours) are selected per call with genai-prices' own constraint objects, last matching first,
as ``ModelInfo.get_prices`` does.

Nothing is fetched: prices come from ``genai_prices.data``, the snapshot bundled in the wheel, in a
private ``DataSnapshot`` that is never replaced by genai-prices' auto-updater (``UpdatePrices``), even if
other code in the process starts one. Nothing here blocks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

import genai_prices
from genai_prices import Usage
from genai_prices.data import providers as bundled_providers
from genai_prices.data_snapshot import DataSnapshot
from genai_prices.types import (
    ModelInfo,
    ModelPrice,
    Provider,
    StartDateConstraint,
    TieredPrices,
    TimeOfDateConstraint,
)

from streams.analytics.pricing.naming import canonical_provider

__all__ = [
    "GENAI_PRICES_VERSION",
    "GENAI_USAGE_KEYS",
    "BundledPrices",
    "ModelRates",
    "TieredRates",
    "TokenRates",
    "compile_model",
    "compile_model_price",
]

GENAI_PRICES_VERSION: Final[str] = genai_prices.__version__

# llmwatch usage field -> genai-prices Usage field (same inclusion rules on both sides).
GENAI_USAGE_KEYS: Final[dict[str, str]] = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_input_tokens": "cache_read_tokens",
    "cache_creation_input_tokens": "cache_write_tokens",
    "reasoning_output_tokens": "output_reasoning_tokens",
}

# Price keys an event's usage drives. A model priced only in other units (audio hours, pages,
# characters) cannot be priced from tokens; a model with no prices at all is free (priced at 0).
_USAGE_PRICE_KEYS: Final = frozenset({"input_mtok", "output_mtok", "requests_kcount"})

Constraint = StartDateConstraint | TimeOfDateConstraint


@dataclass(frozen=True, slots=True)
class TokenRates:
    """USD per token of each disjoint token class, plus a fixed USD per call."""

    per_call: float
    input: float
    cache_read: float
    cache_write: float
    output: float
    reasoning: float

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int,
        cache_write_tokens: int,
        reasoning_tokens: int,
    ) -> float:
        """USD for one call; cache tokens are inside ``input_tokens``, reasoning inside output."""
        return (
            self.per_call
            + self.input * (input_tokens - cache_read_tokens - cache_write_tokens)
            + self.cache_read * cache_read_tokens
            + self.cache_write * cache_write_tokens
            + self.output * (output_tokens - reasoning_tokens)
            + self.reasoning * reasoning_tokens
        )


@dataclass(frozen=True, slots=True)
class TieredRates:
    """Rates chosen by the call's total input tokens: a tier applies above its threshold."""

    base: TokenRates
    # (threshold, rates), highest threshold first.
    tiers: tuple[tuple[int, TokenRates], ...] = ()

    def for_input(self, input_tokens: int) -> TokenRates:
        for threshold, rates in self.tiers:
            if input_tokens > threshold:
                return rates
        return self.base


@dataclass(frozen=True, slots=True)
class ModelRates:
    """All rates of one model. ``fixed`` is set when neither time nor tiers matter."""

    fixed: TokenRates | None
    default: TieredRates
    # (constraint, rates) in precedence order: the first whose constraint holds wins.
    periods: tuple[tuple[Constraint | None, TieredRates], ...] = ()

    @property
    def depends_on_time(self) -> bool:
        return bool(self.periods)

    def select(self, input_tokens: int, at: datetime) -> TokenRates:
        """The rates for a call made at ``at`` (aware, UTC) with ``input_tokens`` input tokens."""
        schedule = self.default
        for constraint, candidate in self.periods:
            if constraint is None or constraint.active(at):
                schedule = candidate
                break
        return schedule.for_input(input_tokens)


def _probe_usage(
    input_tokens: int,
    output_tokens: int = 0,
    cache_read: int = 0,
    cache_write: int = 0,
    reasoning: int = 0,
) -> Usage:
    return Usage(
        **{
            GENAI_USAGE_KEYS["input_tokens"]: input_tokens,
            GENAI_USAGE_KEYS["output_tokens"]: output_tokens,
            GENAI_USAGE_KEYS["cache_read_input_tokens"]: cache_read,
            GENAI_USAGE_KEYS["cache_creation_input_tokens"]: cache_write,
            GENAI_USAGE_KEYS["reasoning_output_tokens"]: reasoning,
        }
    )


def _probe_rates(model_price: ModelPrice, base_input: int) -> TokenRates:
    """Measure the rates in the tier segment that starts at ``base_input`` input tokens."""

    def total(usage: Usage) -> Decimal:
        return model_price.calc_price(usage)["total_price"]

    b = base_input
    at_base = total(_probe_usage(b))
    input_rate = total(_probe_usage(b + 1)) - at_base
    return TokenRates(
        per_call=float(at_base - input_rate * b),
        input=float(input_rate),
        cache_read=float(total(_probe_usage(b + 1, cache_read=1)) - at_base),
        cache_write=float(total(_probe_usage(b + 1, cache_write=1)) - at_base),
        output=float(total(_probe_usage(b, output_tokens=1)) - at_base),
        reasoning=float(total(_probe_usage(b, output_tokens=1, reasoning=1)) - at_base),
    )


def _tier_thresholds(model_price: ModelPrice) -> list[int]:
    starts = {
        tier.start
        for value in vars(model_price).values()
        if isinstance(value, TieredPrices)
        for tier in value.tiers
    }
    return sorted(starts)


def compile_model_price(model_price: ModelPrice) -> TieredRates:
    """Rates for one genai-prices ``ModelPrice``; raises ValueError on prices it cannot price."""
    thresholds = _tier_thresholds(model_price)
    for low, high in itertools.pairwise(thresholds):
        if high - low < 2:
            raise ValueError(f"tier thresholds {low} and {high} are too close to measure")
    tiers = tuple((start, _probe_rates(model_price, start + 1)) for start in reversed(thresholds))
    return TieredRates(base=_probe_rates(model_price, 0), tiers=tiers)


def _priced_by_usage(model: ModelInfo) -> bool:
    """True when tokens (or calls) drive the model's price, or it has no prices (free)."""
    prices = model.prices
    candidates = [c.prices for c in prices] if isinstance(prices, list) else [prices]
    keys = {
        key
        for price in candidates
        for key, value in vars(price).items()
        if value is not None and not key.startswith("_")
    }
    return not keys or bool(keys & _USAGE_PRICE_KEYS)


def compile_model(model: ModelInfo) -> ModelRates | None:
    """Rates for one genai-prices model; None when its price does not depend on tokens or calls."""
    if not _priced_by_usage(model):
        return None
    if isinstance(model.prices, ModelPrice):
        schedule = compile_model_price(model.prices)
        fixed = schedule.base if not schedule.tiers else None
        return ModelRates(fixed=fixed, default=schedule)
    periods = tuple(
        (conditional.constraint, compile_model_price(conditional.prices))
        for conditional in reversed(model.prices)
    )
    return ModelRates(fixed=None, default=periods[-1][1], periods=periods)


class BundledPrices:
    """Model lookup in genai-prices' bundled snapshot (never the auto-updated one)."""

    def __init__(self) -> None:
        self._snapshot = DataSnapshot(providers=bundled_providers, from_auto_update=False)

    @property
    def snapshot(self) -> DataSnapshot:
        return self._snapshot

    def find(self, provider: str | None, model: str) -> tuple[Provider, ModelInfo] | None:
        """The provider and model genai-prices would price ``model`` with; None if unknown.

        ``provider`` is an event's provider name (OTel or genai-prices id). Without one, the provider
        is inferred from the model name as genai-prices does.
        """
        model_ref = model.lower()
        provider_id = canonical_provider(provider)
        found: Provider | None = None
        if provider_id:
            try:
                found = self._snapshot.find_provider(None, provider_id, None)
            except LookupError:
                return None
        else:
            found = self.infer_provider(model_ref)
        if found is None:
            return None
        info = found.find_model(model_ref, all_providers=self._snapshot.providers)
        return None if info is None else (found, info)

    def infer_provider(self, model: str) -> Provider | None:
        """The provider genai-prices infers from a model name alone (``gpt-4o`` -> openai)."""
        model_ref = model.lower()
        return next(
            (
                p
                for p in self._snapshot.providers
                if p.model_match is not None and p.model_match.is_match(model_ref)
            ),
            None,
        )
