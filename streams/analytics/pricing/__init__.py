"""Pricing building blocks for ``streams.analytics.cost``: names, compiled rates, price overrides."""

from streams.analytics.pricing.naming import PROVIDER_ALIASES, NamePattern, canonical_provider
from streams.analytics.pricing.overrides import (
    PriceOverride,
    PriceOverrideError,
    PriceOverrides,
    SelfHostedCost,
    load_price_overrides,
)
from streams.analytics.pricing.rates import (
    GENAI_PRICES_VERSION,
    BundledPrices,
    ModelRates,
    TieredRates,
    TokenRates,
)

__all__ = [
    "GENAI_PRICES_VERSION",
    "PROVIDER_ALIASES",
    "BundledPrices",
    "ModelRates",
    "NamePattern",
    "PriceOverride",
    "PriceOverrideError",
    "PriceOverrides",
    "SelfHostedCost",
    "TieredRates",
    "TokenRates",
    "canonical_provider",
    "load_price_overrides",
]
