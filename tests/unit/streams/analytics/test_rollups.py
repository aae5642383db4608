"""Per-record rollups: exact sums, 1% sketches, replay-identical rows, and a lossless wire format."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import orjson
import pytest

from producers.wire import encode_batch
from streams.analytics.record import RecordAnalytics
from streams.analytics.rollups import (
    ROLLUP_1M_FIELDS,
    ROLLUP_TABLE,
    TENANT_COST_TABLE,
    USER_COST_1H_FIELDS,
    USER_COST_TABLE,
    decode_rollups,
    encode_rollups,
    rollup_record,
)
from streams.analytics.sketches import LatencySketch, SketchState
from streams.ingest.validate import SourcePosition, ingest_record
from tests.clock import Clock, to_ms

SOURCE = SourcePosition("llmwatch.events", 3, 99)
_MINUTE_START = Clock.read().ago(minutes=10)  # a whole minute of the run's clock
NOW = to_ms(_MINUTE_START + timedelta(minutes=5))  # the record's timestamp, just after the events
MINUTE = f"{_MINUTE_START:%Y-%m-%dT%H:%M}"


def event(i: int, **fields: Any) -> dict[str, Any]:
    duration_ms = 100 + (i * 37) % 900
    base: dict[str, Any] = {
        "start_time": f"{MINUTE}:{i % 50:02d}Z",
        "end_time": f"{MINUTE}:{i % 50:02d}.{0:03d}Z",
        "service": "support-bot",
        "provider_name": "openai",
        "request_model": "gpt-4o-mini",
        "user_id": f"u{i % 3}",
        "tenant_id": "acme",
        "input_tokens": 1000,
        "output_tokens": 200,
    }
    base.update(fields)
    # end = start + duration (ms precision)
    from datetime import datetime, timedelta

    start = datetime.fromisoformat(base["start_time"].replace("Z", "+00:00"))
    base["end_time"] = (start + timedelta(milliseconds=duration_ms)).isoformat()
    return base


def rows_of(
    events: list[dict[str, Any]], analytics: RecordAnalytics | None = None
) -> list[dict[str, Any]]:
    cost = analytics.cost_fields if analytics else None
    return ingest_record(encode_batch(events), SOURCE, record_ms=NOW, cost_fn=cost).rows


def test_groups_sum_exactly_and_keep_source_position() -> None:
    events = [event(i) for i in range(30)] + [event(i, http_status=429) for i in range(5)]
    rows = rows_of(events)
    result = rollup_record(rows, SOURCE)
    by_status = {r["status"]: r for r in result.rollup_1m}
    assert by_status["ok"]["requests"] == 30 and by_status["error"]["requests"] == 5
    assert by_status["error"]["rate_limited"] == 5 and by_status["error"]["error_types"] == {
        "429": 5
    }
    assert sum(r["input_tokens"] for r in result.rollup_1m) == 35_000
    for row in result.rollup_1m:
        assert tuple(row) == ROLLUP_1M_FIELDS
        assert (row["source_partition"], row["source_offset"]) == (3, 99)
        assert row["window_start"] % 60_000 == 0


def test_latency_sketch_in_a_rollup_is_within_one_percent() -> None:
    rows = rows_of([event(i) for i in range(50)])
    (row,) = [r for r in rollup_record(rows, SourcePosition("t", 0, 0)).rollup_1m]
    sketch = LatencySketch.from_state(
        SketchState(
            bins=row["latency_bins"],
            zero_count=row["latency_zero_count"],
            count=row["requests"],
            sum=row["latency_sum_ms"],
            min=min(r["duration_ms"] for r in rows),
            max=max(r["duration_ms"] for r in rows),
        )
    )
    exact = np.quantile([r["duration_ms"] for r in rows], 0.9, method="lower")
    assert sketch.quantile(0.9) == pytest.approx(exact, rel=0.01)


def test_costs_and_unpriced_calls_are_separated() -> None:
    analytics = RecordAnalytics()
    events = [event(0), event(1, request_model="my-private-finetune", provider_name="vllm")]
    result = rollup_record(rows_of(events, analytics), SourcePosition("t", 0, 0))
    priced = next(r for r in result.rollup_1m if r["model"] == "gpt-4o-mini")
    unpriced = next(r for r in result.rollup_1m if r["model"] == "my-private-finetune")
    assert priced["cost_usd"] > 0 and priced["priced_requests"] == 1
    assert (unpriced["cost_usd"], unpriced["unpriced_requests"]) == (0.0, 1)
    assert analytics.unknown_models() == {("vllm", "my-private-finetune"): 1}


def test_user_cost_rows_per_user_hour() -> None:
    analytics = RecordAnalytics()
    result = rollup_record(
        rows_of([event(i) for i in range(9)], analytics), SourcePosition("t", 1, 5)
    )
    assert sorted(r["user_id"] for r in result.user_cost_1h) == ["u0", "u1", "u2"]
    assert all(r["requests"] == 3 for r in result.user_cost_1h)
    assert all(tuple(r) == USER_COST_1H_FIELDS for r in result.user_cost_1h)


def test_replaying_a_record_gives_identical_rows() -> None:
    record = encode_batch([event(i) for i in range(20)])  # a replay re-reads the same bytes

    def once() -> object:
        rows = ingest_record(record, SOURCE, record_ms=NOW).rows
        return rollup_record(rows, SourcePosition("t", 2, 7))

    assert once() == once()


def test_deprecated_model_traffic_is_flagged() -> None:
    analytics = RecordAnalytics()
    events = [event(0, request_model="gpt-4-32k", start_time=f"{MINUTE}:00Z")]
    (row,) = analytics.rollups(rows_of(events, analytics), SOURCE).rollup_1m
    assert row["lifecycle"] == "retired"
    assert analytics.flagged_models == {("openai", "gpt-4-32k", "retired"): 1}


def test_wire_round_trip_restores_integer_bin_keys() -> None:
    result = rollup_record(rows_of([event(i) for i in range(10)]), SourcePosition("t", 0, 1))
    decoded = decode_rollups(encode_rollups(result))
    assert decoded[ROLLUP_TABLE] == result.rollup_1m
    assert decoded[USER_COST_TABLE] == result.user_cost_1h
    assert decoded[TENANT_COST_TABLE] == result.tenant_cost_1m


@pytest.mark.parametrize(
    ("value", "message"),
    [(b"", "empty"), (b"nope", "not JSON"), (orjson.dumps({"x": 1}), "marker None")],
)
def test_bad_rollup_records_are_named(value: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_rollups(value)


def test_tenant_costs_sum_per_tenant_and_minute() -> None:
    analytics = RecordAnalytics()
    events = [event(i, tenant_id=f"t{i % 2}") for i in range(10)]
    result = rollup_record(rows_of(events, analytics), SourcePosition("t", 0, 0))
    assert sorted((r["tenant_id"], r["requests"]) for r in result.tenant_cost_1m) == [
        ("t0", 5),
        ("t1", 5),
    ]
    total = sum(r["cost_usd"] for r in result.tenant_cost_1m)
    assert total == pytest.approx(sum(r["cost_usd"] for r in result.rollup_1m))
