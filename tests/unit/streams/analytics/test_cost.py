"""CostCalculator: equals genai-prices' calc_price, unknown models, reported cost, overrides, no network."""

from __future__ import annotations

import socket
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import genai_prices.data
import pytest
from genai_prices import Usage, calc_price
from genai_prices import data_snapshot as genai_snapshot
from genai_prices.data_snapshot import DataSnapshot

from streams.analytics.cost import (
    OTHER_MODELS_KEY,
    CostCalculator,
    CostResult,
    CostSource,
    load_price_overrides,
)
from streams.analytics.pricing.overrides import PriceOverride, PriceOverrideError, PriceOverrides

# Calendar facts of genai-prices' bundled catalog, not event times: a price on a past day never changes,
# so these hold on any run date (no TTL or event-time bound applies to a price lookup).
AT = datetime.fromisoformat("2025-06-01T12:00:00+00:00")
DEEPSEEK_DAY = date.fromisoformat("2025-06-01")  # peak before 16:30 UTC, off-peak 16:30-00:30 UTC
O3_PRICE_CUT = datetime.fromisoformat("2025-06-10T00:00:00+00:00")  # 10/40 -> 2/8 USD per million
SONNET_4_6_LATER = datetime.fromisoformat("2026-03-13T00:00:00+00:00")
# Float rates against genai-prices' Decimal arithmetic.
REL = 1e-12


def _on_deepseek_day(hour: int) -> datetime:
    return datetime.combine(DEEPSEEK_DAY, time(hour), tzinfo=UTC)


def _reference(
    provider_id: str | None, model: str, usage: tuple[int, int, int, int, int], at: datetime
) -> float:
    """genai-prices' own price, with usage mapped by hand onto its Usage fields."""
    input_tokens, output_tokens, cache_read, cache_write, reasoning = usage
    result = calc_price(
        Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            output_reasoning_tokens=reasoning,
        ),
        model,
        provider_id=provider_id,
        genai_request_timestamp=at,
    )
    return float(result.total_price)


@pytest.fixture(scope="module")
def calculator() -> CostCalculator:
    return CostCalculator()


