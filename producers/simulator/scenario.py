"""The simulator's configuration: model and service profiles, failure rates and incidents.

Everything here is a frozen dataclass validated at construction: a bad value raises ``ValueError`` naming
the field and showing the value. A :class:`Scenario` is pure data; :mod:`producers.simulator.traffic`
turns it into events. The default catalog lives in :mod:`producers.simulator.catalog`.

Incidents are extensible: an :class:`Incident` is active for one service (or all) inside a window given as
fractions of the run, and carries :class:`Effect` objects. While an incident is active, each effect edits
the :class:`CallPlan` of a trace (the model, prompt version, latency and output multipliers and failure
rates the generator then uses). A new kind of incident only needs a new effect class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

__all__ = [
    "CallPlan",
    "Effect",
    "FailureRates",
    "FailureSpike",
    "FinishReasons",
    "Incident",
    "ModelProfile",
    "ModelSwitch",
    "PromptProfile",
    "PromptVersionSwitch",
    "Scenario",
    "ServiceProfile",
    "TraceShape",
    "Variant",
]


def _require_positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _require_share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be within [0, 1], got {value!r}")


def _require_weights(name: str, weights: Sequence[tuple[str, float]]) -> None:
    if not weights:
        raise ValueError(f"{name} must not be empty, got {weights!r}")
    for label, weight in weights:
        _require_positive(f"{name}[{label!r}] weight", weight)


class TraceShape(StrEnum):
    """How one request of a service breaks down into spans."""

    CHAT = "chat"  # chain -> optional retrieval -> llm
    RAG = "rag"  # chain -> embedding -> retrieval -> llm
    AGENT = "agent"  # agent -> retrieval -> (llm -> tool)* -> llm
    SUMMARIZE = "summarize"  # one llm span, or chain -> map llm* -> reduce llm


@dataclass(frozen=True, slots=True)
class FinishReasons:
    """A provider's own words for why generation stopped."""

    stop: str = "stop"
    length: str = "length"
    tool: str = "tool_calls"


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """One model at one provider, with its typical speed (medians; the generator adds spread)."""

    provider: str  # OTel gen_ai.provider.name: "openai", "anthropic", "gcp.gemini", "vllm"
    model: str  # request model, a name genai-prices knows for hosted providers
    response_model: str
    server_address: str
    ttft_ms: float  # median time to first token for a short prompt
    tokens_per_s: float  # median output speed
    operation: str = "chat"
    reasoning: bool = False  # emits reasoning tokens (counted inside output tokens)
    prompt_cache: bool = False  # reports cache-read input tokens
    cache_writes: bool = False  # also reports cache-creation input tokens (Anthropic)
    ratelimit_headers: bool = False  # passes x-ratelimit-remaining-* on
    rate_limited: bool = True  # a hosted API that can answer 429
    requests_per_min: int = 10_000
    tokens_per_min: int = 2_000_000
    response_id_prefix: str = ""
    server_error_statuses: tuple[int, ...] = (500, 502, 503)
    finish: FinishReasons = field(default_factory=FinishReasons)

    def __post_init__(self) -> None:
        _require_positive(f"{self.model} ttft_ms", self.ttft_ms)
        _require_positive(f"{self.model} tokens_per_s", self.tokens_per_s)
        _require_positive(f"{self.model} requests_per_min", self.requests_per_min)
        _require_positive(f"{self.model} tokens_per_min", self.tokens_per_min)
        bad = [status for status in self.server_error_statuses if not 500 <= status <= 599]
        if not self.server_error_statuses or bad:
            raise ValueError(
                f"{self.model} server_error_statuses must be non-empty 5xx codes, "
                f"got {self.server_error_statuses!r}"
            )


@dataclass(frozen=True, slots=True)
class Variant:
    """One arm of a prompt A/B test; users are assigned to arms by user id."""

    name: str
    output_tokens_factor: float = 1.0

    def __post_init__(self) -> None:
        _require_positive(f"variant {self.name!r} output_tokens_factor", self.output_tokens_factor)


