"""What the guardrail detectors find, as plain values: typed PII spans, injection and content verdicts.

The names follow the proposed OpenTelemetry ``gen_ai.security.*`` attributes (decision, risk category,
severity, score). A finding holds offsets and types, never the matched text, so it can be stored and
published as it is.

Offsets are Python string indices (code points) into the analysed text: ``text[start:end]`` is the span.
Scores are in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

__all__ = [
    "PII_TYPES",
    "ContentVerdict",
    "Decision",
    "InjectionVerdict",
    "PiiSpan",
    "PiiType",
    "RiskCategory",
    "Severity",
]


class PiiType(StrEnum):
    """The personal-data and secret types the PII detector reports (issue 8, item 3)."""

    PERSON = "PERSON"
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    IP_ADDRESS = "IP_ADDRESS"
    STREET_ADDRESS = "STREET_ADDRESS"
    DATE_OF_BIRTH = "DATE_OF_BIRTH"
    CREDIT_CARD = "CREDIT_CARD"
    IBAN = "IBAN"
    US_SSN = "US_SSN"
    API_KEY = "API_KEY"
    SECRET = "SECRET"


PII_TYPES: Final = frozenset(PiiType)


class Decision(StrEnum):
    """``gen_ai.security.decision``: what the guardrail would do with the text."""

    ALLOW = "allow"
    FLAG = "flag"  # reported, let through (llmwatch observes; the app decides)
    BLOCK = "block"  # reported as severe enough that an in-line guard should stop it


class RiskCategory(StrEnum):
    """``gen_ai.security.risk.category``."""

    PII = "pii"
    SECRET = "secret"
    PROMPT_INJECTION = "prompt_injection"
    JAILBREAK = "jailbreak"
    TOXICITY = "toxicity"
    BANNED_TOPIC = "banned_topic"
    DATA_LEAK = "data_leak"  # PII or secrets echoed in the output
    UNKNOWN_URL = "unknown_url"
    REFUSAL = "refusal"


class Severity(StrEnum):
    """``gen_ai.security.risk.severity``."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class PiiSpan:
    """One piece of personal data or one secret: ``text[start:end]`` is of ``type``."""

    type: PiiType
    start: int
    end: int
    score: float

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(
                f"PII span needs 0 <= start < end, got start={self.start} end={self.end}"
            )
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"PII span score must be in [0, 1], got {self.score!r}")


@dataclass(frozen=True, slots=True)
class InjectionVerdict:
    """Prompt injection or jailbreak: a score in [0, 1], and whether it passed the threshold.

    ``category`` is the strongest attack family seen (``instruction_override``,
    ``roleplay_jailbreak``, ``prompt_extraction``, ``indirect_injection``, ``exfiltration``,
    ``code_relay``), or None; ``start``/``end`` locate the
    highest-scoring chunk of a long text."""

    score: float
    flagged: bool
    category: str | None = None
    start: int = 0
    end: int = 0


@dataclass(frozen=True, slots=True)
class ContentVerdict:
    """Content filter results for one text.

    ``toxicity`` is a probability in [0, 1]; ``banned_topics`` names the configured topics the text is
    about; the output-side fields are set only when the text is a model's output."""

    toxicity: float = 0.0
    toxic: bool = False
    banned_topics: tuple[str, ...] = ()
    refusal: bool = False
    unknown_urls: int = 0  # URLs whose domain is not on the allow list
    # PII and secret types of the input seen again in the output.
    echoed_pii: tuple[PiiType, ...] = field(default=())
