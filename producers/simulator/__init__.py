"""Realistic, deterministic LLM traffic for the demo, tests and benchmarks.

- :class:`Simulator` turns a seed and a :class:`Scenario` into traces of
  :class:`~producers.events.LlmCallEvent` at injected times (never reads the clock).
- :func:`run_simulation` paces a simulator's events into a callback at a target rate, live.
- :class:`ClientTraffic` makes simulated OpenAI / Anthropic calls through the real, instrumented clients
  against local fake APIs (``fake_openai``, ``fake_anthropic``); ``run_simulation(via_clients=...)``.
- :class:`TextMix` (``run_simulation(texts=...)``) gives calls prompt and answer text on per-service
  topics (:class:`TopicMix`, :class:`TopicTexts`, :data:`DEFAULT_TOPIC_MIX`), with planted personal
  data, attacks and toxic text.
- :func:`default_scenario` is the demo fleet (4 services, OpenAI/Anthropic/Gemini/vLLM models) with a
  prompt-version incident on support-bot at 60% of the run.
"""

from __future__ import annotations

from producers.simulator.catalog import (
    DEFAULT_INCIDENT_START,
    DEMO_INCIDENTS,
    INCIDENT_NEW_VERSION,
    INCIDENT_OLD_VERSION,
    INCIDENT_SERVICE,
    PROMPT_INCIDENT_NAME,
    default_scenario,
    demo_scenario,
)
from producers.simulator.clients import ClientTraffic
from producers.simulator.runner import SimulationReport, run_simulation
from producers.simulator.scenario import (
    CallPlan,
    Effect,
    FailureRates,
    FailureSpike,
    FinishReasons,
    Incident,
    ModelProfile,
    ModelSwitch,
    PromptProfile,
    PromptSource,
    PromptVersionSwitch,
    ResolvedPrompt,
    Scenario,
    ServiceProfile,
    TraceShape,
    Variant,
)
from producers.simulator.spans import ERROR_RATE_LIMIT, ERROR_SERVER, ERROR_TIMEOUT, ERROR_TOOL
from producers.simulator.texts import TextMix
from producers.simulator.topics import (
    DEFAULT_TOPIC_MIX,
    HELD_BACK_TOPICS,
    TOPICS,
    TopicMix,
    TopicTexts,
)
from producers.simulator.traffic import Simulator

__all__ = [
    "DEFAULT_INCIDENT_START",
    "DEFAULT_TOPIC_MIX",
    "DEMO_INCIDENTS",
    "ERROR_RATE_LIMIT",
    "ERROR_SERVER",
    "ERROR_TIMEOUT",
    "ERROR_TOOL",
    "HELD_BACK_TOPICS",
    "INCIDENT_NEW_VERSION",
    "INCIDENT_OLD_VERSION",
    "INCIDENT_SERVICE",
    "PROMPT_INCIDENT_NAME",
    "TOPICS",
    "CallPlan",
    "ClientTraffic",
    "Effect",
    "FailureRates",
    "FailureSpike",
    "FinishReasons",
    "Incident",
    "ModelProfile",
    "ModelSwitch",
    "PromptProfile",
    "PromptSource",
    "PromptVersionSwitch",
    "ResolvedPrompt",
    "Scenario",
    "ServiceProfile",
    "SimulationReport",
    "Simulator",
    "TextMix",
    "TopicMix",
    "TopicTexts",
    "TraceShape",
    "Variant",
    "default_scenario",
    "demo_scenario",
    "run_simulation",
]