# (event provider, model, genai-prices provider id, (input, output, cache_read, cache_write,
# reasoning), request time)
REAL_MODELS: list[tuple[str | None, str, str | None, tuple[int, int, int, int, int], datetime]] = [
    ("openai", "gpt-4o", "openai", (1_000, 500, 0, 0, 0), AT),
    ("openai", "gpt-4o-2024-08-06", "openai", (10_000, 2_000, 4_000, 0, 0), AT),
    ("openai", "gpt-4o-mini", "openai", (123_456, 7_890, 100_000, 0, 0), AT),
    ("openai", "o1", "openai", (5_000, 20_000, 0, 0, 15_000), AT),
    ("openai", "o3-mini", "openai", (2_000, 8_000, 1_024, 0, 6_000), AT),
    (
        "openai",
        "o3",
        "openai",
        (3_000, 9_000, 1_000, 0, 7_000),
        O3_PRICE_CUT - timedelta(hours=1),
    ),
    (
        "openai",
        "o3",
        "openai",
        (3_000, 9_000, 1_000, 0, 7_000),
        O3_PRICE_CUT,
    ),
    ("anthropic", "claude-sonnet-4-5", "anthropic", (1_000, 500, 300, 200, 0), AT),
    ("anthropic", "claude-sonnet-4-5", "anthropic", (250_000, 4_000, 100_000, 50_000, 0), AT),
    ("anthropic", "claude-3-5-haiku-20241022", "anthropic", (20_000, 1_000, 15_000, 4_000, 0), AT),
    ("anthropic", "claude-3-7-sonnet-20250219", "anthropic", (5_000, 3_000, 0, 0, 2_000), AT),
    ("anthropic", "claude-sonnet-4-6", "anthropic", (300_000, 1_000, 0, 0, 0), AT),
    (
        "anthropic",
        "claude-sonnet-4-6",
        "anthropic",
        (300_000, 1_000, 0, 0, 0),
        SONNET_4_6_LATER,
    ),
    ("google", "gemini-2.5-pro", "google", (150_000, 2_000, 50_000, 0, 1_000), AT),
    ("google", "gemini-2.5-pro", "google", (300_000, 2_000, 0, 0, 0), AT),
    ("google", "gemini-2.5-flash", "google", (10_000, 5_000, 0, 0, 4_000), AT),
    ("google", "gemini-1.5-pro", "google", (200_000, 1_000, 0, 0, 0), AT),
    ("gcp.vertex_ai", "gemini-2.0-flash", "google", (1_000, 100, 200, 0, 0), AT),
    ("gcp.gemini", "gemini-2.5-flash-lite", "google", (4_000, 400, 0, 0, 0), AT),
    ("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "aws", (9_000, 900, 0, 0, 0), AT),
    ("azure.ai.openai", "gpt-4o", "azure", (1_000, 500, 0, 0, 0), AT),
    ("mistral_ai", "mistral-large-latest", "mistral", (7_000, 700, 0, 0, 0), AT),
    ("x_ai", "grok-3", "x-ai", (7_000, 700, 0, 0, 0), AT),
    (
        "deepseek",
        "deepseek-chat",
        "deepseek",
        (1_000, 100, 100, 0, 0),
        _on_deepseek_day(3),
    ),
    (
        "deepseek",
        "deepseek-chat",
        "deepseek",
        (1_000, 100, 100, 0, 0),
        _on_deepseek_day(18),
    ),
    (None, "gpt-4o", None, (1_000, 500, 0, 0, 0), AT),
    (None, "claude-3-5-haiku-20241022", None, (1_000, 500, 0, 0, 0), AT),
]


@pytest.mark.parametrize(("provider", "model", "provider_id", "usage", "at"), REAL_MODELS)
def test_cost_equals_genai_prices(
    calculator: CostCalculator,
    provider: str | None,
    model: str,
    provider_id: str | None,
    usage: tuple[int, int, int, int, int],
    at: datetime,
) -> None:
    result = calculator.price(provider, model, *usage, at=at)
    expected = _reference(provider_id, model, usage, at)
    assert expected > 0
    assert result.cost_usd == pytest.approx(expected, rel=REL)
    assert result.calculated_cost_usd == result.cost_usd
    assert result.reported_cost_usd is None
    assert result.cost_source == CostSource.GENAI_PRICES


@pytest.mark.parametrize(
    ("provider", "model", "usage", "expected"),
    [
        # gpt-4o: 2.50 input, 1.25 cached input, 10 output per million. Cached tokens are inside
        # input: 600k * 2.50 + 400k * 1.25 + 1M * 10.
        ("openai", "gpt-4o", (1_000_000, 1_000_000, 400_000, 0, 0), 12.0),
        # claude-3-5-haiku: 0.80 input, 0.08 cache read, 1.00 cache write (5 min), 4 output.
        # 250k * 0.80 + 500k * 0.08 + 250k * 1.00 + 0 output.
        ("anthropic", "claude-3-5-haiku-20241022", (1_000_000, 0, 500_000, 250_000, 0), 0.49),
        # o3-mini: 1.10 input, 4.40 output; reasoning tokens are output tokens.
        ("openai", "o3-mini", (0, 1_000_000, 0, 0, 900_000), 4.4),
    ],
)
def test_cached_and_reasoning_tokens_are_counted_once(
    calculator: CostCalculator,
    provider: str,
    model: str,
    usage: tuple[int, int, int, int, int],
    expected: float,
) -> None:
    assert calculator.price(provider, model, *usage, at=AT).cost_usd == pytest.approx(expected)


def test_price_changes_are_followed() -> None:
    """o3's price dropped from 10/40 to 2/8 USD per million on 2025-06-10."""
    calculator = CostCalculator()
    usage = (3_000, 9_000, 0, 0, 0)
    before = calculator.price("openai", "o3", *usage, at=O3_PRICE_CUT - timedelta(days=1))
    after = calculator.price("openai", "o3", *usage, at=O3_PRICE_CUT)
    assert before.cost_usd == pytest.approx(5 * after.cost_usd, rel=REL)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("on", "same_as"),
    [
        (DEEPSEEK_DAY, _on_deepseek_day(0)),  # off-peak at midnight UTC
        (_on_deepseek_day(3).replace(tzinfo=None), _on_deepseek_day(3)),  # naive = UTC
        (_on_deepseek_day(20), _on_deepseek_day(20)),
    ],
)
def test_on_is_used_when_the_call_has_no_time(on: date | datetime, same_as: datetime) -> None:
    """DeepSeek's off-peak price (16:30-00:30 UTC) shows which time was used."""
    calculator = CostCalculator(on=on)
    result = calculator.price("deepseek", "deepseek-chat", 1_000, 100)
    expected = _reference("deepseek", "deepseek-chat", (1_000, 100, 0, 0, 0), same_as)
    assert result.cost_usd == pytest.approx(expected, rel=REL)


