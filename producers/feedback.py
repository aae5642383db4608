"""Human feedback on a call (``watch.feedback(...)``): a thumbs-up, a 1-5 rating, a label, a comment.

Travels on the texts topic (``producers.texts``), as its own record kind inside the same batch
envelopes, keyed by the trace bucket of its target. Why there: a trace's text records and its feedback
land on the same partition, so the text-analysis consumer sees both and can send a trace with negative
feedback to the judge (``streams.evaluation.sampling``), and no new topic or setting is needed in apps.
The consumer validates each record again (other producers may write the topic), turns it into a
``llm_scores`` row (source ``human``), and dead-letters what it cannot read, naming the bad value.

Target: a W3C trace id (32 hex characters) is read as the trace; anything else as the provider's
response id (``chatcmpl-...``, ``msg_...``, ``resp_...``). Feedback may arrive before or after its call:
scores are linked to calls at query time, never by waiting.

Idempotent per (target, name, user): the table keeps the newest row per key, so a changed thumbs-up
replaces the old one.

Privacy: a comment is free text, so it leaves the app only when the publisher captures text
(``text_capture`` ``analyze`` or ``store``); it is stored with PII replaced by ``<TYPE>``.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from producers.events import MAX_ID_CHARS, MAX_LABEL_CHARS

__all__ = [
    "FEEDBACK_RECORD_VERSION",
    "MAX_COMMENT_CHARS",
    "NEGATIVE_LABELS",
    "FeedbackRecord",
    "build_feedback",
    "is_feedback_record",
]

FEEDBACK_RECORD_VERSION: Final = 1
MAX_COMMENT_CHARS: Final = 2_000
# Labels (and booleans' labels) that count as negative feedback: such a trace is always judged.
NEGATIVE_LABELS: Final = frozenset(
    {"negative", "thumbs_down", "thumbsdown", "bad", "wrong", "unhelpful", "incorrect"}
)
POSITIVE: Final = "positive"
NEGATIVE: Final = "negative"
_TRACE_ID: Final = re.compile(r"[0-9a-f]{32}")


class FeedbackRecord(BaseModel):
    """One piece of human feedback, as the texts topic carries it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    feedback: Literal[1] = FEEDBACK_RECORD_VERSION
    trace_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    response_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    name: str = Field(min_length=1, max_length=MAX_LABEL_CHARS)
    score_value: float | None = None
    label: str = Field(default="", max_length=MAX_LABEL_CHARS)
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)
    user_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    service: str = Field(default="", max_length=MAX_LABEL_CHARS)
    environment: str = Field(default="", max_length=MAX_LABEL_CHARS)
    created_at_ms: int = Field(ge=0)

    @model_validator(mode="after")
    def _target_and_value(self) -> FeedbackRecord:
        if not self.trace_id and not self.response_id:
            raise ValueError("feedback needs a trace id or a response id, got neither")
        if self.score_value is not None and not math.isfinite(self.score_value):
            raise ValueError(f"feedback value must be finite, got {self.score_value!r}")
        if self.score_value is None and not self.label:
            raise ValueError(f"feedback {self.name!r} has neither a score nor a label")
        return self

    @property
    def target(self) -> str:
        return self.response_id or self.trace_id or ""

    @property
    def negative(self) -> bool:
        """A thumbs-down, a score <= 0 or a negative label: the trace is always sent to the judge."""
        if self.label.lower() in NEGATIVE_LABELS:
            return True
        return self.score_value is not None and self.score_value <= 0

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


def is_feedback_record(data: Any) -> bool:
    """True for a decoded texts-topic item that is feedback, not a text record."""
    return isinstance(data, dict) and "feedback" in data


def _value(value: object) -> tuple[float | None, str]:
    if isinstance(value, bool):
        return (1.0, POSITIVE) if value else (0.0, NEGATIVE)
    if isinstance(value, int | float):
        return float(value), ""
    if isinstance(value, str):
        return None, value
    raise ValueError(
        f"feedback value must be a bool, a number or a label, got {type(value).__name__} {value!r}"
    )


def build_feedback(
    target: str,
    name: str,
    value: object,
    *,
    comment: str | None,
    user_id: str | None,
    service: str,
    environment: str,
    now_ms: int,
    keep_comment: bool,
) -> FeedbackRecord:
    """Validate the arguments of ``watch.feedback`` into a record; ValueError naming the bad one."""
    if not isinstance(target, str) or not target:
        raise ValueError(f"feedback target must be a trace id or response id, got {target!r}")
    score, label = _value(value)
    is_trace = _TRACE_ID.fullmatch(target) is not None
    return FeedbackRecord(
        trace_id=target if is_trace else None,
        response_id=None if is_trace else target,
        name=name,
        score_value=score,
        label=label,
        comment=comment if keep_comment and comment else None,
        user_id=user_id,
        service=service,
        environment=environment,
        created_at_ms=now_ms,
    )
