"""The record format: batch envelopes and bare events, and the errors for everything else."""

from __future__ import annotations

import orjson
import pytest

from producers.wire import (
    BATCH_VERSION,
    RecordError,
    SplitRecord,
    encode_batch,
    encode_batch_raw,
    split_record,
)


def test_batch_round_trip() -> None:
    events = [{"service": "a", "n": i} for i in range(3)]
    split = split_record(encode_batch(events, sent_at_ms=123))
    assert isinstance(split, SplitRecord)
    assert split.events == events and split.sent_at_ms == 123 and split.is_batch


def test_raw_batch_equals_encoded_batch() -> None:
    events = [{"service": "a", "n": i} for i in range(3)]
    raw = encode_batch_raw([orjson.dumps(e) for e in events], sent_at_ms=5)
    assert orjson.loads(raw) == orjson.loads(encode_batch(events, sent_at_ms=5))


def test_bare_event_is_a_single_event_record() -> None:
    split = split_record(b'{"service": "a"}')
    assert isinstance(split, SplitRecord)
    assert split.events == [{"service": "a"}] and not split.is_batch and split.sent_at_ms is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"not json", "not valid UTF-8 JSON"),
        (b"\xff\xfe{}", "not valid UTF-8 JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'"text"', "expected a JSON object, got str"),
        (b'{"llmwatch_batch": 99, "events": []}', "unsupported batch envelope version 99"),
        (b'{"llmwatch_batch": %d, "events": 5}' % BATCH_VERSION, "must be a list, got 5"),
    ],
)
def test_unreadable_records_name_the_reason(value: bytes | None, reason: str) -> None:
    split = split_record(value)
    assert isinstance(split, RecordError)
    assert reason in split.reason
