"""Per-event cost of the cost and lifecycle analytics
(streams/analytics/cost.py, streams/analytics/lifecycle.py).

Run: ``.venv/bin/python bench/bench_cost.py``. Prints a table and writes ``bench/results/cost.json``.
Times are the best of several repeats on this (shared, 2-core) machine, for calls on models whose
price is already resolved (the LRU hit path the worker sees in steady state), plus the one-off cost of
resolving a model seen for the first time and genai-prices' own ``calc_price`` for comparison.
"""

from __future__ import annotations

import json
import platform
import random
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import genai_prices
from genai_prices import Usage, calc_price

from streams.analytics.cost import CostCalculator
from streams.analytics.lifecycle import DeprecationCatalog
from streams.analytics.pricing.overrides import PriceOverride, PriceOverrides

__all__ = ["main"]

RESULTS: Final[Path] = Path(__file__).parent / "results" / "cost.json"
REPEATS: Final[int] = 5
EVENTS: Final[int] = 100_000
REFERENCE_EVENTS: Final[int] = 2_000
TARGET_EVENTS_PER_S: Final[int] = 20_000
AT: Final = datetime(2025, 6, 1, 12, tzinfo=UTC)
TODAY: Final = date(2025, 6, 1)
WARN_DAYS: Final[int] = 30

# (provider, model) -> the kind of price it exercises.
SCENARIOS: Final[dict[str, tuple[str | None, str]]] = {
    "fixed_price": ("openai", "gpt-4o-mini"),
    "tiered_price": ("anthropic", "claude-sonnet-4-5"),
    "time_dependent_price": ("deepseek", "deepseek-chat"),
    "override": ("vllm", "meta-llama/Llama-3.1-8B-Instruct"),
    "unknown_model": ("vllm", "no-such-model"),
}
MIX: Final[list[tuple[str | None, str]]] = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("openai", "o3-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-3-5-haiku-20241022"),
    ("gcp.vertex_ai", "gemini-2.5-flash"),
    ("google", "gemini-2.5-pro"),
    ("deepseek", "deepseek-chat"),
    ("vllm", "meta-llama/Llama-3.1-8B-Instruct"),
    ("vllm", "no-such-model"),
]


def _best(run: Callable[[], object]) -> float:
    timings = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return min(timings)


def _overrides() -> PriceOverrides:
    return PriceOverrides(
        [
            PriceOverride.model_validate(
                {
                    "provider": "vllm",
                    "model": "meta-llama/*",
                    "self_hosted": {"gpu_hour_usd": 2.5, "gpus": 1, "tokens_per_second": 2500},
                }
            )
        ]
    )


def _usages(n: int, seed: int = 0) -> list[tuple[int, int, int, int, int]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        input_tokens = rng.randint(10, 300_000)
        cache_read = rng.randint(0, input_tokens // 2)
        output_tokens = rng.randint(1, 4_000)
        out.append((input_tokens, output_tokens, cache_read, 0, rng.randint(0, output_tokens)))
    return out


def _per_event_us(calculator: CostCalculator, events: list[tuple[Any, ...]]) -> float:
    price = calculator.price

    def run() -> None:
        for provider, model, i, o, cr, cw, r, reported in events:
            price(provider, model, i, o, cr, cw, r, reported, AT)

    return _best(run) / len(events) * 1e6


def _scenarios() -> dict[str, float]:
    calculator = CostCalculator(_overrides())
    usages = _usages(EVENTS)
    out: dict[str, float] = {}
    for name, (provider, model) in SCENARIOS.items():
        events = [(provider, model, *usage, None) for usage in usages]
        out[f"{name}_us_per_event"] = _per_event_us(calculator, events)
    reported = [("openai", "gpt-4o", *usage, 0.01) for usage in usages]
    out["reported_cost_us_per_event"] = _per_event_us(calculator, reported)
    rng = random.Random(1)
    mix = [(*rng.choice(MIX), *usage, None) for usage in usages]
    out["mixed_models_us_per_event"] = _per_event_us(calculator, mix)
    out["mixed_models_events_per_s"] = 1e6 / out["mixed_models_us_per_event"]
    out["share_of_20k_events_per_s_budget"] = out["mixed_models_us_per_event"] / (
        1e6 / TARGET_EVENTS_PER_S
    )
    return out


def _cold_resolution() -> dict[str, float]:
    models = [model for _, model in MIX[:7]]

    def run() -> None:
        calculator = CostCalculator()
        for (provider, _), model in zip(MIX, models, strict=False):
            calculator.price(provider, model, 1, 1, at=AT)

    return {"first_seen_model_resolution_ms": _best(run) / len(models) * 1e3}


def _reference() -> dict[str, float]:
    usage = Usage(input_tokens=10_000, output_tokens=1_000, cache_read_tokens=2_000)

    def run() -> None:
        for _ in range(REFERENCE_EVENTS):
            calc_price(usage, "gpt-4o-mini", provider_id="openai", genai_request_timestamp=AT)

    return {"genai_prices_calc_price_us_per_event": _best(run) / REFERENCE_EVENTS * 1e6}


def _lifecycle() -> dict[str, float]:
    catalog = DeprecationCatalog.load()
    rng = random.Random(2)
    pairs = [
        rng.choice([*MIX, ("openai", "gpt-4-32k"), ("anthropic", "claude-2.1")])
        for _ in range(EVENTS)
    ]
    status = catalog.status

    def run() -> None:
        for provider, model in pairs:
            status(provider, model, TODAY, WARN_DAYS)

    return {"deprecation_status_us_per_event": _best(run) / EVENTS * 1e6}


def main() -> None:
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "genai_prices": genai_prices.__version__,
        "events": EVENTS,
        **_scenarios(),
        **_cold_resolution(),
        **_reference(),
        **_lifecycle(),
    }
    width = max(map(len, results))
    for name, value in results.items():
        shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
        print(f"{name:<{width}}  {shown}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
