"""The records of the evaluation path: judge requests (sampled calls with their text) and scores.

- :class:`JudgeRequest`: one sampled call, with the text the judge needs and the rubrics to apply, on the
  ``judge_requests`` topic (short retention, like the texts topic, since it carries text). Written by
  the text-analysis consumer's sampler, read by ``llmwatch judge``.
- :class:`Score`: one judge, metric or human score of one call, on the ``scores`` topic, stored as one
  row of ``llm_scores``. Shaped after OTel's ``gen_ai.evaluation.result`` event: ``name``, score value,
  label, explanation, response id; linked to the call by trace, span and response id.

Identity: a score's key is ``(target, name, source, evaluator)``, where target is the response id or
else the trace (and span) id and evaluator is the judge model, the metric implementation or the
feedback's user. The table keeps the newest row per key, so a re-judged call or a changed thumbs-up
replaces the old score instead of adding one. Pure; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field

from producers.events import MAX_ID_CHARS, MAX_LABEL_CHARS, MAX_TEXT_CHARS

__all__ = [
    "JUDGE_REQUEST_VERSION",
    "SCORES_RECORD_VERSION",
    "SCORE_FIELDS",
    "JudgeRequest",
    "Score",
    "ScoreSource",
    "decode_scores",
    "encode_scores",
]

JUDGE_REQUEST_VERSION: Final = 1
SCORES_RECORD_VERSION: Final = 1
MAX_EXPLANATION_CHARS: Final = 2_000


class ScoreSource(StrEnum):
    JUDGE = "judge"  # an LLM-as-judge verdict on a rubric
    METRIC = (
        "metric"  # an automated metric against a reference (bleu, chrf, rouge_l, bertscore, exact)
    )
    HUMAN = "human"  # feedback from a person, through watch.feedback(...)


class JudgeRequest(BaseModel):
    """One sampled call for the judge: its ids and labels, its text, and what to apply to it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    judge_request: int = JUDGE_REQUEST_VERSION
    event_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    trace_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    span_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    response_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    service: str = Field(min_length=1, max_length=MAX_LABEL_CHARS)
    environment: str = Field(default="production", max_length=MAX_LABEL_CHARS)
    provider_name: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    model: str = Field(default="", max_length=MAX_LABEL_CHARS)
    prompt_name: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    prompt_version: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    variant: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    start_time: datetime
    input_text: str = Field(default="", max_length=MAX_TEXT_CHARS)
    output_text: str = Field(default="", max_length=MAX_TEXT_CHARS)
    # The expected answer (golden traffic, or the event's ``reference``): enables the reference metrics
    # and the correctness rubric.
    reference_text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    # The retrieval span's text of the same trace (RAG): enables the groundedness rubric.
    context_text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    rubrics: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    # Why it was sampled: the rule's name, or "always:<error|guardrail|feedback>".
    reason: str = Field(default="", max_length=MAX_LABEL_CHARS)
    sampled_at_ms: int = 0

    @property
    def request_id(self) -> str:
        return self.event_id

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_defaults=False))

    @classmethod
    def from_json(cls, data: bytes | str) -> JudgeRequest:
        return cls.model_validate_json(data)


