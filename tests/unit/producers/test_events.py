"""The event contract: what it accepts, what it rejects, and how the rejection reads."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from producers.events import MAX_TEXT_CHARS, LlmCallEvent, SpanKind
from tests.clock import Clock

START_TIME = Clock.read().ago(hours=1)
ISO_Z = "%Y-%m-%dT%H:%M:%SZ"  # the wire form apps send
START = f"{START_TIME:{ISO_Z}}"
END = f"{START_TIME + timedelta(seconds=2):{ISO_Z}}"


def make(**fields: Any) -> LlmCallEvent:
    base: dict[str, Any] = {"start_time": START, "end_time": END, "service": "checkout"}
    base.update(fields)
    return LlmCallEvent.model_validate(base)


def test_minimal_event_gets_ids_and_defaults() -> None:
    event = make()
    assert len(event.event_id) == 32
    assert len(event.trace_id) == 32 and len(event.span_id) == 16
    assert event.span_kind == SpanKind.LLM
    assert event.status == "ok"
    assert event.duration_ms == pytest.approx(2000.0)


@pytest.mark.parametrize(
    ("alias", "field", "value"),
    [
        ("gen_ai.system", "provider_name", "openai"),
        ("gen_ai.provider.name", "provider_name", "anthropic"),
        ("prompt_tokens", "input_tokens", 11),
        ("completion_tokens", "output_tokens", 7),
        ("gen_ai.usage.prompt_tokens", "input_tokens", 12),
        ("gen_ai.usage.completion_tokens", "output_tokens", 8),
        ("gen_ai.usage.input_tokens", "input_tokens", 13),
        ("gen_ai.request.model", "request_model", "gpt-4o"),
        ("gen_ai.response.model", "response_model", "gpt-4o-2024-08-06"),
        ("gen_ai.operation.name", "operation_name", "embeddings"),
        ("gen_ai.conversation.id", "session_id", "conv-1"),
    ],
)
def test_otel_and_deprecated_names_are_accepted(alias: str, field: str, value: object) -> None:
    assert getattr(make(**{alias: value}), field) == value


@pytest.mark.parametrize(
    ("fields", "must_mention"),
    [
        ({"input_tokens": -1}, ["input_tokens", "-1"]),
        ({"output_tokens": -5}, ["output_tokens", "-5"]),
        (
            {"end_time": f"{START_TIME - timedelta(seconds=1):{ISO_Z}}"},
            ["end_time", "before", "start_time"],
        ),
        ({"span_kind": "robot"}, ["span_kind", "robot"]),
        ({"input_text": "x" * (MAX_TEXT_CHARS + 1)}, ["input_text", str(MAX_TEXT_CHARS)]),
        ({"output_text": "y" * (MAX_TEXT_CHARS + 1)}, ["output_text", str(MAX_TEXT_CHARS + 1)]),
        (
            {"input_tokens": 10, "cache_read_input_tokens": 50},
            ["cache_read_input_tokens", "50", "10"],
        ),
        ({"output_tokens": 3, "reasoning_output_tokens": 4}, ["reasoning_output_tokens", "4"]),
        ({"time_to_first_token_ms": 5000.0}, ["time_to_first_token_ms", "5000"]),
        ({"http_status": 999}, ["http_status", "999"]),
        ({"provider_name": "Open AI"}, ["provider_name", "Open AI"]),
        ({"temperature": -0.5}, ["temperature", "-0.5"]),
        ({"service": ""}, ["service"]),
        ({"start_time": "yesterday"}, ["start_time", "yesterday"]),
    ],
)
def test_impossible_values_are_rejected_naming_field_and_value(
    fields: dict[str, Any], must_mention: list[str]
) -> None:
    with pytest.raises(ValidationError) as info:
        make(**fields)
    message = str(info.value)
    for part in must_mention:
        assert part in message


def test_missing_service_is_rejected() -> None:
    with pytest.raises(ValidationError, match="service"):
        LlmCallEvent.model_validate({"start_time": START, "end_time": END})


@pytest.mark.parametrize(
    ("fields", "status", "error_type"),
    [
        ({"http_status": 429}, "error", "429"),
        ({"http_status": 429, "error_type": "rate_limit"}, "error", "rate_limit"),
        ({"error_type": "timeout"}, "error", "timeout"),
        ({"status": "error"}, "error", "_OTHER"),
        ({"http_status": 200}, "ok", None),
    ],
)
def test_status_is_derived_from_error_and_http_status(
    fields: dict[str, Any], status: str, error_type: str | None
) -> None:
    event = make(**fields)
    assert (event.status, event.error_type) == (status, error_type)


def test_naive_timestamps_are_utc() -> None:
    naive = START_TIME.replace(tzinfo=None)
    event = LlmCallEvent(start_time=naive, end_time=naive + timedelta(seconds=1), service="s")
    assert event.start_time.tzinfo is UTC
    assert event.start_time == START_TIME


def test_json_round_trip_is_lossless() -> None:
    start = START_TIME
    event = LlmCallEvent(
        start_time=start,
        end_time=start + timedelta(milliseconds=1234),
        service="rag",
        provider_name="anthropic",
        request_model="claude-3-5-haiku-latest",
        input_tokens=100,
        cache_read_input_tokens=40,
        output_tokens=20,
        finish_reasons=["stop"],
        metadata={"region": "eu", "retries": 2, "cached": True},
    )
    wire = event.to_json()
    assert b"null" not in wire  # None values are not sent
    assert LlmCallEvent.from_json(wire) == event
    assert orjson.loads(wire)["input_tokens"] == 100