def test_deepseek_peak_and_off_peak_differ(calculator: CostCalculator) -> None:
    peak = calculator.price("deepseek", "deepseek-chat", 1_000, 100, at=_on_deepseek_day(3))
    off_peak = calculator.price("deepseek", "deepseek-chat", 1_000, 100, at=_on_deepseek_day(18))
    assert peak.cost_usd == pytest.approx(2 * off_peak.cost_usd, rel=REL)  # type: ignore[operator]


USAGE_MIXES = [(250_000, 3_000, 50_000, 10_000, 1_000), (1_000, 500, 100, 50, 100), (0, 0, 0, 0, 0)]


def _reference_or_none(
    provider_id: str, model: str, usage: tuple[int, int, int, int, int]
) -> float | None:
    try:
        return _reference(provider_id, model, usage, AT)
    except LookupError:  # a few model ids do not match their own match rule
        return None


def _mismatches(provider: Any, usage: tuple[int, int, int, int, int]) -> list[str]:
    calculator = CostCalculator(on=AT)
    found = []
    for model in provider.models:
        mine = calculator.price(provider.id, model.id, *usage).calculated_cost_usd
        expected = _reference_or_none(provider.id, model.id, usage)
        if mine is None:
            # Unknown to genai-prices too, or priced only per audio hour, page or character.
            ok = expected is None or expected == 0
        else:
            ok = expected is not None and mine == pytest.approx(expected, rel=REL, abs=1e-18)
        if not ok:
            found.append(f"{model.id}: {mine!r} != {expected!r}")
    return found


@pytest.mark.parametrize("usage", USAGE_MIXES)
@pytest.mark.parametrize(
    "provider", genai_prices.data.providers, ids=[p.id for p in genai_prices.data.providers]
)
def test_every_bundled_model_matches_genai_prices(
    provider: Any, usage: tuple[int, int, int, int, int]
) -> None:
    assert _mismatches(provider, usage) == []


def test_unknown_model_costs_none_and_is_counted() -> None:
    calculator = CostCalculator()
    first = calculator.price("vllm", "my-model", 100, 10)
    calculator.price("vllm", "my-model", 5, 1)
    calculator.price("openai", "gpt-does-not-exist-9", 100, 10)
    assert first == CostResult(None, None, None, CostSource.NONE)
    assert calculator.unknown_models() == {
        ("vllm", "my-model"): 2,
        ("openai", "gpt-does-not-exist-9"): 1,
    }


@pytest.mark.parametrize(
    ("provider", "model", "tokens", "counted"),
    [
        (None, None, (0, 0), {}),
        ("openai", None, (0, 0), {}),
        ("openai", None, (10, 5), {("openai", ""): 1}),
        (None, "unknown-model", (0, 0), {("", "unknown-model"): 1}),
    ],
)
def test_events_without_model(
    provider: str | None,
    model: str | None,
    tokens: tuple[int, int],
    counted: dict[tuple[str, str], int],
) -> None:
    calculator = CostCalculator()
    result = calculator.price(provider, model, *tokens)
    assert result.cost_usd is None
    assert calculator.unknown_models() == counted


def test_unknown_counter_is_bounded() -> None:
    calculator = CostCalculator(max_unknown_models=2)
    for model in ("a", "b", "c", "d", "a"):
        calculator.price("vllm", model, 1, 1)
    assert calculator.unknown_models() == {("vllm", "a"): 2, ("vllm", "b"): 1, OTHER_MODELS_KEY: 2}