@dataclass(frozen=True, slots=True)
class PromptProfile:
    name: str
    version: str
    variants: tuple[Variant, ...] = (Variant("A"), Variant("B"))

    def __post_init__(self) -> None:
        if not self.variants:
            raise ValueError(f"prompt {self.name!r} needs at least one variant, got ()")


@dataclass(frozen=True, slots=True)
class ServiceProfile:
    """One application calling LLMs; token counts are medians of lognormal distributions."""

    name: str
    weight: float  # share of traces
    shape: TraceShape
    models: tuple[tuple[str, float], ...]  # (model name, weight), chosen once per trace
    prompt: PromptProfile
    input_tokens: float
    output_tokens: float
    max_tokens: int
    stream_share: float
    temperature: float = 0.7
    timeout_s: float = 60.0
    embedding_model: str | None = None  # used by the RAG shape

    def __post_init__(self) -> None:
        _require_positive(f"service {self.name!r} weight", self.weight)
        _require_weights(f"service {self.name!r} models", self.models)
        _require_positive(f"service {self.name!r} input_tokens", self.input_tokens)
        _require_positive(f"service {self.name!r} output_tokens", self.output_tokens)
        _require_positive(f"service {self.name!r} max_tokens", self.max_tokens)
        _require_positive(f"service {self.name!r} timeout_s", self.timeout_s)
        _require_share(f"service {self.name!r} stream_share", self.stream_share)
        if self.shape is TraceShape.RAG and self.embedding_model is None:
            raise ValueError(f"service {self.name!r} has the RAG shape but embedding_model=None")


@dataclass(frozen=True, slots=True)
class FailureRates:
    """Per-call probabilities of each failure; their sum must stay below 1."""

    rate_limit: float = 0.02  # HTTP 429, only on models with rate_limited=True
    server_error: float = 0.008  # HTTP 5xx
    timeout: float = 0.003  # the client gave up after the service's timeout

    def __post_init__(self) -> None:
        _require_share("rate_limit", self.rate_limit)
        _require_share("server_error", self.server_error)
        _require_share("timeout", self.timeout)
        total = self.rate_limit + self.server_error + self.timeout
        if total >= 1.0:
            raise ValueError(f"failure rates must sum below 1, got {total!r}")


@dataclass(slots=True)
class CallPlan:
    """What the generator will do for the LLM calls of one trace; incident effects edit it."""

    model: str
    prompt_version: str
    failures: FailureRates
    latency_factor: float = 1.0
    output_tokens_factor: float = 1.0
    input_tokens_factor: float = 1.0
    variant: str | None = None  # set by a prompt source: the arm the registry chose for the user
    prompt_name: str | None = None  # set by a prompt source: the registry's prompt name


class Effect(Protocol):
    """One change an active incident makes to a trace's plan."""

    def apply(self, plan: CallPlan) -> None: ...


@dataclass(frozen=True, slots=True)
class ResolvedPrompt:
    """The version a prompt registry serves one user, and what that version does to the calls."""

    name: str
    version: str
    variant: str
    effects: tuple[Effect, ...] = ()
    model: str | None = None  # the model the version targets, when it is not the service's choice


class PromptSource(Protocol):
    """Where a service's prompt version comes from per user (the demo: ``watch.prompts.get``)."""

    @property
    def weak_versions(self) -> frozenset[str]:
        """Versions whose answers are weak (what the judge should score low)."""
        ...

    def resolve(self, service: str, user_id: str) -> ResolvedPrompt | None: ...


