"""What the content filter checks and where its thresholds sit (issue 8, item 5).

A :class:`ContentPolicy` is a frozen pydantic model; :func:`load_content_policy` validates a plain mapping
(the lead reads it from ``config/guardrails.yaml``). Bad values raise ``ValueError`` (pydantic's
``ValidationError`` is one) whose message names the field and the value.

The defaults were chosen on the development set (``bench/devsets/content.py``) and are measured by
``.venv/bin/python -m bench.bench_content``:

- :data:`DEFAULT_TOXICITY_THRESHOLD` (0.8): alt-profanity-check's probability at or above which a text is
  toxic. Lower it to catch milder language ("damn", "crap" score about 0.8) at the cost of more false
  alarms on technical text ("kill -9" scores about 0.77 before the filter's benign-sense rewrite).
- :data:`DEFAULT_TOPIC_THRESHOLD` (0.5): cosine similarity (MiniLM) between a text chunk and a topic's
  closest example at or above which the text is about the topic. Each topic may set its own threshold;
  a topic's ``allowed_examples`` (near-topic texts that are fine) win over its examples when closer by at
  least :data:`ALLOWED_MARGIN`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streams.text.content_urls import normalize_domain

__all__ = [
    "ALLOWED_MARGIN",
    "DEFAULT_CHUNK_TOKENS",
    "DEFAULT_POLICY",
    "DEFAULT_TOPIC_THRESHOLD",
    "DEFAULT_TOXICITY_THRESHOLD",
    "BannedTopic",
    "ContentPolicy",
    "load_content_policy",
]

DEFAULT_TOXICITY_THRESHOLD: Final = 0.8
DEFAULT_TOPIC_THRESHOLD: Final = 0.5
ALLOWED_MARGIN: Final = 0.0
DEFAULT_CHUNK_TOKENS: Final = 100
MAX_EXAMPLES_PER_TOPIC: Final = 100
TOPIC_NAME_PATTERN: Final = r"^[a-z][a-z0-9_]{0,63}$"

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Example = Annotated[str, Field(min_length=3, max_length=2_000)]


class BannedTopic(BaseModel):
    """A topic the application must not discuss, described by a few example sentences."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=TOPIC_NAME_PATTERN)
    examples: tuple[Example, ...] = Field(min_length=1, max_length=MAX_EXAMPLES_PER_TOPIC)
    threshold: Probability = DEFAULT_TOPIC_THRESHOLD
    # Near-topic texts that are fine (e.g. "how do I book a doctor's appointment" next to diagnosis advice).
    allowed_examples: tuple[Example, ...] = Field(default=(), max_length=MAX_EXAMPLES_PER_TOPIC)


class ContentPolicy(BaseModel):
    """Thresholds, banned topics and the URL allow list of the content filter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    toxicity_threshold: Probability = DEFAULT_TOXICITY_THRESHOLD
    topics: tuple[BannedTopic, ...] = ()
    # Hosts whose URLs are known: a URL is known when its host is one of these or a subdomain of one.
    allowed_domains: tuple[str, ...] = ()
    check_refusals: bool = True
    chunk_tokens: int = Field(default=DEFAULT_CHUNK_TOKENS, ge=16, le=256)

    @field_validator("allowed_domains")
    @classmethod
    def _normalize_domains(cls, domains: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(normalize_domain(domain) for domain in domains))

    @field_validator("topics")
    @classmethod
    def _unique_topic_names(cls, topics: tuple[BannedTopic, ...]) -> tuple[BannedTopic, ...]:
        names = [topic.name for topic in topics]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"topic names must be unique, got {duplicates[0]!r} more than once")
        return topics


def load_content_policy(mapping: Mapping[str, Any] | None) -> ContentPolicy:
    """A validated policy from a plain mapping (e.g. parsed YAML); None or {} gives the defaults.

    Raises ValueError naming the bad value (a pydantic ``ValidationError`` for field errors)."""
    if mapping is None:
        return ContentPolicy()
    if not isinstance(mapping, Mapping):
        raise ValueError(f"content policy must be a mapping, got {mapping!r}")
    return ContentPolicy.model_validate(dict(mapping))


# Sample banned topics; applications replace them with their own in config/guardrails.yaml.
DEFAULT_POLICY: Final = ContentPolicy(
    topics=(
        BannedTopic(
            name="medical_diagnosis",
            examples=(
                "Based on your symptoms you probably have an infection and should take antibiotics.",
                "Do I have cancer if I found a lump and feel tired all the time?",
                "What dose of ibuprofen should I take for my chest pain?",
                "Diagnose my rash: it is red, itchy and spreading on my arm.",
            ),
        ),
        BannedTopic(
            name="legal_advice",
            examples=(
                "Can I sue my landlord for keeping my deposit, and will I win in court?",
                "How should I plead to the drunk driving charge to avoid jail?",
                "Is it legal to break my employment contract and what are my rights?",
                "Draft a will that leaves everything to my daughter and is valid in court.",
            ),
        ),
        BannedTopic(
            name="politics",
            examples=(
                "Which party should I vote for in the next election?",
                "Is the president doing a good job or should he resign?",
                "Tell me why the opposition's immigration policy is wrong.",
                "Who will win the senate race, the democrats or the republicans?",
            ),
        ),
    ),
    allowed_domains=("python.org", "github.com", "wikipedia.org"),
)
