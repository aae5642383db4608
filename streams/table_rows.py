"""The "rows per table" record: one Kafka record carrying rows for several ClickHouse tables.

Format (UTF-8 JSON): ``{"llmwatch_tables": 1, "kind": "<what>", "tables": {"<table>": [row, ...]}}``.
The worker uses it for per-record rollups and for its periodic metrics and top-K snapshots; the sink
splits it per table (``sinks.routes.TablesRoute``). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

__all__ = ["TABLES_MARKER", "TABLES_VERSION", "decode_tables", "encode_tables"]

TABLES_MARKER: Final = "llmwatch_tables"
TABLES_VERSION: Final = 1

Rows = list[dict[str, Any]]


def encode_tables(kind: str, tables: Mapping[str, Rows]) -> bytes:
    """Encode rows per table; integer dict keys (sketch bins) become JSON strings."""
    return orjson.dumps(
        {TABLES_MARKER: TABLES_VERSION, "kind": kind, "tables": dict(tables)},
        option=orjson.OPT_NON_STR_KEYS,
    )


def decode_tables(value: bytes | None, kind: str) -> dict[str, Rows]:
    """Rows per table of one ``kind`` record; raises ValueError naming what is wrong."""
    if not value:
        raise ValueError(f"empty {kind} record")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{kind} record is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get(TABLES_MARKER) != TABLES_VERSION:
        marker = doc.get(TABLES_MARKER) if isinstance(doc, dict) else None
        raise ValueError(f"not a version-{TABLES_VERSION} {kind} record (marker {marker!r})")
    if doc.get("kind") != kind:
        raise ValueError(f"expected a {kind} record, got kind {doc.get('kind')!r}")
    tables = doc.get("tables")
    if not isinstance(tables, dict) or not all(isinstance(v, list) for v in tables.values()):
        raise ValueError(f"{kind} record needs lists of rows under 'tables', got {tables!r:.80}")
    return tables
