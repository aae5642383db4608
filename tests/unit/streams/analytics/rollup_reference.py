"""The oracle of the vectorised rollups: the per-row fold ``streams.analytics.rollups`` had before
it was vectorised, kept in the tests (not in the package) to compare against."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.analytics.rollups import (
    HOUR_MS,
    MINUTE_MS,
    ROLLUP_DIMENSIONS,
    SOURCE_FIELDS,
    TENANT_COST_1M_FIELDS,
    USER_COST_1H_FIELDS,
    RecordRollups,
    is_rate_limited,
    is_timeout,
)
from streams.analytics.sketches import LatencySketch
from streams.ingest.validate import SourcePosition

# --- The reference: the row-by-row fold as it was before vectorising --------------------------------

ReferenceLifecycle = Callable[[str, str, int], str]
_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_output_tokens",
)
_COST_SUMS = (
    "requests",
    "errors",
    "cost_usd",
    "unpriced_requests",
    "input_tokens",
    "output_tokens",
)


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


def reference_rollups(
    rows: Iterable[Mapping[str, Any]],
    source: SourcePosition,
    *,
    lifecycle: ReferenceLifecycle | None = None,
) -> RecordRollups:
    rows = list(rows)
    groups: dict[tuple[Any, ...], _Group] = {}
    for row in rows:
        model = row["request_model"] or row["response_model"]
        window_start = row["start_time"] // MINUTE_MS * MINUTE_MS
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
            rows, _user_key, ("hour_start", "tenant_id", "user_id"), USER_COST_1H_FIELDS, source
        ),
        tenant_cost_1m=_cost_sums(
            rows,
            _tenant_key,
            ("window_start", "tenant_id", "service", "environment"),
            TENANT_COST_1M_FIELDS,
            source,
        ),
    )
