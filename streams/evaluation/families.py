"""Judge families: which vendor family a model belongs to, and when a judge scores its own family.

:func:`model_family` maps a model (and an OTel ``gen_ai.provider.name``) to its vendor family
("openai", "anthropic", "google", "meta", "mistral", ..., else :data:`UNKNOWN_FAMILY`), recorded with
every score. The model name decides; the provider only when the name is not recognised, and a
multi-vendor host (``aws.bedrock``, ``groq``...) never does. :func:`self_judging` tells when a judge
scores its own family's output, a known self-preference bias (the caller logs
:data:`SELF_JUDGING_WARNING`); two unknown families never count as the same.

Pure functions over fixed tables: no I/O, never blocks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = ["SELF_JUDGING_WARNING", "UNKNOWN_FAMILY", "model_family", "self_judging"]

UNKNOWN_FAMILY: Final = "unknown"
SELF_JUDGING_WARNING: Final = (
    "judge model {judge!r} scores {model!r}, a model of its own family {family!r}: LLM judges tend to "
    "prefer their own family's outputs; use a judge of another family for unbiased scores"
)

# Model-name prefixes per vendor family, tried in order on each name part (lowercase).
_FAMILY_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern), family)
    for pattern, family in (
        (r"^(?:gpt-neo|gpt-j\b|gpt-j-)", "eleutherai"),
        (
            r"^(?:gpt|chatgpt|o[1-9](?:-|$)|text-embedding-(?:ada|3)|davinci|babbage|dall-e|"
            r"whisper|tts-|omni-moderation|text-moderation|codex)",
            "openai",
        ),
        (r"^claude", "anthropic"),
        (
            r"^(?:gemini|gemma|palm|text-bison|chat-bison|code-bison|codechat-bison|"
            r"text-embedding-\d{3}|text-multilingual-embedding|textembedding-gecko|medlm|learnlm)",
            "google",
        ),
        (r"^(?:meta-llama|llama|codellama)", "meta"),
        (
            r"^(?:mistral|mixtral|codestral|ministral|pixtral|magistral|devstral|voxtral|"
            r"open-mistral|open-mixtral)",
            "mistral",
        ),
        (r"^(?:qwen|qwq|qvq)", "alibaba"),
        (r"^deepseek", "deepseek"),
        (r"^(?:command|c4ai-|embed-english|embed-multilingual|rerank-)", "cohere"),
        (r"^grok", "xai"),
        (r"^(?:titan|nova-)", "amazon"),
        (r"^phi-?\d", "microsoft"),
    )
)
# Vendor prefixes in model ids ("openai/gpt-4o", "anthropic.claude-3-5-sonnet", "meta-llama/...").
_VENDOR_FAMILIES: Final[Mapping[str, str]] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "meta": "meta",
    "meta-llama": "meta",
    "facebook": "meta",
    "mistral": "mistral",
    "mistralai": "mistral",
    "cohere": "cohere",
    "coherelabs": "cohere",
    "deepseek": "deepseek",
    "deepseek-ai": "deepseek",
    "qwen": "alibaba",
    "alibaba": "alibaba",
    "x-ai": "xai",
    "xai": "xai",
    "amazon": "amazon",
    "microsoft": "microsoft",
}
# OTel gen_ai.provider.name (and older gen_ai.system) values whose models are one vendor's.
_PROVIDER_FAMILIES: Final[Mapping[str, str]] = {
    "openai": "openai",
    "azure.ai.openai": "openai",
    "az.ai.openai": "openai",
    "anthropic": "anthropic",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "gemini": "google",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "x_ai": "xai",
    "xai": "xai",
    "perplexity": "perplexity",
}
# Providers that host many vendors' models: the provider says nothing about the family.
_HOSTING_PROVIDERS: Final = frozenset(
    {
        "aws.bedrock",
        "gcp.vertex_ai",
        "vertex_ai",
        "azure.ai.inference",
        "az.ai.inference",
        "groq",
        "ibm.watsonx.ai",
        "openrouter",
        "together",
        "fireworks",
        "ollama",
    }
)


def _name_parts(segment: str) -> list[str]:
    """A segment and what follows each of its dots: "us.anthropic.claude-3" -> ..., "claude-3"."""
    parts = [segment]
    rest = segment
    while "." in rest:
        rest = rest.split(".", 1)[1]
        parts.append(rest)
    return parts


def _family_of_name(model: str) -> str | None:
    name = model.strip().lower()
    if name.startswith("ft:"):  # OpenAI fine-tunes: ft:gpt-4o-mini-2024-07-18:org::id
        name = name[3:]
    segments = [s for s in name.split("/") if s]
    for segment in reversed(segments):
        for part in _name_parts(segment):
            for pattern, family in _FAMILY_PATTERNS:
                if pattern.match(part):
                    return family
    for segment in segments:
        for piece in segment.split("."):
            vendor = _VENDOR_FAMILIES.get(piece)
            if vendor is not None:
                return vendor
    return None


def model_family(model: str, provider: str | None = None) -> str:
    """The vendor family of ``model`` ("openai", "anthropic", "google", "meta", "mistral", ...).

    The model name decides (a Llama served through an OpenAI-compatible API is "meta"); else the
    provider's family (OTel ``gen_ai.provider.name``: ``gcp.gemini`` -> "google"); a multi-vendor host
    (``aws.bedrock``, ``groq``...) says nothing ("unknown"); another provider is its own family; with no
    provider, "unknown".
    """
    family = _family_of_name(model or "")
    if family is not None:
        return family
    if provider is None or not provider.strip():
        return UNKNOWN_FAMILY
    key = provider.strip().lower()
    if key in _HOSTING_PROVIDERS:
        return UNKNOWN_FAMILY
    return _PROVIDER_FAMILIES.get(key, key)


def self_judging(judge_model: str, scored_model: str, scored_provider: str | None = None) -> bool:
    """True when the judge and the scored model share a known family (a self-preference risk)."""
    family = model_family(judge_model)
    return family != UNKNOWN_FAMILY and family == model_family(scored_model, scored_provider)
