"""The drift topic's records: ``{"llmwatch_drift": 1, "rows": [llm_drift row, ...]}``, one per closed
window. :func:`decode_drift` is the sink's decoder; it raises ``ValueError`` naming what is wrong, so the
sink dead-letters a bad record. Nothing here does I/O."""

from __future__ import annotations

from typing import Any, Final

import orjson

from streams.drift.monitor import DRIFT_FIELDS

__all__ = ["DRIFT_MARKER", "decode_drift", "encode_drift"]

DRIFT_MARKER: Final = "llmwatch_drift"
DRIFT_VERSION: Final = 1


def encode_drift(rows: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({DRIFT_MARKER: DRIFT_VERSION, "rows": rows})


def decode_drift(value: bytes | None) -> list[dict[str, Any]]:
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
    rows = body.get("rows")
    if not isinstance(rows, list):
        raise ValueError(f"drift record's 'rows' must be a list, got {type(rows).__name__}")
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"drift row #{index} must be an object, got {type(row).__name__}")
        missing = [name for name in DRIFT_FIELDS if name not in row]
        if missing:
            raise ValueError(f"drift row #{index} lacks {missing!r}")
    return rows
