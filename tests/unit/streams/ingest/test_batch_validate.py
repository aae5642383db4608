"""The batch path (one pydantic-core call per record) decides every event exactly as the per-event
reference does: the same accept/reject, the same reason string, the same rows and dead letters.

Checked over every rejection case the other ingest tests use (test_validate, test_dead_letters,
test_time_bounds, tests/integration/bad_payloads, the contract's own cases) and a hypothesis fuzz of
mutated events and mixed batches. Times are relative to the wall clock read per test.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import orjson
import pytest

from producers.events import (
    LlmCallEvent,
)
from producers.wire import encode_batch
from streams.ingest.batch_validate import validate_events
from streams.ingest.validate import (
    TimeBounds,
    _meta,
    ingest_record,
    to_call_row,
)
from streams.text.redaction import Redactor
from tests.integration.bad_payloads import BAD_KINDS
from tests.unit.streams.ingest.batch_checks import (
    SOURCE,
    _assert_events_agree,
    _assert_paths_agree,
    _at,
    _bounds_cases,
    _contract_cases,
    _event,
    _now_ms,
    _reference_row,
)


def test_every_known_rejection_case_is_decided_identically_alone_and_in_a_batch() -> None:
    record_ms = _now_ms()
    cases = [*_contract_cases(record_ms), *_bounds_cases(record_ms)]
    batch: list[Any] = [_event(record_ms, event_id="first"), *cases, 1, "x", None, [cases[0]]]
    _assert_events_agree(batch, record_ms)
    result = _assert_paths_agree(encode_batch(batch, sent_at_ms=record_ms), record_ms, Redactor())
    assert len(result.rows) > 2 and len(result.dead_letters) > len(_contract_cases(record_ms))
    for case in cases:
        _assert_events_agree([case], record_ms, whole_record=True)
        _assert_paths_agree(orjson.dumps(case), record_ms, Redactor())


@pytest.mark.parametrize(
    "value",
    [
        b"not json at all",
        "caf\u00e9".encode("latin-1"),
        b'{"service": 5, "start_time": 1, "end_time": 0}',
        b'{"llmwatch_batch": 1, "events": [1]}',
        b"",
    ],
)
def test_test_validate_records_agree(value: bytes) -> None:
    _assert_paths_agree(value, _now_ms())


@pytest.mark.parametrize("kind", BAD_KINDS, ids=[kind.name for kind in BAD_KINDS])
def test_bad_payload_kinds_agree(kind: Any) -> None:
    result = _assert_paths_agree(kind.payload(0), _now_ms(), Redactor())
    assert [letter.index_in_record for letter in result.dead_letters] == [kind.index]


def test_a_valid_batch_is_kept_whole_and_missing_ids_are_derived_as_alone() -> None:
    record_ms = _now_ms()
    events = [_event(record_ms, event_id=f"e{i}", trace_id="t", span_id="s") for i in range(5)]
    events[2] = _event(record_ms)  # no ids: derived from its position
    events[3] = _event(record_ms, event_id="own")  # some ids: the others derived
    value = encode_batch(events)
    result = _assert_paths_agree(value, record_ms)
    assert result.indexes == [0, 1, 2, 3, 4] and result.dead_letters == []
    assert result.rows[2]["event_id"] != result.rows[3]["event_id"] == "own"
    # Derived ids depend on the position only: the same record gives the same ids again.
    assert ingest_record(value, SOURCE, record_ms=record_ms).rows == result.rows


def test_the_batch_path_can_tell_events_apart() -> None:
    """The comparison can fail: a batch differing in one event gives a different outcome."""
    record_ms = _now_ms()
    good = [_event(record_ms, event_id=f"g{i}") for i in range(3)]
    bad = [*good[:1], _event(record_ms, input_tokens=-1), *good[2:]]
    ok = validate_events(good, SOURCE, record_ms)
    out = validate_events(bad, SOURCE, record_ms)
    assert ok.positions == [0, 1, 2] and ok.rejected == {}
    assert out.positions == [0, 2] and list(out.rejected) == [1]
    assert "input_tokens" in out.rejected[1] and "-1" in out.rejected[1]


class _StrictBounds(TimeBounds):
    """A TimeBounds that judges differently: the batch path must ask it about every event."""

    def reason(self, event: LlmCallEvent, record_ms: int) -> str | None:
        return "odd second" if event.end_time.second % 2 else None


def test_a_time_bounds_subclass_is_asked_about_every_event() -> None:
    record_ms = _now_ms()
    events = [
        _event(record_ms, end_time=(_at(record_ms) - timedelta(seconds=s)).isoformat())
        for s in range(1, 7)
    ]
    result = _assert_paths_agree(encode_batch(events), record_ms, bounds=_StrictBounds())
    assert len(result.rows) == len(result.dead_letters) == 3


def test_to_call_row_equals_the_attribute_by_attribute_row() -> None:
    record_ms = _now_ms()
    event = LlmCallEvent.model_validate(
        _event(record_ms, metadata={"a": 1, "b": None}, http_status=503, finish_reasons=["x"])
    )
    metadata: Mapping[str, str] = _meta(event.metadata)
    row = to_call_row(event, SOURCE, sent_at_ms=None)
    assert orjson.dumps(row) == orjson.dumps(_reference_row(event, None, dict(metadata)))
    assert row["status"] == "error" and row["error_type"] == "503"


def test_ingest_record_leaves_the_gc_as_it_found_it() -> None:
    record_ms = _now_ms()
    value = encode_batch([_event(record_ms), _event(record_ms, input_tokens=-1)])

    def failing_cost(event: LlmCallEvent) -> Any:
        raise RuntimeError(f"no price for {event.event_id}")

    assert gc.isenabled()
    for record in (value, b"not json"):
        ingest_record(record, SOURCE, record_ms=record_ms)
        assert gc.isenabled()
    with pytest.raises(RuntimeError, match="no price"):
        ingest_record(value, SOURCE, record_ms=record_ms, cost_fn=failing_cost)
    assert gc.isenabled()
    gc.disable()
    try:
        ingest_record(value, SOURCE, record_ms=record_ms)
        assert not gc.isenabled()
    finally:
        gc.enable()