@dataclass(frozen=True, slots=True)
class PromptVersionSwitch:
    """A new prompt version that is slower and wordier: latency and output (and optionally input)
    tokens are multiplied."""

    version: str
    latency_factor: float = 4.0
    output_tokens_factor: float = 2.5
    input_tokens_factor: float = 1.0  # a longer template: more prompt tokens per call

    def __post_init__(self) -> None:
        _require_positive("latency_factor", self.latency_factor)
        _require_positive("output_tokens_factor", self.output_tokens_factor)
        _require_positive("input_tokens_factor", self.input_tokens_factor)

    def apply(self, plan: CallPlan) -> None:
        plan.prompt_version = self.version
        plan.latency_factor *= self.latency_factor
        plan.output_tokens_factor *= self.output_tokens_factor
        plan.input_tokens_factor *= self.input_tokens_factor


@dataclass(frozen=True, slots=True)
class ModelSwitch:
    """Traffic moves to another model (e.g. someone pins an old, deprecated snapshot)."""

    model: str

    def apply(self, plan: CallPlan) -> None:
        plan.model = self.model


@dataclass(frozen=True, slots=True)
class FailureSpike:
    """Failure rates jump: a 429 storm (rate_limit) or a provider outage (server_error, timeout)."""

    failures: FailureRates

    def apply(self, plan: CallPlan) -> None:
        plan.failures = self.failures


@dataclass(frozen=True, slots=True)
class Incident:
    """Effects applied to traces of ``service`` (None: every service) while start <= progress < end."""

    name: str
    start: float
    effects: tuple[Effect, ...]
    end: float = 1.0
    service: str | None = None

    def __post_init__(self) -> None:
        if not (0.0 <= self.start < self.end <= 1.0):
            raise ValueError(
                f"incident {self.name!r} window must satisfy 0 <= start < end <= 1, "
                f"got start={self.start!r}, end={self.end!r}"
            )
        if not self.effects:
            raise ValueError(f"incident {self.name!r} needs at least one effect, got ()")

    def active_at(self, progress: float) -> bool:
        """Whether ``progress`` (0..1) is inside the window; a window ending at 1 includes 1."""
        return self.start <= progress < self.end or progress == self.end == 1.0

    def applies(self, service: str, progress: float) -> bool:
        return self.active_at(progress) and (self.service is None or self.service == service)


@dataclass(frozen=True, slots=True)
class Scenario:
    """The whole simulated fleet: who calls which model how often, and what goes wrong when."""

    models: tuple[ModelProfile, ...]
    services: tuple[ServiceProfile, ...]
    environments: tuple[tuple[str, float], ...] = (("production", 1.0),)
    tenants: tuple[str, ...] = ("default",)
    users: int = 5_000
    zipf_exponent: float = 0.9  # top user ~7% of traffic over 5,000 users
    failures: FailureRates = field(default_factory=FailureRates)
    incidents: tuple[Incident, ...] = ()
    # Per-user prompt versions from a registry; None: every service uses its profile's version.
    prompts: PromptSource | None = None

    def __post_init__(self) -> None:
        _require_positive("users", self.users)
        _require_positive("zipf_exponent", self.zipf_exponent)
        _require_weights("environments", self.environments)
        if not self.tenants:
            raise ValueError(f"tenants must not be empty, got {self.tenants!r}")
        if not self.services:
            raise ValueError(f"services must not be empty, got {self.services!r}")
        known = {m.model for m in self.models}
        if len(known) != len(self.models):
            raise ValueError(f"model names must be unique, got {[m.model for m in self.models]!r}")
        for service in self.services:
            used = [name for name, _ in service.models] + [service.embedding_model or ""]
            unknown = [name for name in used if name and name not in known]
            if unknown:
                raise ValueError(f"service {service.name!r} uses unknown models {unknown!r}")
        names = {s.name for s in self.services}
        for incident in self.incidents:
            if incident.service is not None and incident.service not in names:
                raise ValueError(
                    f"incident {incident.name!r} targets unknown service {incident.service!r}"
                )

    def model(self, name: str) -> ModelProfile:
        for profile in self.models:
            if profile.model == name:
                return profile
        raise KeyError(f"unknown model {name!r}")
