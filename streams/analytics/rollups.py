"""Pre-aggregate one raw record's events into mergeable 1-minute rollups and hourly per-user cost.

Why per record: a Faust worker pays per Kafka record, and repartitioning events by dimension would cost
one record per event. Instead each raw record's events are folded into a few rows of mergeable state
(sums, counts, DDSketch bins) that ClickHouse merges at query time across records, partitions and workers.

Exactly-once windows under at-least-once delivery: every row carries the position of the raw record it
came from (``source_topic``, ``source_partition``, ``source_offset``) in its sorting key, and its content
depends only on that record's events. Nothing configuration-dependent is in a sorting key: the model
``lifecycle`` label (from the lifecycle catalog) is a column, not a key, and is a function of (provider,
model, day of ``window_start``), so it never splits a group; a replay after the catalog changed
replaces the old row instead of adding a second one. A replay after a worker or sink restart
re-creates identical rows with identical keys, which the ReplacingMergeTree tables collapse; queries
read them with FINAL. So a restart neither loses nor double-counts a window, and a late event simply
adds a row to its (old) window.

Accuracy: sums and counts are exact; latency, TTFT and output tokens/s quantiles carry DDSketch's 1%
relative error (``streams.analytics.sketches``). Nothing here blocks or does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from streams.analytics.sketches import LatencySketch
from streams.ingest.validate import SourcePosition
from streams.storage import ROLLUP_TABLE, TENANT_COST_TABLE, USER_COST_TABLE
from streams.table_rows import decode_tables, encode_tables

__all__ = [
    "ROLLUPS_KIND",
    "ROLLUP_1M_FIELDS",
    "ROLLUP_TABLE",
    "TENANT_COST_1M_FIELDS",
    "TENANT_COST_TABLE",
    "USER_COST_1H_FIELDS",
    "USER_COST_TABLE",
    "LifecycleFn",
    "RecordRollups",
    "decode_rollups",
    "encode_rollups",
    "is_rate_limited",
    "is_timeout",
    "rollup_record",
    "rollup_tables",
]

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 3_600_000
RATE_LIMIT_STATUS: Final = 429
TIMEOUT_STATUSES: Final = frozenset({408, 504})

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

# (provider, model, epoch ms) -> lifecycle status label ("ok", "deprecated", ...).
LifecycleFn = Callable[[str, str, int], str]


def is_rate_limited(row: Mapping[str, Any]) -> bool:
    error = str(row["error_type"]).lower()
    return row["http_status"] == RATE_LIMIT_STATUS or "rate_limit" in error or "ratelimit" in error


def is_timeout(row: Mapping[str, Any]) -> bool:
    return row["http_status"] in TIMEOUT_STATUSES or "timeout" in str(row["error_type"]).lower()


def _min(current: int | None, value: int | None) -> int | None:
    if value is None:
        return current
    return value if current is None else min(current, value)


@dataclass(slots=True)
class _Group:
    requests: int = 0
    errors: int = 0
    rate_limited: int = 0
    timeouts: int = 0
    error_types: dict[str, int] = field(default_factory=dict)
    tokens: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])
    cost_usd: float = 0.0
    priced: int = 0
    unpriced: int = 0
    reported_cost_usd: float = 0.0
    latency: LatencySketch = field(default_factory=LatencySketch)
    ttft: LatencySketch = field(default_factory=LatencySketch)
    tokens_per_s: LatencySketch = field(default_factory=LatencySketch)
    rl_requests_min: int | None = None
    rl_tokens_min: int | None = None
    max_sent_at: int = 0

    def add(self, row: Mapping[str, Any]) -> None:
        self.requests += 1
        if row["status"] == "error":
            self.errors += 1
            kind = row["error_type"] or "_OTHER"
            self.error_types[kind] = self.error_types.get(kind, 0) + 1
            self.rate_limited += is_rate_limited(row)
            self.timeouts += is_timeout(row)
        for i, name in enumerate(_TOKEN_FIELDS):
            self.tokens[i] += row[name]
        if row["cost_usd"] is None:
            self.unpriced += 1
        else:
            self.priced += 1
            self.cost_usd += row["cost_usd"]
        self.reported_cost_usd += row["reported_cost_usd"] or 0.0
        duration = max(float(row["duration_ms"]), 0.0)
        self.latency.add(duration)
        ttft = row["time_to_first_token_ms"]
        if ttft is not None:
            self.ttft.add(ttft)
        generating_s = (duration - (ttft or 0.0)) / 1000.0
        if row["output_tokens"] > 0 and generating_s > 0:
            self.tokens_per_s.add(row["output_tokens"] / generating_s)
        self.rl_requests_min = _min(self.rl_requests_min, row["ratelimit_remaining_requests"])
        self.rl_tokens_min = _min(self.rl_tokens_min, row["ratelimit_remaining_tokens"])
        self.max_sent_at = max(self.max_sent_at, int(row["sent_at"]))


_TOKEN_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_output_tokens",
)


@dataclass(frozen=True, slots=True)
class RecordRollups:
    rollup_1m: list[dict[str, Any]]
    user_cost_1h: list[dict[str, Any]]
    tenant_cost_1m: list[dict[str, Any]] = field(default_factory=list)


def _sketch_columns(prefix: str, sketch: LatencySketch) -> dict[str, Any]:
    state = sketch.to_state()
    return {f"{prefix}_bins": state.bins, f"{prefix}_zero_count": state.zero_count}


def _source_columns(source: SourcePosition) -> dict[str, Any]:
    return dict(zip(SOURCE_FIELDS, (source.topic, source.partition, source.offset), strict=True))


def _rollup_row(key: tuple[Any, ...], group: _Group, source: SourcePosition) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(ROLLUP_DIMENSIONS, key, strict=True))
    row.update(_source_columns(source))
    row.update(
        requests=group.requests,
        errors=group.errors,
        rate_limited=group.rate_limited,
        timeouts=group.timeouts,
        error_types=group.error_types,
        **dict(zip(_TOKEN_FIELDS, group.tokens, strict=True)),
        cost_usd=group.cost_usd,
        priced_requests=group.priced,
        unpriced_requests=group.unpriced,
        reported_cost_usd=group.reported_cost_usd,
        **_sketch_columns("latency", group.latency),
        latency_sum_ms=group.latency.sum,
        **_sketch_columns("ttft", group.ttft),
        **_sketch_columns("tokens_per_s", group.tokens_per_s),
        ratelimit_remaining_requests_min=group.rl_requests_min,
        ratelimit_remaining_tokens_min=group.rl_tokens_min,
        max_sent_at=group.max_sent_at,
    )
    return row


def _cost_sums(
    rows: Iterable[Mapping[str, Any]],
    key_of: Callable[[Mapping[str, Any]], tuple[Any, ...] | None],
    key_names: tuple[str, ...],
    fields: tuple[str, ...],
    source: SourcePosition,
) -> list[dict[str, Any]]:
    """Requests, errors, cost and tokens summed per key (rows whose key is None are skipped)."""
    sums: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = key_of(row)
        if key is None:
            continue
        acc = sums.get(key)
        if acc is None:
            acc = sums[key] = dict.fromkeys(_COST_SUMS, 0)
            acc["cost_usd"] = 0.0
        acc["requests"] += 1
        acc["errors"] += row["status"] == "error"
        if row["cost_usd"] is None:
            acc["unpriced_requests"] += 1
        else:
            acc["cost_usd"] += row["cost_usd"]
        acc["input_tokens"] += row["input_tokens"]
        acc["output_tokens"] += row["output_tokens"]
    out = []
    for key, acc in sums.items():
        row_out: dict[str, Any] = dict(zip(key_names, key, strict=True))
        row_out.update(_source_columns(source))
        row_out.update(acc)
        out.append({name: row_out[name] for name in fields})
    return out


def _user_key(row: Mapping[str, Any]) -> tuple[Any, ...] | None:
    if not row["user_id"]:
        return None
    return (row["start_time"] // HOUR_MS * HOUR_MS, row["tenant_id"], row["user_id"])


def _tenant_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    minute = row["start_time"] // MINUTE_MS * MINUTE_MS
    return (minute, row["tenant_id"], row["service"], row["environment"])


def rollup_record(
    rows: Iterable[Mapping[str, Any]],
    source: SourcePosition,
    *,
    lifecycle: LifecycleFn | None = None,
) -> RecordRollups:
    """Fold the normalized rows (``streams.ingest.records.CALL_FIELDS``) of one raw record into rollups."""
    rows = list(rows)
    groups: dict[tuple[Any, ...], _Group] = {}
    for row in rows:
        model = row["request_model"] or row["response_model"]
        window_start = row["start_time"] // MINUTE_MS * MINUTE_MS
        # Evaluated at the window's start, so one (provider, model, window) has one label.
        status = lifecycle(row["provider_name"], model, window_start) if lifecycle and model else ""
        key = (
            window_start,
            row["service"],
            row["environment"],
            row["provider_name"],
            model,
            row["span_kind"],
            row["prompt_name"],
            row["prompt_version"],
            row["variant"],
            row["status"],
            status,
        )
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group()
        group.add(row)
    return RecordRollups(
        rollup_1m=[_rollup_row(k, g, source) for k, g in groups.items()],
        user_cost_1h=_cost_sums(
            rows,
            _user_key,
            ("hour_start", "tenant_id", "user_id"),
            USER_COST_1H_FIELDS,
            source,
        ),
        tenant_cost_1m=_cost_sums(
            rows,
            _tenant_key,
            ("window_start", "tenant_id", "service", "environment"),
            TENANT_COST_1M_FIELDS,
            source,
        ),
    )


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
