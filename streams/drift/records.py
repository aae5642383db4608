"""The drift topic's records: ``{"llmwatch_drift": 1, "rows": [llm_drift row, ...], "topics": [...]}``,
one per closed window. ``topics`` (optional) holds the embedding monitor's ``llm_drift_topics`` rows.
:func:`decode_drift` is the sink's decoder; it raises ``ValueError`` naming what is wrong, so the sink
dead-letters a bad record. Nothing here does I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import orjson

from streams.drift.monitor import DRIFT_FIELDS
from streams.storage import DRIFT_TABLE, DRIFT_TOPICS_TABLE

__all__ = ["DRIFT_MARKER", "DRIFT_TOPIC_FIELDS", "decode_drift", "encode_drift"]

DRIFT_MARKER: Final = "llmwatch_drift"
DRIFT_VERSION: Final = 1
DRIFT_TOPIC_FIELDS: Final = (
    "window_start",
    "window_end",
    "reference_kind",
    "service",
    "span_kind",
    "direction",
    "model_id",
    "topic",
    "reference_share",
    "current_share",
    "current_n",
    "examples",
    "evaluated_at",
)


def encode_drift(rows: list[dict[str, Any]], topics: list[dict[str, Any]] | None = None) -> bytes:
    body: dict[str, Any] = {DRIFT_MARKER: DRIFT_VERSION, "rows": rows}
    if topics:
        body["topics"] = topics
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def _checked(body: dict[str, Any], key: str, fields: Sequence[str]) -> list[dict[str, Any]]:
    rows = body.get(key, [])
    if not isinstance(rows, list):
        raise ValueError(f"drift record's {key!r} must be a list, got {type(rows).__name__}")
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"drift {key} #{index} must be an object, got {type(row).__name__}")
        missing = [name for name in fields if name not in row]
        if missing:
            raise ValueError(f"drift {key} #{index} lacks {missing!r}")
    return rows


def decode_drift(value: bytes | None) -> dict[str, list[dict[str, Any]]]:
    """The record's rows per table (``llm_drift``, ``llm_drift_topics``)."""
    if not value:
        raise ValueError("empty drift record")
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"drift record is not JSON: {exc}") from exc
    if not isinstance(body, dict) or body.get(DRIFT_MARKER) != DRIFT_VERSION:
        raise ValueError(
            f"not a drift record (no {DRIFT_MARKER!r}: {DRIFT_VERSION}): {value[:80]!r}"
        )
    if "rows" not in body:
        raise ValueError("drift record lacks 'rows'")
    return {
        DRIFT_TABLE: _checked(body, "rows", DRIFT_FIELDS),
        DRIFT_TOPICS_TABLE: _checked(body, "topics", DRIFT_TOPIC_FIELDS),
    }
