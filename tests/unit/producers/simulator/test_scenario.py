"""Scenario validation, incident windows and effects, and the default catalog's model names."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from genai_prices import Usage, calc_price

from producers.simulator import (
    ERROR_RATE_LIMIT,
    CallPlan,
    FailureRates,
    Incident,
    ModelProfile,
    PromptProfile,
    PromptVersionSwitch,
    Scenario,
    ServiceProfile,
    Simulator,
    TraceShape,
    default_scenario,
)
from producers.simulator.catalog import DEFAULT_MODELS
from tests.clock import Clock

_HOSTED = [m for m in DEFAULT_MODELS if m.provider != "vllm"]


@pytest.mark.parametrize("profile", _HOSTED, ids=lambda m: m.model)
@pytest.mark.parametrize("field", ["model", "response_model"])
def test_hosted_models_are_priced_by_genai_prices(profile: ModelProfile, field: str) -> None:
    usage = Usage(input_tokens=1_000, output_tokens=100)
    price = calc_price(usage, getattr(profile, field), provider_id=profile.provider)
    assert price.total_price > 0


def test_default_scenario_has_the_prompt_incident_at_sixty_percent() -> None:
    (incident,) = default_scenario().incidents
    assert (incident.start, incident.end, incident.service) == (0.6, 1.0, "support-bot")


def test_default_scenario_incident_start_is_configurable() -> None:
    assert default_scenario(incident_start=0.25).incidents[0].start == 0.25
    assert default_scenario(incident_start=None).incidents == ()


def test_prompt_version_switch_edits_the_plan() -> None:
    plan = CallPlan(model="gpt-4o", prompt_version="v7", failures=FailureRates())
    PromptVersionSwitch("v8", latency_factor=3.0, output_tokens_factor=2.0).apply(plan)
    assert (plan.prompt_version, plan.latency_factor, plan.output_tokens_factor) == ("v8", 3.0, 2.0)


_SWITCH = (PromptVersionSwitch("v2"),)


@pytest.mark.parametrize(
    ("start", "end", "service", "progress", "expected"),
    [
        (0.6, 1.0, "a", 0.59, False),
        (0.6, 1.0, "a", 0.6, True),
        (0.6, 1.0, "a", 1.0, True),
        (0.2, 0.4, "a", 0.4, False),
        (0.6, 1.0, "b", 0.7, False),
        (0.6, 1.0, None, 0.7, True),
    ],
)
def test_incident_applies_inside_its_window_and_service(
    start: float, end: float, service: str | None, progress: float, expected: bool
) -> None:
    incident = Incident("i", start=start, end=end, service=service, effects=_SWITCH)
    assert incident.applies("a", progress) is expected


@dataclass(frozen=True)
class _RateLimitEverything:
    """A new kind of effect, defined outside the package: the incident model is open."""

    def apply(self, plan: CallPlan) -> None:
        plan.failures = FailureRates(rate_limit=0.95, server_error=0.0, timeout=0.0)


def test_custom_effects_change_the_generated_traffic(clock: Clock) -> None:
    storm = Incident("storm", start=0.5, service="search-rag", effects=(_RateLimitEverything(),))
    scenario = dataclasses.replace(default_scenario(incident_start=None), incidents=(storm,))
    t0 = clock.ago(minutes=15)
    events = list(Simulator(2, scenario).events(4_000, t0, t0 + timedelta(minutes=10)))
    llm = [e for e in events if e.span_kind == "llm" and e.service == "search-rag"]
    early = [e for e in llm if e.start_time < t0 + timedelta(minutes=4)]
    late = [e for e in llm if e.start_time > t0 + timedelta(minutes=6)]
    late_share = sum(e.error_type == ERROR_RATE_LIMIT for e in late) / len(late)
    early_share = sum(e.error_type == ERROR_RATE_LIMIT for e in early) / len(early)
    assert late_share > 0.5 > 0.1 > early_share


def _service(**overrides: Any) -> ServiceProfile:
    fields: dict[str, Any] = {
        "name": "svc",
        "weight": 1.0,
        "shape": TraceShape.CHAT,
        "models": (("gpt-4o", 1.0),),
        "prompt": PromptProfile("p", "v1"),
        "input_tokens": 100.0,
        "output_tokens": 50.0,
        "max_tokens": 500,
        "stream_share": 0.5,
    }
    fields.update(overrides)
    return ServiceProfile(**fields)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stream_share": 1.5}, "stream_share must be within \\[0, 1\\], got 1.5"),
        ({"weight": 0.0}, "weight must be a finite number > 0, got 0.0"),
        ({"models": ()}, "models must not be empty, got \\(\\)"),
        ({"models": (("gpt-4o", -1.0),)}, "weight must be a finite number > 0, got -1.0"),
        ({"shape": TraceShape.RAG}, "RAG shape but embedding_model=None"),
    ],
)
def test_service_profile_rejects_bad_values(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _service(**overrides)


def test_failure_rates_must_sum_below_one() -> None:
    with pytest.raises(ValueError, match=r"got 1\.0"):
        FailureRates(rate_limit=0.5, server_error=0.5, timeout=0.0)


@pytest.mark.parametrize(("start", "end"), [(0.7, 0.5), (-0.1, 0.5), (0.2, 1.2)])
def test_incident_window_must_be_ordered_fractions(start: float, end: float) -> None:
    with pytest.raises(ValueError, match=f"start={start!r}, end={end!r}"):
        Incident("bad", start=start, end=end, effects=_SWITCH)


def test_incident_needs_effects() -> None:
    with pytest.raises(ValueError, match="at least one effect"):
        Incident("empty", start=0.1, effects=())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"services": (_service(models=(("gpt-9", 1.0),)),)}, "unknown models \\['gpt-9'\\]"),
        ({"incidents": (Incident("i", 0.5, _SWITCH, service="nope"),)}, "unknown service 'nope'"),
        ({"models": DEFAULT_MODELS + DEFAULT_MODELS[:1]}, "model names must be unique"),
        ({"users": 0}, "users must be a finite number > 0, got 0"),
        ({"tenants": ()}, "tenants must not be empty"),
    ],
)
def test_scenario_rejects_inconsistent_catalogs(changes: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"models": DEFAULT_MODELS, "services": (_service(),)}
    fields.update(changes)
    with pytest.raises(ValueError, match=message):
        Scenario(**fields)


def test_model_profile_rejects_non_5xx_server_errors() -> None:
    with pytest.raises(ValueError, match="got \\(404,\\)"):
        dataclasses.replace(DEFAULT_MODELS[0], server_error_statuses=(404,))


def test_scenario_model_lookup_names_unknown_models() -> None:
    with pytest.raises(KeyError, match="gpt-9"):
        default_scenario().model("gpt-9")
