"""The default fleet: four services, eight chat models at four providers, and the prompt-v8 incident.

Model names are ones genai-prices 0.2.x prices offline (``calc_price(usage, model, provider_id)``
resolves every hosted request and response model below); the self-hosted vLLM model has no price.
Speeds and token sizes are rough medians seen on public APIs in 2025, not measurements.
"""

from __future__ import annotations

from typing import Final

from producers.simulator.scenario import (
    FailureRates,
    FailureSpike,
    FinishReasons,
    Incident,
    ModelProfile,
    ModelSwitch,
    PromptProfile,
    PromptSource,
    PromptVersionSwitch,
    Scenario,
    ServiceProfile,
    TraceShape,
    Variant,
)

__all__ = [
    "DEFAULT_INCIDENT_START",
    "DEFAULT_MODELS",
    "DEMO_INCIDENTS",
    "INCIDENT_NEW_VERSION",
    "INCIDENT_OLD_VERSION",
    "INCIDENT_SERVICE",
    "PROMPT_INCIDENT_NAME",
    "default_scenario",
    "demo_scenario",
]

DEFAULT_INCIDENT_START: Final = 0.6
PROMPT_INCIDENT_NAME: Final = "support-bot-prompt-v8"
INCIDENT_SERVICE: Final = "support-bot"
INCIDENT_OLD_VERSION: Final = "v7"
INCIDENT_NEW_VERSION: Final = "v8"

_OPENAI: Final = "api.openai.com"
_ANTHROPIC: Final = "api.anthropic.com"
_GEMINI: Final = "generativelanguage.googleapis.com"
_VLLM: Final = "vllm.internal.example"

_ANTHROPIC_FINISH: Final = FinishReasons(stop="end_turn", length="max_tokens", tool="tool_use")
_ANTHROPIC_5XX: Final = (500, 529)  # 529: "overloaded"
_GEMINI_FINISH: Final = FinishReasons(stop="STOP", length="MAX_TOKENS", tool="STOP")

DEFAULT_MODELS: Final[tuple[ModelProfile, ...]] = (
    ModelProfile(
        "openai", "gpt-4o", "gpt-4o-2024-08-06", _OPENAI, ttft_ms=450, tokens_per_s=80,
        prompt_cache=True, ratelimit_headers=True, requests_per_min=5_000,
        tokens_per_min=800_000, response_id_prefix="chatcmpl-",
    ),
    ModelProfile(
        "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", _OPENAI, ttft_ms=350,
        tokens_per_s=110, prompt_cache=True, ratelimit_headers=True, requests_per_min=10_000,
        tokens_per_min=4_000_000, response_id_prefix="chatcmpl-",
    ),
    ModelProfile(
        "openai", "o4-mini", "o4-mini-2025-04-16", _OPENAI, ttft_ms=600, tokens_per_s=140,
        reasoning=True, prompt_cache=True, ratelimit_headers=True, requests_per_min=5_000,
        tokens_per_min=2_000_000, response_id_prefix="chatcmpl-",
    ),
    ModelProfile(
        "openai", "text-embedding-3-small", "text-embedding-3-small", _OPENAI, ttft_ms=60,
        tokens_per_s=1_000, operation="embeddings", rate_limited=False,
    ),
    ModelProfile(
        "anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", _ANTHROPIC,
        ttft_ms=900, tokens_per_s=65, prompt_cache=True, ratelimit_headers=True,
        requests_per_min=4_000, tokens_per_min=400_000, response_id_prefix="msg_",
        finish=_ANTHROPIC_FINISH, cache_writes=True, server_error_statuses=_ANTHROPIC_5XX,
    ),
    ModelProfile(
        "anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001", _ANTHROPIC, ttft_ms=500,
        tokens_per_s=130, prompt_cache=True, ratelimit_headers=True, requests_per_min=4_000,
        tokens_per_min=400_000, response_id_prefix="msg_", finish=_ANTHROPIC_FINISH,
        cache_writes=True, server_error_statuses=_ANTHROPIC_5XX,
    ),
    ModelProfile(
        "gcp.gemini", "gemini-2.5-flash", "gemini-2.5-flash", _GEMINI, ttft_ms=450,
        tokens_per_s=180, operation="generate_content", finish=_GEMINI_FINISH,
    ),
    ModelProfile(
        "gcp.gemini", "gemini-2.5-pro", "gemini-2.5-pro", _GEMINI, ttft_ms=1_200,
        tokens_per_s=90, operation="generate_content", reasoning=True, finish=_GEMINI_FINISH,
    ),
    ModelProfile(
        "vllm", "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", _VLLM,
        ttft_ms=120, tokens_per_s=60, rate_limited=False,
    ),
)  # fmt: skip

