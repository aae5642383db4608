"""The rollup tables' rows and their ``rollups`` Kafka record: field tuples, ``RecordRollups``, encode/decode.

Three tables receive a raw record's rollups: 1-minute rollups (``ROLLUP_1M_FIELDS``), 1-minute
per-tenant cost (``TENANT_COST_1M_FIELDS``) and hourly per-user cost (``USER_COST_1H_FIELDS``).
``streams.analytics.rollups`` computes the rows; this module only fixes their shape and wire format.

Exactly-once windows under at-least-once delivery: every row carries the position of the raw record it
came from (``SOURCE_FIELDS``: ``source_topic``, ``source_partition``, ``source_offset``) in its sorting
key, and its content depends only on that record's events. Nothing configuration-dependent is in a
sorting key: the model ``lifecycle`` label (from the lifecycle catalog) is a column, not a key, and is
a function of (provider, model, day of ``window_start``), so it never splits a group; a replay after the
catalog changed replaces the old row instead of adding a second one. A replay after a worker or sink
restart re-creates identical rows with identical keys, which the ReplacingMergeTree tables collapse;
queries read them with FINAL. So a restart neither loses nor double-counts a window, and a late event
simply adds a row to its (old) window.

Encoding is lossless for the rows' values: ``encode_rollups`` writes them as ``streams.table_rows``
JSON and ``decode_rollups`` restores the sketches' integer bin keys. Nothing here blocks or does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from streams.storage import ROLLUP_TABLE, TENANT_COST_TABLE, USER_COST_TABLE
from streams.table_rows import decode_tables, encode_tables

__all__ = [
    "ROLLUPS_KIND",
    "ROLLUP_1M_FIELDS",
    "ROLLUP_DIMENSIONS",
    "SOURCE_FIELDS",
    "TENANT_COST_1M_FIELDS",
    "USER_COST_1H_FIELDS",
    "RecordRollups",
    "decode_rollups",
    "encode_rollups",
    "rollup_tables",
]

# The dimensions of a 1-minute rollup row, in sorting-key order (see sinks/migrations).
ROLLUP_DIMENSIONS: Final[tuple[str, ...]] = (
    "window_start",
    "service",
    "environment",
    "provider_name",
    "model",
    "span_kind",
    "prompt_name",
    "prompt_version",
    "variant",
    "status",
    "lifecycle",
)
# The source record's position: with the dimensions (minus lifecycle), the rows' sorting key.
SOURCE_FIELDS: Final[tuple[str, ...]] = ("source_topic", "source_partition", "source_offset")
ROLLUP_1M_FIELDS: Final[tuple[str, ...]] = (
    *ROLLUP_DIMENSIONS,
    "source_topic",
    "source_partition",
    "source_offset",
    "requests",
    "errors",
    "rate_limited",
    "timeouts",
    "error_types",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_output_tokens",
    "cost_usd",
    "priced_requests",
    "unpriced_requests",
    "reported_cost_usd",
    "latency_bins",
    "latency_zero_count",
    "latency_sum_ms",
    "ttft_bins",
    "ttft_zero_count",
    "tokens_per_s_bins",
    "tokens_per_s_zero_count",
    "ratelimit_remaining_requests_min",
    "ratelimit_remaining_tokens_min",
    "max_sent_at",
)
# What the per-tenant and per-user cost rows sum (the tenant table keeps all of them).
_COST_SUMS: Final = (
    "requests",
    "errors",
    "cost_usd",
    "unpriced_requests",
    "input_tokens",
    "output_tokens",
)
TENANT_COST_1M_FIELDS: Final[tuple[str, ...]] = (
    "window_start",
    "tenant_id",
    "service",
    "environment",
    *SOURCE_FIELDS,
    *_COST_SUMS,
)
USER_COST_1H_FIELDS: Final[tuple[str, ...]] = (
    "hour_start",
    "tenant_id",
    "user_id",
    *SOURCE_FIELDS,
    "requests",
    "cost_usd",
    "input_tokens",
    "output_tokens",
)


@dataclass(frozen=True, slots=True)
class RecordRollups:
    rollup_1m: list[dict[str, Any]]
    user_cost_1h: list[dict[str, Any]]
    tenant_cost_1m: list[dict[str, Any]] = field(default_factory=list)


ROLLUPS_KIND: Final = "rollups"


def rollup_tables(rollups: RecordRollups) -> dict[str, list[dict[str, Any]]]:
    """The rows of one record's rollups per target table."""
    return {
        ROLLUP_TABLE: rollups.rollup_1m,
        USER_COST_TABLE: rollups.user_cost_1h,
        TENANT_COST_TABLE: rollups.tenant_cost_1m,
    }


def encode_rollups(rollups: RecordRollups) -> bytes:
    """One ``rollups`` topic record: the rows of all three tables (``streams.table_rows`` format)."""
    return encode_tables(ROLLUPS_KIND, rollup_tables(rollups))


def _int_keys(bins: Mapping[str, int]) -> dict[int, int]:
    return {int(k): int(v) for k, v in bins.items()}


def decode_rollups(value: bytes | None) -> dict[str, list[dict[str, Any]]]:
    """Rows per table from one ``rollups`` record; raises ValueError naming what is wrong."""
    tables = decode_tables(value, ROLLUPS_KIND)
    for row in tables.get(ROLLUP_TABLE, []):
        for prefix in ("latency", "ttft", "tokens_per_s"):
            row[f"{prefix}_bins"] = _int_keys(row[f"{prefix}_bins"])
    return {
        table: tables.get(table, []) for table in (ROLLUP_TABLE, USER_COST_TABLE, TENANT_COST_TABLE)
    }
