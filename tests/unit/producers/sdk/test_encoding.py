"""Serializing what apps pass to emit(): text policy, defaults, rejection of garbage."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import pytest

from producers.events import MAX_TEXT_CHARS, LlmCallEvent, TextCapture
from producers.sdk.batching import bucket_for
from producers.sdk.encoding import (
    MAX_EVENT_BYTES,
    Encoded,
    EventDefaults,
    Rejected,
    encode_event,
)
from producers.texts import TextRecord
from tests.clock import Clock

T0 = Clock.read().ago(hours=1)
OFF = EventDefaults(service="svc", environment="test", text_capture=TextCapture.OFF)
ON = EventDefaults(service="svc", environment="test", text_capture=TextCapture.STORE)
ANALYZE = EventDefaults(service="svc", environment="test", text_capture=TextCapture.ANALYZE)


def _dict(**extra: Any) -> dict[str, Any]:
    return {"start_time": T0, "end_time": T0, "trace_id": "trace-1", **extra}


def _decode(result: Encoded | Rejected) -> dict[str, Any]:
    assert isinstance(result, Encoded), result
    decoded: dict[str, Any] = orjson.loads(result.payload)
    return decoded


def test_model_is_encoded_with_to_json() -> None:
    event = LlmCallEvent(start_time=T0, end_time=T0, service="app", trace_id="t-9")
    result = encode_event(event, OFF)
    assert isinstance(result, Encoded)
    assert result.payload == event.to_json()
    assert result.bucket == bucket_for("t-9")


@pytest.mark.parametrize("as_model", [False, True])
def test_text_is_stripped_without_capture(as_model: bool) -> None:
    fields = _dict(service="app", input_text="secret prompt", output_text="secret answer")
    event: Any = LlmCallEvent.model_validate(fields) if as_model else fields
    result = encode_event(event, OFF)
    decoded = _decode(result)
    assert "input_text" not in decoded
    assert "output_text" not in decoded
    assert b"secret" not in orjson.dumps(decoded)
    assert isinstance(result, Encoded) and result.text is None
    assert decoded["text_capture"] == "off"


@pytest.mark.parametrize("defaults", [ON, ANALYZE], ids=["store", "analyze"])
@pytest.mark.parametrize("as_model", [False, True])
def test_captured_text_moves_to_a_text_record_never_the_event(
    defaults: EventDefaults, as_model: bool
) -> None:
    fields = _dict(service="app", input_text="hi there", output_text="yo", prompt_version="v3")
    event: Any = LlmCallEvent.model_validate(fields) if as_model else fields
    result = encode_event(event, defaults)
    decoded = _decode(result)
    assert "input_text" not in decoded and "output_text" not in decoded
    assert decoded["text_capture"] == defaults.text_capture.value
    assert isinstance(result, Encoded) and result.text is not None
    record = TextRecord.from_json(result.text)
    assert (record.input_text, record.output_text) == ("hi there", "yo")
    assert (record.capture, record.event_id, record.trace_id) == (
        defaults.text_capture,
        decoded["event_id"],
        "trace-1",
    )
    assert (record.service, record.prompt_version, record.truncated) == ("app", "v3", False)


@pytest.mark.parametrize(
    ("per_event", "expected"),
    [("off", None), ("analyze", TextCapture.ANALYZE), ("bogus", None)],
)
def test_an_events_own_capture_wins_and_a_bad_one_sends_nothing(
    per_event: str, expected: TextCapture | None
) -> None:
    result = encode_event(_dict(input_text="hi", text_capture=per_event), ON)
    assert isinstance(result, Encoded)
    if expected is None:
        assert result.text is None
        assert b"hi" not in result.payload
    else:
        assert result.text is not None
        assert TextRecord.from_json(result.text).capture is expected


def test_capture_per_event_turns_text_on_when_the_publisher_has_it_off() -> None:
    result = encode_event(_dict(input_text="hello", text_capture="store"), OFF)
    assert isinstance(result, Encoded) and result.text is not None
    assert TextRecord.from_json(result.text).input_text == "hello"


@pytest.mark.parametrize("as_model", [False, True])
def test_oversize_text_is_truncated_and_flagged(as_model: bool) -> None:
    long_text = "a" * (MAX_TEXT_CHARS + 10)
    fields = _dict(service="app", output_text=long_text, metadata={"team": "x"})
    # model_construct skips validation: the only way a model can hold oversize text.
    event: Any = LlmCallEvent.model_construct(**fields) if as_model else fields
    result = encode_event(event, ON)
    assert isinstance(result, Encoded) and result.text is not None
    record = TextRecord.from_json(result.text)
    assert record.output_text == long_text[:MAX_TEXT_CHARS]
    assert record.truncated is True
    assert _decode(result)["metadata"] == {"team": "x"}


def test_defaults_fill_missing_fields_without_mutating_input() -> None:
    original = _dict(input_text="t")
    snapshot = dict(original)
    decoded = _decode(encode_event(original, OFF))
    assert original == snapshot
    assert (decoded["service"], decoded["environment"]) == ("svc", "test")
    assert len(decoded["event_id"]) == 32
    assert LlmCallEvent.model_validate(decoded).service == "svc"


def test_given_fields_win_over_defaults() -> None:
    decoded = _decode(encode_event(_dict(service="mine", environment="dev", event_id="e1"), OFF))
    assert (decoded["service"], decoded["environment"], decoded["event_id"]) == (
        "mine",
        "dev",
        "e1",
    )


def test_event_without_trace_is_bucketed_by_event_id() -> None:
    result = encode_event({"event_id": "e-42", "service": "s"}, OFF)
    assert isinstance(result, Encoded)
    assert result.bucket == bucket_for("e-42")


def test_naive_datetimes_are_sent_as_utc() -> None:
    decoded = _decode(encode_event(_dict(start_time=T0.replace(tzinfo=None)), OFF))
    assert decoded["start_time"] == T0.isoformat()
    assert decoded["start_time"].endswith("+00:00")


class _BrokenMapping(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("cannot iterate")

    def __len__(self) -> int:
        return 1


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        42,
        "a string",
        b"bytes",
        object(),
        {"x": object()},
        {1: "non-string key"},
        {"x": {1, 2}},
        _BrokenMapping(),
    ],
    ids=repr,
)
def test_garbage_is_rejected_with_a_reason(garbage: object) -> None:
    result = encode_event(garbage, OFF)
    assert isinstance(result, Rejected)
    assert result.reason


def test_event_larger_than_a_record_is_rejected() -> None:
    result = encode_event(_dict(metadata={"blob": "x" * MAX_EVENT_BYTES}), OFF)
    assert isinstance(result, Rejected)
    assert str(MAX_EVENT_BYTES) in result.reason
