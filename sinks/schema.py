"""The ClickHouse schema of llmwatch: database, table and column names, keys and retention, named once.

The tables are created by the versioned migrations in ``sinks/migrations`` (applied by
``sinks.migrate.apply_migrations``); this module names what they create so that code and tests refer
to one place. Migration files are immutable history: a change is a new migration, and the constants
here follow it.

Tables (all in one database, ``llmwatch`` by default):

- ``llm_calls``: one row per LLM call or chain step, the columns of
  ``streams.ingest.records.CALL_FIELDS`` plus
  ``ingested_at``. ``ReplacingMergeTree(ingested_at)``, ``PARTITION BY toDate(start_time)``,
  ``ORDER BY`` :data:`CALLS_ORDER_BY` (only values that come from the event, ending with ``event_id``).
- ``llm_dlq``: one row per dead letter, the columns of ``streams.ingest.records.DLQ_FIELDS`` plus
  ``ingested_at``. ``ReplacingMergeTree(ingested_at)``, ``ORDER BY`` :data:`DLQ_ORDER_BY`.
- ``schema_migrations``: the migrations applied (version, name, checksum, applied_at).

Retention (TTL, applied by background merges, so expired data can linger a few hours):
captured texts ``input_text`` / ``output_text`` are cleared after :data:`TEXT_TTL_DAYS` days (column
TTL); ``llm_calls`` rows are deleted after :data:`CALLS_TTL_DAYS` days; ``llm_dlq`` rows after
:data:`DLQ_TTL_DAYS` days. Call ages count from ``start_time``, dead letters from ``failed_at``.

Exactness: the sink delivers at least once, so a replay inserts rows again. Rows with the same sorting
key collapse into one when parts merge, which is eventual: a query that needs exact counts or sums
reads with ``FINAL`` (``SELECT count() FROM llmwatch.llm_calls FINAL WHERE ...``). Dashboards showing
rates and percentiles over many rows can skip ``FINAL``; duplicates there are rare and short-lived.

``insert_deduplication_token`` is deliberately not used: a replay after a crash rarely reproduces the
same batch boundaries, so block-level deduplication would seldom fire, and on a non-replicated table it
needs a deduplication window that silently drops a re-load after ``TRUNCATE`` or after the embedded
broker restarted its offsets from 0. ``ReplacingMergeTree`` plus ``FINAL`` covers every replay.
"""

from __future__ import annotations

import re
from typing import Final

from streams.ingest.records import CALL_FIELDS, DLQ_FIELDS
from streams.storage import (
    CALLS_TABLE,
    CALLS_TTL_DAYS,
    DEFAULT_DATABASE,
    DLQ_TABLE,
    DLQ_TTL_DAYS,
    TEXT_TTL_DAYS,
)

__all__ = [
    "CALLS_ORDER_BY",
    "CALLS_TABLE",
    "CALLS_TTL_DAYS",
    "CALL_COLUMNS",
    "DEFAULT_DATABASE",
    "DLQ_COLUMNS",
    "DLQ_ORDER_BY",
    "DLQ_TABLE",
    "DLQ_TTL_DAYS",
    "INGESTED_AT",
    "MIGRATIONS_TABLE",
    "TEXT_COLUMNS",
    "TEXT_TTL_DAYS",
    "qualified",
    "validate_database",
]

MIGRATIONS_TABLE: Final = "schema_migrations"

# Filled by ClickHouse at insert (DEFAULT now64(3)); the sink never sends it.
INGESTED_AT: Final = "ingested_at"
# The columns the sink inserts, in the order of the row formats.
CALL_COLUMNS: Final[tuple[str, ...]] = CALL_FIELDS
DLQ_COLUMNS: Final[tuple[str, ...]] = DLQ_FIELDS

CALLS_ORDER_BY: Final[tuple[str, ...]] = (
    "environment",
    "service",
    "provider_name",
    "request_model",
    "start_time",
    "event_id",
)
DLQ_ORDER_BY: Final[tuple[str, ...]] = ("dead_letter_id", "payload_sha256")

TEXT_COLUMNS: Final[tuple[str, ...]] = ("input_text", "output_text")

_IDENTIFIER_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def validate_database(name: str) -> str:
    """Return ``name`` if it is a plain ClickHouse identifier (it is pasted into DDL), else raise."""
    if not _IDENTIFIER_RE.match(name):
        raise ValueError(
            f"database name must be a plain identifier (letters, digits, '_'), got {name!r}"
        )
    return name


def qualified(table: str, database: str = DEFAULT_DATABASE) -> str:
    """``database.table`` for use in SQL, with the database name checked."""
    return f"{validate_database(database)}.{table}"
