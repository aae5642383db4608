"""The columnar rollups equal the row-by-row fold they replaced, bit for bit.

The reference (``rollup_reference``) is the per-row implementation ``streams.analytics.rollups`` had
before it was vectorised (a copy kept as the oracle, not in the package). Every comparison is exact: same rows
in the same order, same values (floats included: both sum in row order), same sketch bins (keys,
counts and insertion order, checked through the encoded bytes), same ``flagged_models``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from producers.simulator import Simulator, default_scenario
from producers.wire import encode_batch_raw
from streams.analytics.record import RecordAnalytics
from streams.analytics.rollups import (
    COLUMN_FIELDS,
    HOUR_MS,
    MINUTE_MS,
    RecordRollups,
    encode_rollups,
    is_rate_limited,
    is_timeout,
    rollup_columns,
    rollup_record,
)
from streams.analytics.sketches import GAMMA, LatencySketch, grouped_bins
from streams.ingest.validate import SourcePosition, ingest_record
from tests.clock import Clock, to_ms
from tests.unit.streams.analytics.rollup_reference import reference_rollups

SOURCE = SourcePosition("llmwatch.events", 1, 42)
BATCH = 500

# --- Data -------------------------------------------------------------------------------------------

CLOCK = Clock.read()
# Yesterday's UTC midnight: simulated traffic around it spans two days (two lifecycle days).
MIDNIGHT = CLOCK.ago(days=1, step=timedelta(days=1))


def simulated_records(
    seed: int, events: int, start: datetime, end: datetime
) -> list[list[dict[str, Any]]]:
    """The normalized, priced rows of simulator records of ``BATCH`` events, as the worker gets them."""
    analytics = RecordAnalytics()
    encoded = [e.to_json() for e in Simulator(seed, default_scenario()).events(events, start, end)]
    return [
        ingest_record(
            encode_batch_raw(encoded[i : i + BATCH]),
            SourcePosition("sim", 0, i),
            record_ms=CLOCK.now_ms,
            cost_fn=analytics.cost_fields,
        ).rows
        for i in range(0, len(encoded), BATCH)
    ]


def template(records: list[list[dict[str, Any]]], span_kind: str = "llm") -> dict[str, Any]:
    return dict(next(r for rows in records for r in rows if r["span_kind"] == span_kind))


def assert_identical(
    rows: list[dict[str, Any]], *, lifecycle_of: Callable[[], RecordAnalytics] | None = None
) -> RecordRollups:
    """New == reference: equal rows, identical encoded bytes, identical lifecycle counts."""
    if lifecycle_of is None:
        expected = reference_rollups(rows, SOURCE)
        got = rollup_record(rows, SOURCE)
    else:
        old, new = lifecycle_of(), lifecycle_of()
        expected = reference_rollups(
            rows, SOURCE, lifecycle=lambda p, m, ms: old.lifecycle(p, m, ms)
        )
        got = new.rollups(rows, SOURCE)
        assert list(new.flagged_models.items()) == list(old.flagged_models.items())
    assert got == expected
    # Byte equality also checks dict order: columns, error kinds and sketch bins (first hit first).
    assert encode_rollups(got) == encode_rollups(expected)
    for new_row, old_row in zip(got.rollup_1m, expected.rollup_1m, strict=True):
        for name, value in old_row.items():
            assert type(new_row[name]) is type(value), name
    return got


@pytest.fixture(scope="module")
def simulated() -> dict[int, list[list[dict[str, Any]]]]:
    return {
        seed: simulated_records(
            seed, 1_500, MIDNIGHT - timedelta(minutes=20), MIDNIGHT + timedelta(minutes=20)
        )
        for seed in (1, 2, 3, 4)
    }


# --- Tests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_simulated_records_roll_up_identically(
    simulated: dict[int, list[list[dict[str, Any]]]], seed: int
) -> None:
    records = simulated[seed]
    assert len(records) == 3
    for rows in records:
        got = assert_identical(rows, lifecycle_of=RecordAnalytics)
        assert got.rollup_1m and got.user_cost_1h and got.tenant_cost_1m
    days = {r["start_time"] // 86_400_000 for rows in records for r in rows}
    assert len(days) == 2  # the traffic spans midnight, so lifecycles are looked up per day
    assert any(r["status"] == "error" for rows in records for r in rows)


def test_whole_simulated_run_as_one_record(
    simulated: dict[int, list[list[dict[str, Any]]]],
) -> None:
    assert_identical([r for rows in simulated[2] for r in rows], lifecycle_of=RecordAnalytics)


def test_empty_record() -> None:
    assert assert_identical([]) == RecordRollups([], [], [])
    assert rollup_columns({name: [] for name in COLUMN_FIELDS}, 0, SOURCE) == RecordRollups(
        [], [], []
    )


def test_one_row(simulated: dict[int, list[list[dict[str, Any]]]]) -> None:
    for span_kind in ("llm", "chain"):
        got = assert_identical([template(simulated[1], span_kind)], lifecycle_of=RecordAnalytics)
        assert len(got.rollup_1m) == 1 and got.rollup_1m[0]["requests"] == 1


def test_edge_values(simulated: dict[int, list[list[dict[str, Any]]]]) -> None:
    base = template(simulated[3])
    start = base["start_time"]
    edits: list[dict[str, Any]] = [
        {"time_to_first_token_ms": None},
        {"time_to_first_token_ms": 0.0},
        {"time_to_first_token_ms": 251.0, "duration_ms": 250.5},  # TTFT up to duration + 1 ms
        {"time_to_first_token_ms": 250.0, "duration_ms": 250.0},  # nothing left to generate in
        {"duration_ms": 0.0, "time_to_first_token_ms": None},
        {"duration_ms": -5.0},  # clamped to 0 by the fold
        {"duration_ms": 1e-320, "output_tokens": 0, "reasoning_output_tokens": 0},  # a zero
        {"duration_ms": GAMMA**40},  # on a bin boundary
        {"duration_ms": GAMMA**-3, "time_to_first_token_ms": GAMMA**-7},
        {"output_tokens": 0, "reasoning_output_tokens": 0},
        {"cost_usd": None},
        {"cost_usd": 0.0},
        {"cost_usd": 1e-12},
        {"reported_cost_usd": 0.25},
        {"user_id": ""},
        {"tenant_id": ""},
        {"request_model": "", "response_model": "gpt-4o-2024-08-06"},
        {"request_model": "", "response_model": ""},
        {"provider_name": "", "request_model": "gpt-4-32k"},
        {"ratelimit_remaining_requests": 7, "ratelimit_remaining_tokens": 2**60 + 1},
        {"ratelimit_remaining_requests": 0, "ratelimit_remaining_tokens": None},
        {"sent_at": start - 10},
        {"sent_at": float(start + 123) + 0.9},
        {"start_time": start + MINUTE_MS},
        {"start_time": start + HOUR_MS},
        {"status": "error", "error_type": "RateLimitError", "http_status": 429},
        {"status": "error", "error_type": "rate_limit_exceeded", "http_status": None},
        {"status": "error", "error_type": "504", "http_status": 504},
        {"status": "error", "error_type": "APITimeoutError", "http_status": None},
        {"status": "error", "error_type": "", "http_status": 408},  # kind "_OTHER"
        {"status": "error", "error_type": "server_error", "http_status": 500},
        {"status": "error", "error_type": "server_error", "http_status": 500, "cost_usd": None},
    ]
    rows = [base | edit for edit in edits]
    rows += [base | edit | {"span_kind": "chain"} for edit in edits[::3]]
    got = assert_identical(rows, lifecycle_of=RecordAnalytics)
    errors = [r for r in got.rollup_1m if r["status"] == "error"]
    failed = [r for r in rows if r["status"] == "error"]
    assert sum(r["rate_limited"] for r in errors) == sum(map(is_rate_limited, failed)) > 0
    assert sum(r["timeouts"] for r in errors) == sum(map(is_timeout, failed)) > 0
    # Beyond float64's exact integers, the minimum is still the exact integer.
    (huge,) = assert_identical([base | {"ratelimit_remaining_tokens": 2**60 + 1}]).rollup_1m
    assert huge["ratelimit_remaining_tokens_min"] == 2**60 + 1
    for edit in edits:  # and each edge on its own
        assert_identical([base | edit])


def test_many_users_and_tenants(simulated: dict[int, list[list[dict[str, Any]]]]) -> None:
    base = template(simulated[4])
    rows = [
        base
        | {
            "user_id": f"user-{i}",
            "tenant_id": f"t{i % 7}",
            "start_time": base["start_time"] + i * 1_000,
        }
        for i in range(BATCH)
    ]
    got = assert_identical(rows, lifecycle_of=RecordAnalytics)
    assert len(got.user_cost_1h) >= BATCH


def test_rate_limited_and_timed_out_records(
    simulated: dict[int, list[list[dict[str, Any]]]],
) -> None:
    rows = [r for rows in simulated[1] for r in rows]
    limited = [
        r | {"status": "error", "error_type": "rate_limit", "http_status": 429} for r in rows[:300]
    ]
    timed_out = [
        r | {"status": "error", "error_type": "timeout", "http_status": None} for r in rows[300:600]
    ]
    assert_identical(limited, lifecycle_of=RecordAnalytics)
    assert_identical(timed_out + limited, lifecycle_of=RecordAnalytics)


def test_lifecycle_is_called_once_per_provider_model_day() -> None:
    """Per-row labels and call counts as the fold's, with one call per (provider, model, day)."""
    day_ms = 86_400_000
    midnight = to_ms(MIDNIGHT)
    calls: list[tuple[str, str, int, int]] = []
    per_row: dict[tuple[str, str, str], int] = {}

    def label(model: str, at_ms: int) -> str:
        return f"{model}-{(at_ms // day_ms) % 2}"

    def counted(provider: str, model: str, at_ms: int, n: int) -> str:
        calls.append((provider, model, at_ms // day_ms, n))
        return label(model, at_ms)

    def reference(provider: str, model: str, at_ms: int) -> str:
        key = (provider, model, label(model, at_ms))
        per_row[key] = per_row.get(key, 0) + 1
        return label(model, at_ms)

    rng = np.random.default_rng(5)
    base = template(simulated_records(6, 20, MIDNIGHT - timedelta(minutes=5), MIDNIGHT))
    rows = [
        base
        | {
            "start_time": midnight + int(rng.integers(-3, 3)) * MINUTE_MS,
            "provider_name": str(rng.choice(["openai", "anthropic"])),
            "request_model": str(rng.choice(["m1", "m2", ""])),
            "response_model": "m3",
        }
        for _ in range(200)
    ]
    expected = reference_rollups(rows, SOURCE, lifecycle=reference)
    assert rollup_record(rows, SOURCE, lifecycle=counted) == expected
    assert len(calls) == len({c[:3] for c in calls}) == 2 * 3 * 2  # provider x model x day
    counts: dict[tuple[str, str, str], int] = {}
    for provider, model, day, n in calls:
        key = (provider, model, label(model, day * day_ms))
        counts[key] = counts.get(key, 0) + n
    assert counts == per_row


def test_columns_as_arrays_equal_rows(simulated: dict[int, list[list[dict[str, Any]]]]) -> None:
    rows = simulated[2][0]
    columns: dict[str, Any] = {}
    for name in COLUMN_FIELDS:
        values = [r[name] for r in rows]
        columns[name] = np.array(values) if None not in values else values
    assert isinstance(columns["duration_ms"], np.ndarray)
    assert isinstance(columns["service"], np.ndarray)
    got = rollup_columns(columns, len(rows), SOURCE)
    assert got == reference_rollups(rows, SOURCE)
    assert encode_rollups(got) == encode_rollups(reference_rollups(rows, SOURCE))


def test_bad_columns_are_named(simulated: dict[int, list[list[dict[str, Any]]]]) -> None:
    rows = simulated[1][0][:3]
    columns = {name: [r[name] for r in rows] for name in COLUMN_FIELDS}
    with pytest.raises(ValueError, match="'sent_at' has 2 values, expected 3"):
        rollup_columns(columns | {"sent_at": columns["sent_at"][:2]}, 3, SOURCE)
    with pytest.raises(ValueError, match="'tenant_id' is missing"):
        rollup_columns({k: v for k, v in columns.items() if k != "tenant_id"}, 3, SOURCE)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ({"duration_ms": math.nan}, "duration_ms = nan in row 1"),
        ({"duration_ms": math.inf}, "duration_ms = inf in row 1"),
        ({"time_to_first_token_ms": -1.0}, "time_to_first_token_ms = -1.0 in row 1"),
        # Out of contract (durations have microsecond resolution): tokens / 1e-323 s overflows.
        ({"duration_ms": 1e-320, "time_to_first_token_ms": None}, "tokens/s = inf in row 1"),
    ],
)
def test_values_a_sketch_refuses_raise_like_the_fold(
    simulated: dict[int, list[list[dict[str, Any]]]], edit: dict[str, Any], named: str
) -> None:
    base = template(simulated[1])
    rows = [base, base | edit, base]
    with pytest.raises(ValueError, match="sketch values must be finite and >= 0"):
        reference_rollups(rows, SOURCE)
    with pytest.raises(ValueError, match=named):
        rollup_record(rows, SOURCE)


def test_grouped_bins_equal_one_sketch_per_group() -> None:
    rng = np.random.default_rng(11)
    values = np.concatenate(
        [rng.lognormal(5, 2, 3_000), np.zeros(50), GAMMA ** np.arange(-40, 40.0)]
    )
    rng.shuffle(values)
    ids = rng.integers(0, 37, values.size).astype(np.intp)
    bins, zeros = grouped_bins(ids, values, 40)
    sketches = [LatencySketch() for _ in range(40)]
    for group, value in zip(ids.tolist(), values.tolist(), strict=True):
        sketches[group].add(value)
    for group, sketch in enumerate(sketches):
        state = sketch.to_state()
        assert list(bins[group].items()) == list(state.bins.items())
        assert zeros[group] == state.zero_count
    with pytest.raises(ValueError, match=r"got -2\.0"):
        grouped_bins(np.zeros(2, dtype=np.intp), np.array([1.0, -2.0]), 1)