def test_reported_cost_wins_and_calculated_is_kept(calculator: CostCalculator) -> None:
    result = calculator.price("openai", "gpt-4o", 1_000, 500, reported_cost_usd=0.25, at=AT)
    assert result.cost_usd == 0.25
    assert result.reported_cost_usd == 0.25
    assert result.cost_source == CostSource.PROVIDER
    assert result.calculated_cost_usd == pytest.approx(
        _reference("openai", "gpt-4o", (1_000, 500, 0, 0, 0), AT), rel=REL
    )


def test_reported_cost_of_unknown_model() -> None:
    calculator = CostCalculator()
    result = calculator.price("vllm", "llama", 100, 10, reported_cost_usd=0.0)
    assert result == CostResult(0.0, None, 0.0, CostSource.PROVIDER)
    assert calculator.unknown_models() == {("vllm", "llama"): 1}


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [
        ({"cache_read_input_tokens": 80, "cache_creation_input_tokens": 30}, "cache_read=80"),
        ({"reasoning_output_tokens": 60}, "reasoning=60"),
        ({"cache_read_input_tokens": -1}, "cache_read=-1"),
        ({"reported_cost_usd": -0.5}, "-0.5"),
        ({"reported_cost_usd": float("nan")}, "nan"),
    ],
)
def test_inconsistent_input_names_the_value(
    calculator: CostCalculator, kwargs: dict[str, Any], bad: str
) -> None:
    with pytest.raises(ValueError, match=bad):
        calculator.price("openai", "gpt-4o", 100, 50, **kwargs)


def test_resolution_is_cached_and_bounded() -> None:
    calculator = CostCalculator(cache_size=2)
    for model in ("gpt-4o", "gpt-4o", "gpt-4o-mini", "o1", "gpt-4o"):
        calculator.price("openai", model, 10, 10)
    info = calculator.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 4, 2)


# --- overrides ---------------------------------------------------------------------------------


def _overrides(*entries: dict[str, Any]) -> PriceOverrides:
    return PriceOverrides([PriceOverride.model_validate(entry) for entry in entries])


FULL_PRICES = {
    "input_mtok": 2.0,
    "output_mtok": 8.0,
    "cache_read_mtok": 0.5,
    "cache_write_mtok": 2.5,
    "reasoning_mtok": 10.0,
}


@pytest.mark.parametrize(
    ("prices", "expected"),
    [
        # 7,000 plain input * 2 + 2,000 cache read * 0.5 + 1,000 cache write * 2.5
        # + 2,000 plain output * 8 + 1,000 reasoning * 10, per million.
        (FULL_PRICES, 0.0435),
        # Without cache/reasoning prices: all input at 2, all output at 8.
        ({"input_mtok": 2.0, "output_mtok": 8.0}, 0.044),
        # 2.50 USD * 2 GPUs / (3600 s * 2500 tokens/s) per token, 13,000 tokens (all classes).
        (
            {"self_hosted": {"gpu_hour_usd": 2.5, "gpus": 2, "tokens_per_second": 2500}},
            13_000 * 5.0 / 9_000_000,
        ),
    ],
)
def test_override_prices(prices: dict[str, Any], expected: float) -> None:
    calculator = CostCalculator(_overrides({"provider": "acme", "model": "acme-1", **prices}))
    result = calculator.price("acme", "acme-1", 10_000, 3_000, 2_000, 1_000, 1_000)
    assert result.cost_usd == pytest.approx(expected, rel=1e-12)
    assert result.cost_source == CostSource.OVERRIDE


def test_override_wins_over_genai_prices() -> None:
    calculator = CostCalculator(
        _overrides({"provider": "openai", "model": "gpt-4o", "input_mtok": 1, "output_mtok": 1})
    )
    result = calculator.price("openai", "gpt-4o", 600_000, 400_000)
    assert result == CostResult(1.0, 1.0, None, CostSource.OVERRIDE)


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("openai", "FT:gpt-4o-mini-2024-07-18:acme::x1", 1.0),  # glob, any case
        ("gcp.vertex_ai", "tuned-gemini", 2.0),  # entry provider 'google' = canonical id
        ("vllm", "llama-3-8b", 4.0),  # the exact entry beats the earlier glob
        ("vllm", "mistral-7b", 3.0),
        (None, "local-model", 5.0),  # no provider: matched as "", which "*" covers
        ("ollama", "local-model", 5.0),
        ("ollama", "other-model", None),
    ],
)
def test_override_matching(provider: str | None, model: str, expected: float | None) -> None:
    overrides = _overrides(
        {"provider": "openai", "model": "ft:gpt-4o-mini-*", "input_mtok": 1, "output_mtok": 1},
        {"provider": "google", "model": "tuned-gemini", "input_mtok": 2, "output_mtok": 2},
        {"provider": "vllm", "model": "*", "input_mtok": 3, "output_mtok": 3},
        {"provider": "vllm", "model": "llama-3-8b", "input_mtok": 4, "output_mtok": 4},
        {"provider": "*", "model": "local-model", "input_mtok": 5, "output_mtok": 5},
    )
    result = CostCalculator(overrides).price(provider, model, 500_000, 500_000)
    assert result.cost_usd == (None if expected is None else pytest.approx(expected))