class Score(BaseModel):
    """One score of one call (a row of ``llm_scores``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1, max_length=MAX_LABEL_CHARS)  # rubric, metric or feedback name
    source: ScoreSource
    # Who scored: the judge model, the metric implementation ("sacrebleu"...), the feedback's user.
    evaluator: str = Field(default="", max_length=MAX_ID_CHARS)
    score_value: float | None = None
    label: str = Field(default="", max_length=MAX_LABEL_CHARS)
    explanation: str = Field(default="", max_length=MAX_EXPLANATION_CHARS)
    event_id: str = Field(default="", max_length=MAX_ID_CHARS)
    trace_id: str = Field(default="", max_length=MAX_ID_CHARS)
    span_id: str = Field(default="", max_length=MAX_ID_CHARS)
    response_id: str = Field(default="", max_length=MAX_ID_CHARS)
    service: str = Field(default="", max_length=MAX_LABEL_CHARS)
    environment: str = Field(default="", max_length=MAX_LABEL_CHARS)
    provider_name: str = Field(default="", max_length=MAX_LABEL_CHARS)
    model: str = Field(default="", max_length=MAX_LABEL_CHARS)
    prompt_name: str = Field(default="", max_length=MAX_LABEL_CHARS)
    prompt_version: str = Field(default="", max_length=MAX_LABEL_CHARS)
    variant: str = Field(default="", max_length=MAX_LABEL_CHARS)
    rubric_version: str = Field(default="", max_length=MAX_LABEL_CHARS)
    judge_model: str = Field(default="", max_length=MAX_LABEL_CHARS)
    judge_family: str = Field(default="", max_length=MAX_LABEL_CHARS)
    # The judge's family is the scored model's provider family: a self-preference risk.
    self_judged: bool = False
    # The rubric's minimum judge-human weighted kappa before its scores may drive alerts (0 = none).
    min_kappa: float = 0.0
    # Estimated cost of the judge call(s) behind this score, USD (0 for metrics and humans).
    cost_usd: float = 0.0
    # When the scored call started (0 when unknown: feedback that names only a response id).
    start_time_ms: int = 0
    # When this score was made: the newest per key wins.
    scored_at_ms: int = 0
    comment: str = Field(default="", max_length=MAX_EXPLANATION_CHARS)  # feedback comment, redacted
    # The key's target when it must not depend on joins (feedback: the id it named); else derived.
    target_id: str = Field(default="", max_length=MAX_ID_CHARS)

    @property
    def target(self) -> str:
        """What is scored: ``target_id``, else the response id, else the trace and span ids."""
        return self.target_id or self.response_id or f"{self.trace_id}/{self.span_id}"

    def row(self) -> dict[str, Any]:
        """The ``llm_scores`` row (:data:`SCORE_FIELDS`, times in epoch ms)."""
        row = self.model_dump(mode="json", exclude={"target_id", "start_time_ms", "scored_at_ms"})
        row["target"] = self.target
        row["start_time"] = self.start_time_ms
        row["scored_at"] = self.scored_at_ms
        return row


# The columns of llm_scores (migration 0010), in insert order.
SCORE_FIELDS: Final = (
    "target",
    "name",
    "source",
    "evaluator",
    "score_value",
    "label",
    "explanation",
    "event_id",
    "trace_id",
    "span_id",
    "response_id",
    "service",
    "environment",
    "provider_name",
    "model",
    "prompt_name",
    "prompt_version",
    "variant",
    "rubric_version",
    "judge_model",
    "judge_family",
    "self_judged",
    "min_kappa",
    "cost_usd",
    "start_time",
    "scored_at",
    "comment",
)


def encode_scores(scores: Sequence[Score]) -> bytes:
    """One ``scores`` topic record: ``{"llmwatch_scores": 1, "scores": [row, ...]}``."""
    return orjson.dumps(
        {"llmwatch_scores": SCORES_RECORD_VERSION, "scores": [s.row() for s in scores]}
    )


def decode_scores(value: bytes | None) -> list[dict[str, Any]]:
    """The ``llm_scores`` rows of one ``scores`` record; ValueError naming what is wrong."""
    if not value:
        raise ValueError("empty scores record")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"scores record is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("llmwatch_scores") != SCORES_RECORD_VERSION:
        head = data.get("llmwatch_scores") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"not a scores record of version {SCORES_RECORD_VERSION}: got {head!r}")
    rows = data.get("scores")
    if not isinstance(rows, list):
        raise ValueError(f"scores record without a list of scores: got {type(rows).__name__}")
    return [_validated(row) for row in rows]


def _validated(row: object) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise ValueError(f"a score must be an object, got {type(row).__name__}")
    score = Score.model_validate(
        {
            **row,
            "target_id": row.get("target", ""),
            "start_time_ms": row.get("start_time", 0),
            "scored_at_ms": row.get("scored_at", 0),
        }
    )
    return score.row()
