"""The canary topic's records and the table rows they become.

One record per look at a canary (:class:`CanaryVerdict`, JSON): the verdict, and its metrics. The sink
turns it into one ``llm_canary_verdicts`` row and one ``llm_canary_metrics`` row per metric
(:func:`decode_canary`); non-finite numbers (an unbounded interval while an arm has too few calls) are
stored as NULL. Both tables are keyed by (name, label, revision, look[, metric]), so a replayed look
collapses onto the stored one.

The registry topic's records become ``llm_prompts`` and ``llm_prompt_labels`` rows (:func:`decode_registry`).
Nothing here does I/O.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Final

import orjson

from producers.prompts.records import LabelMove, PromptVersionRecord, decode_registry_record
from streams.prompts.verdict import LookResult
from streams.storage import (
    CANARY_METRICS_TABLE,
    CANARY_VERDICTS_TABLE,
    PROMPT_LABELS_TABLE,
    PROMPTS_TABLE,
)

__all__ = [
    "CANARY_METRIC_FIELDS",
    "CANARY_VERDICT_FIELDS",
    "PROMPT_FIELDS",
    "PROMPT_LABEL_FIELDS",
    "CanaryAction",
    "CanaryVerdict",
    "decode_canary",
    "decode_registry",
]

CANARY_VERDICT_FIELDS: Final = (
    "name",
    "label",
    "revision",
    "look",
    "evaluated_at",
    "canary_version",
    "baseline_version",
    "canary_weight",
    "canary_calls",
    "baseline_calls",
    "verdict",
    "score",
    "failed_metrics",
    "action",
    "alpha",
)
CANARY_METRIC_FIELDS: Final = (
    "name",
    "label",
    "revision",
    "look",
    "evaluated_at",
    "metric",
    "canary_version",
    "baseline_version",
    "canary_n",
    "baseline_n",
    "canary_value",
    "baseline_value",
    "diff_low",
    "diff_high",
    "p_value",
    "verdict",
)
PROMPT_FIELDS: Final = (
    "name",
    "version",
    "template",
    "model",
    "params",
    "description",
    "created_at",
    "created_by",
)
PROMPT_LABEL_FIELDS: Final = (
    "name",
    "label",
    "revision",
    "versions",
    "weights",
    "canary",
    "previous_versions",
    "previous_weights",
    "action",
    "moved_at",
    "moved_by",
    "reason",
)


class CanaryAction:
    NONE: Final = "none"
    ALERT: Final = "alert"  # the policy does not act: on-call gets the rollback command
    ROLLED_BACK: Final = "rolled_back"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class CanaryVerdict:
    """One look at a canary: the verdict, what was done about it, and the metrics behind it."""

    name: str
    label: str
    revision: int
    canary_version: str
    baseline_version: str
    canary_weight: int
    canary_calls: int
    baseline_calls: int
    evaluated_at: int  # epoch ms
    alpha: float
    result: LookResult
    action: str = CanaryAction.NONE

    def verdict_row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "revision": self.revision,
            "look": self.result.look,
            "evaluated_at": self.evaluated_at,
            "canary_version": self.canary_version,
            "baseline_version": self.baseline_version,
            "canary_weight": self.canary_weight,
            "canary_calls": self.canary_calls,
            "baseline_calls": self.baseline_calls,
            "verdict": self.result.outcome.value,
            "score": self.result.score,
            "failed_metrics": list(self.result.failed_metrics),
            "action": self.action,
            "alpha": self.alpha,
        }

    def metric_rows(self) -> list[dict[str, Any]]:
        rows = []
        for metric in self.result.metrics:
            row = asdict(metric)
            outcome = row.pop("outcome")
            for key in ("canary_value", "baseline_value", "diff_low", "diff_high", "p_value"):
                row[key] = _finite(row[key])
            row.update(
                name=self.name,
                label=self.label,
                revision=self.revision,
                look=self.result.look,
                evaluated_at=self.evaluated_at,
                canary_version=self.canary_version,
                baseline_version=self.baseline_version,
                verdict=outcome.value,
            )
            rows.append(row)
        return rows

    def to_json(self) -> bytes:
        return orjson.dumps({"verdict": self.verdict_row(), "metrics": self.metric_rows()})

    def key(self) -> bytes:
        return f"{self.name}/{self.label}/{self.revision}".encode()


def decode_canary(value: bytes | None) -> dict[str, list[dict[str, Any]]]:
    """The table rows of one canary record; ValueError naming what is wrong."""
    if value is None:
        raise ValueError("empty canary record (no value)")
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"canary record is not JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("verdict"), dict):
        raise ValueError(f"canary record needs a 'verdict' object, got {str(body)[:80]!r}")
    metrics = body.get("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(m, dict) for m in metrics):
        raise ValueError(
            f"canary record's 'metrics' must be a list of objects, got {metrics!r:.80}"
        )
    return {CANARY_VERDICTS_TABLE: [body["verdict"]], CANARY_METRICS_TABLE: metrics}


def _version_row(record: PromptVersionRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "version": record.version,
        "template": record.template,
        "model": record.model,
        "params": orjson.dumps(record.params, option=orjson.OPT_SORT_KEYS).decode(),
        "description": record.description,
        "created_at": record.created_at_ms,
        "created_by": record.created_by,
    }


def _label_row(move: LabelMove) -> dict[str, Any]:
    return {
        "name": move.name,
        "label": move.label,
        "revision": move.revision,
        "versions": [arm.version for arm in move.arms],
        "weights": [arm.weight for arm in move.arms],
        "canary": move.canary or "",
        "previous_versions": [arm.version for arm in move.previous],
        "previous_weights": [arm.weight for arm in move.previous],
        "action": move.action.value,
        "moved_at": move.moved_at_ms,
        "moved_by": move.moved_by,
        "reason": move.reason,
    }


def decode_registry(value: bytes | None) -> dict[str, list[dict[str, Any]]]:
    """The ``llm_prompts`` or ``llm_prompt_labels`` row of one registry record."""
    if value is None:
        raise ValueError("empty registry record (no value)")
    record = decode_registry_record(value)
    if isinstance(record, PromptVersionRecord):
        return {PROMPTS_TABLE: [_version_row(record)], PROMPT_LABELS_TABLE: []}
    return {PROMPTS_TABLE: [], PROMPT_LABELS_TABLE: [_label_row(record)]}
