"""What the content filter checks and where its thresholds sit (issue 8, item 5).

A :class:`ContentPolicy` is a frozen pydantic model; :func:`load_content_policy` validates a plain mapping
(the lead reads it from ``config/guardrails.yaml``). Bad values raise ``ValueError`` (pydantic's
``ValidationError`` is one) whose message names the field and the value.

The defaults were chosen on the development set (``bench/devsets/content.py``) and are measured by
``.venv/bin/python -m bench.bench_content``:

- :data:`DEFAULT_TOXICITY_THRESHOLD` (0.8): alt-profanity-check's probability at or above which a text is
  toxic. Lower it to catch milder language ("damn", "crap" score about 0.8) at the cost of more false
  alarms on technical text ("kill -9" scores about 0.77 before the filter's benign-sense rewrite).
- :data:`DEFAULT_TOPIC_THRESHOLD` (0.42, the best micro-F1 threshold on the dev set's tune half): cosine
  similarity (MiniLM) between a text chunk and a topic's closest example at or above which the text is
  about the topic. On-topic questions typically score 0.45-0.75, near-topic benign ones 0.2-0.4. Each
  topic may set its own threshold; a chunk closer to one of the topic's ``allowed_examples`` (near-topic
  texts that are fine) than to any of its examples does not count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streams.text.content_urls import normalize_domain

__all__ = [
    "DEFAULT_CHUNK_TOKENS",
    "DEFAULT_POLICY",
    "DEFAULT_TOPIC_THRESHOLD",
    "DEFAULT_TOXICITY_THRESHOLD",
    "BannedTopic",
    "ContentPolicy",
    "load_content_policy",
]

DEFAULT_TOXICITY_THRESHOLD: Final = 0.8
DEFAULT_TOPIC_THRESHOLD: Final = 0.42
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


# Sample banned topics; applications replace them with their own in config/guardrails.yaml. Short,
# question-like examples in the words users write work best (measured: bench/bench_content.py).
DEFAULT_POLICY: Final = ContentPolicy(
    topics=(
        BannedTopic(
            name="medical_diagnosis",
            examples=(
                "What illness do I have given these symptoms?",
                "Tell me what is wrong with me: I have a fever and a headache.",
                "Should I take antibiotics for this infection?",
                "Is this lump cancer?",
                "How much of this medication should I take for my pain?",
                "Diagnose my condition from the symptoms I describe.",
            ),
        ),
        BannedTopic(
            name="legal_advice",
            examples=(
                "Can I sue them and will I win?",
                "What are my legal rights in this dispute?",
                "How do I get out of this contract without being sued?",
                "Should I plead guilty to the charge?",
                "Is what my employer did illegal and what can I do about it?",
                "Write me a legally binding agreement.",
            ),
        ),
        BannedTopic(
            name="politics",
            examples=(
                "Which political party should I vote for?",
                "Is the current government doing a good job?",
                "Which candidate is better for the country?",
                "What is your opinion on the election?",
                "Argue for or against the new immigration law.",
                "Are left-wing or right-wing policies better?",
            ),
        ),
    ),
    allowed_domains=("python.org", "github.com", "wikipedia.org"),
)