def test_example_override_file_loads() -> None:
    overrides = load_price_overrides(Path(__file__).parents[4] / "config" / "prices.example.yaml")
    calculator = CostCalculator(overrides)
    result = calculator.price("vllm", "meta-llama/Llama-3.1-8B-Instruct", 6_000, 3_000)
    assert len(overrides) == 4
    assert result.cost_usd == pytest.approx(9_000 * 2.5 / (3600 * 2500), rel=1e-12)


ENTRY = "models:\n  - provider: vllm\n    model: m\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ENTRY + "    input_mtok: -1\n    output_mtok: 1\n", ["input_mtok", "-1", "model='m'"]),
        (ENTRY + "    input_mtok: abc\n    output_mtok: 1\n", ["input_mtok", "'abc'"]),
        (ENTRY + "    input_mtok: .nan\n    output_mtok: 1\n", ["input_mtok", "nan"]),
        (ENTRY + "    input_mtok: 1\n", ["output_mtok=None", "models[0]"]),
        (ENTRY + "    input_price: 1\n    output_mtok: 1\n", ["input_price"]),
        (
            ENTRY + "    self_hosted: {gpu_hour_usd: 2, gpus: 0, tokens_per_second: 10}\n",
            ["self_hosted.gpus", "got 0"],
        ),
        (
            ENTRY + "    self_hosted: {gpu_hour_usd: 2, gpus: 1, tokens_per_second: 0}\n",
            ["self_hosted.tokens_per_second", "got 0"],
        ),
        (
            ENTRY + "    input_mtok: 1\n    output_mtok: 1\n"
            "    self_hosted: {gpu_hour_usd: 2, gpus: 1, tokens_per_second: 9}\n",
            ["not both", "'input_mtok': 1.0"],
        ),
        (
            ENTRY + "    input_mtok: 1\n    output_mtok: 1\n"
            "  - {provider: VLLM, model: M, input_mtok: 1, output_mtok: 1}\n",
            ["duplicate", "model='m'"],
        ),
        ("models: [\n", ["not valid YAML"]),
        ("- a\n- b\n", ["expected a mapping", "['a', 'b']"]),
        ("version: 2\nmodels: []\n", ["version", "got 2"]),
    ],
)
def test_invalid_override_files_name_the_bad_value(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(PriceOverrideError) as caught:
        load_price_overrides(path)
    message = str(caught.value)
    assert str(path) in message
    assert [part for part in expected if part not in message] == []


# --- nothing is fetched ------------------------------------------------------------------------


def test_auto_updated_prices_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even if genai-prices' updater installed other prices, the bundled snapshot is used."""
    fake = DataSnapshot(providers=[], from_auto_update=True)
    monkeypatch.setattr(genai_snapshot, "_custom_snapshot", fake)
    result = CostCalculator().price("openai", "gpt-4o", 1_000, 500, at=AT)
    monkeypatch.setattr(genai_snapshot, "_custom_snapshot", None)
    assert result.cost_usd == pytest.approx(
        _reference("openai", "gpt-4o", (1_000, 500, 0, 0, 0), AT), rel=REL
    )


def test_no_network_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network use attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    calculator = CostCalculator()
    result = calculator.price(
        "anthropic", "claude-sonnet-4-5", 250_000, 1_000, 10_000, 5_000, at=AT
    )
    assert result.cost_source == CostSource.GENAI_PRICES
    assert result.cost_usd is not None and result.cost_usd > 0