_SERVICES: Final[tuple[ServiceProfile, ...]] = (
    ServiceProfile(
        INCIDENT_SERVICE, weight=0.40, shape=TraceShape.CHAT,
        models=(("gpt-4o-mini", 0.7), ("claude-haiku-4-5", 0.3)),
        prompt=PromptProfile("support-answer", INCIDENT_OLD_VERSION,
                             (Variant("A"), Variant("B", output_tokens_factor=0.85))),
        input_tokens=1_400, output_tokens=220, max_tokens=4_096, stream_share=0.9,
        temperature=0.3, timeout_s=30.0,
    ),
    ServiceProfile(
        "search-rag", weight=0.30, shape=TraceShape.RAG,
        models=(("gpt-4o", 0.5), ("gemini-2.5-flash", 0.35), ("claude-sonnet-4-5", 0.15)),
        prompt=PromptProfile("rag-answer", "v3",
                             (Variant("control"), Variant("concise", output_tokens_factor=0.7))),
        input_tokens=3_200, output_tokens=350, max_tokens=2_048, stream_share=0.6,
        temperature=0.2, timeout_s=45.0, embedding_model="text-embedding-3-small",
    ),
    ServiceProfile(
        "code-agent", weight=0.10, shape=TraceShape.AGENT,
        models=(("claude-sonnet-4-5", 0.6), ("o4-mini", 0.25), ("gemini-2.5-pro", 0.15)),
        prompt=PromptProfile("agent-step", "v12", (Variant("A"),)),
        input_tokens=6_000, output_tokens=400, max_tokens=8_192, stream_share=0.3,
        temperature=0.0, timeout_s=120.0,
    ),
    ServiceProfile(
        "summarizer", weight=0.20, shape=TraceShape.SUMMARIZE,
        models=(("meta-llama/Llama-3.1-8B-Instruct", 0.6), ("gpt-4o-mini", 0.4)),
        prompt=PromptProfile("summarize-doc", "v2", (Variant("bullets"), Variant("prose"))),
        input_tokens=7_000, output_tokens=300, max_tokens=1_024, stream_share=0.0,
        temperature=0.5, timeout_s=120.0,
    ),
)  # fmt: skip

_ENVIRONMENTS: Final = (("production", 0.9), ("staging", 0.08), ("dev", 0.02))
_TENANTS: Final = (
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell",
    "cyberdyne", "soylent", "wonka", "aperture",
)  # fmt: skip


def default_scenario(*, incident_start: float | None = DEFAULT_INCIDENT_START) -> Scenario:
    """The demo fleet; support-bot switches prompt v7 -> v8 at ``incident_start`` of the run.

    ``incident_start=None`` gives the same fleet with no incident.
    """
    incidents: tuple[Incident, ...] = ()
    if incident_start is not None:
        incident = Incident(
            name=PROMPT_INCIDENT_NAME,
            start=incident_start,
            service=INCIDENT_SERVICE,
            effects=(PromptVersionSwitch(INCIDENT_NEW_VERSION),),
        )
        incidents = (incident,)
    return Scenario(
        models=DEFAULT_MODELS,
        services=_SERVICES,
        environments=_ENVIRONMENTS,
        tenants=_TENANTS,
        users=5_000,
        failures=FailureRates(),
        incidents=incidents,
    )


# A model genai-prices flags as deprecated: traffic to it shows up in the lifecycle rollups and alerts.
DEPRECATED_MODEL: Final = ModelProfile(
    "gcp.gemini", "gemini-2.0-flash", "gemini-2.0-flash", _GEMINI, ttft_ms=400,
    tokens_per_s=170, operation="generate_content", finish=_GEMINI_FINISH,
)  # fmt: skip

# The demo's scripted incidents, each made to trip one analytics path (see docs/architecture.md):
DEMO_INCIDENTS: Final[tuple[Incident, ...]] = (
    # A 429 storm at one provider-heavy service: availability SLO fast burn, 429 rate panel.
    Incident(
        name="search-rag-429-storm",
        start=0.25,
        end=0.5,
        service="search-rag",
        effects=(FailureSpike(FailureRates(rate_limit=0.6, server_error=0.008, timeout=0.003)),),
    ),
    # Someone pins an old snapshot: deprecated-model traffic.
    Incident(
        name="summarizer-pins-deprecated-model",
        start=0.1,
        service="summarizer",
        effects=(ModelSwitch(DEPRECATED_MODEL.model),),
    ),
    # Provider outage for the coding agent: server errors, availability fast burn.
    Incident(
        name="code-agent-outage",
        start=0.7,
        end=0.9,
        service="code-agent",
        effects=(FailureSpike(FailureRates(rate_limit=0.02, server_error=0.35, timeout=0.05)),),
    ),
)


def demo_scenario(prompts: PromptSource | None = None) -> Scenario:
    """The default fleet plus the demo incidents: prompt v8 on support-bot (latency SLO fast burn and
    a budget breach), a 429 storm, a deprecated model, and an outage.

    With ``prompts`` (a registry), support-bot's version comes from it per user instead of the
    scripted switch: prompt v8 then reaches only the users of its canary share, until rolled back.
    """
    base = default_scenario(incident_start=None if prompts is not None else DEFAULT_INCIDENT_START)
    return Scenario(
        models=(*base.models, DEPRECATED_MODEL),
        services=base.services,
        environments=base.environments,
        tenants=base.tenants,
        users=base.users,
        failures=base.failures,
        incidents=(*base.incidents, *DEMO_INCIDENTS),
        prompts=prompts,
    )
