"""track() / observe(): span fields, errors, nesting, sync and async."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from producers.events import LlmCallEvent
from producers.sdk import current_span
from producers.sdk.tracking import FUNCTION_METADATA_KEY, TrackedSpan, observe, span_fields


@dataclass
class RecordingSink:
    """Stands in for a Publisher: keeps what would be emitted."""

    service: str = "svc"
    environment: str = "test"
    events: list[dict[str, Any]] = field(default_factory=list)

    def emit(self, event: Mapping[str, Any]) -> bool:
        self.events.append(dict(event))
        return True


class FailingSink(RecordingSink):
    def emit(self, event: Mapping[str, Any]) -> bool:
        raise RuntimeError("sink is broken")


def track(sink: RecordingSink, **kwargs: Any) -> TrackedSpan:
    args: dict[str, Any] = {
        "provider": None,
        "model": None,
        "operation": "chat",
        "span_kind": "llm",
    }
    named = {k: kwargs.pop(k) for k in list(kwargs) if k in args}
    return TrackedSpan(sink, span_fields(**{**args, **named}, fields=kwargs))


def validated(raw: dict[str, Any]) -> LlmCallEvent:
    return LlmCallEvent.model_validate(orjson.loads(orjson.dumps(raw)))


def test_span_fills_fields() -> None:
    sink = RecordingSink()
    with track(sink, provider="openai", model="gpt-4o", user_id="u1") as span:
        span.first_token()
        span.set_usage(input_tokens=100, output_tokens=20, cache_read_input_tokens=40)
        span.set_response(model="gpt-4o-2024", response_id="r1", finish_reasons=["stop"])
        span.set_text(input=[{"role": "user", "content": "hi"}], output="hello")
        span.set(temperature=0.2)
        span.set_metadata(team="search")
    (event,) = sink.events
    parsed = validated(event)
    assert (parsed.service, parsed.environment) == ("svc", "test")
    assert (parsed.provider_name, parsed.request_model, parsed.response_model) == (
        "openai",
        "gpt-4o",
        "gpt-4o-2024",
    )
    assert (parsed.input_tokens, parsed.output_tokens, parsed.cache_read_input_tokens) == (
        100,
        20,
        40,
    )
    assert (parsed.response_id, parsed.finish_reasons, parsed.temperature) == ("r1", ["stop"], 0.2)
    assert parsed.input_text == '[{"role":"user","content":"hi"}]'
    assert (parsed.output_text, parsed.user_id, parsed.metadata) == (
        "hello",
        "u1",
        {"team": "search"},
    )
    assert parsed.status == "ok"
    assert parsed.error_type is None
    assert parsed.time_to_first_token_ms is not None
    assert 0.0 <= parsed.time_to_first_token_ms <= parsed.duration_ms
    assert parsed.end_time >= parsed.start_time


class ApiError(Exception):
    def __init__(self, status_code: Any) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


@dataclass
class _Response:
    status_code: int


class WrappedError(Exception):
    def __init__(self, response: _Response) -> None:
        super().__init__("wrapped")
        self.response = response


class RaisingStatus(Exception):
    @property
    def status_code(self) -> int:
        raise ValueError("no status")


@pytest.mark.parametrize(
    ("error", "error_type", "http_status"),
    [
        (ApiError(429), "ApiError", 429),
        (WrappedError(_Response(503)), "WrappedError", 503),
        (ApiError("429"), "ApiError", None),
        (ApiError(True), "ApiError", None),
        (ApiError(999), "ApiError", None),
        (RaisingStatus(), "RaisingStatus", None),
        (TimeoutError(), "TimeoutError", None),
    ],
    ids=repr,
)
def test_exception_is_recorded_and_reraised_unchanged(
    error: Exception, error_type: str, http_status: int | None
) -> None:
    sink = RecordingSink()
    with pytest.raises(type(error)) as raised, track(sink):
        raise error
    assert raised.value is error
    (event,) = sink.events
    parsed = validated(event)
    assert (parsed.status, parsed.error_type, parsed.http_status) == (
        "error",
        error_type,
        http_status,
    )


def test_tracker_errors_never_reach_the_app() -> None:
    with track(FailingSink()) as span:
        span.set_usage(input_tokens=1)
    with pytest.raises(KeyError), track(FailingSink()):
        raise KeyError("the app's own error still propagates")


def test_nested_spans_link_to_their_parent() -> None:
    sink = RecordingSink()
    with track(sink, span_kind="agent", operation="invoke_agent") as outer:
        with track(sink) as inner:
            assert current_span() is inner
        assert current_span() is outer
    assert current_span() is None
    child, parent = sink.events
    assert child["trace_id"] == parent["trace_id"] == outer.trace_id
    assert child["parent_span_id"] == parent["span_id"] == outer.span_id
    assert "parent_span_id" not in parent
    assert child["span_id"] != parent["span_id"]


def test_explicit_trace_id_continues_a_remote_trace() -> None:
    sink = RecordingSink()
    with track(sink, trace_id="remote-trace", parent_span_id="remote-span"):
        pass
    (event,) = sink.events
    assert (event["trace_id"], event["parent_span_id"]) == ("remote-trace", "remote-span")


def test_observe_sync_function() -> None:
    sink = RecordingSink()

    @observe(sink, span_fields("anthropic", "claude", "chat", "llm", {}))
    def call(x: int) -> int:
        span = current_span()
        assert span is not None
        span.set_usage(input_tokens=x)
        return x * 2

    assert call(21) == 42
    assert call.__name__ == "call"
    (event,) = sink.events
    assert validated(event).input_tokens == 21
    assert event["metadata"][FUNCTION_METADATA_KEY].endswith("call")


def test_observe_async_functions_nest_per_task() -> None:
    sink = RecordingSink()
    fields = span_fields(None, None, "chat", "llm", {})

    @observe(sink, fields)
    async def child(n: int) -> int:
        await asyncio.sleep(0)
        return n

    @observe(sink, span_fields(None, None, "invoke_agent", "agent", {}))
    async def agent() -> list[int]:
        return list(await asyncio.gather(child(1), child(2)))

    @observe(sink, fields)
    async def failing() -> None:
        raise ApiError(500)

    assert asyncio.run(agent()) == [1, 2]
    with pytest.raises(ApiError):
        asyncio.run(failing())
    first, second, root, failed = sink.events
    assert first["parent_span_id"] == second["parent_span_id"] == root["span_id"]
    assert first["trace_id"] == second["trace_id"] == root["trace_id"]
    assert (failed["error_type"], failed["http_status"]) == ("ApiError", 500)
    assert "parent_span_id" not in failed


def test_async_with_is_supported() -> None:
    sink = RecordingSink()

    async def main() -> None:
        async with track(sink, model="m") as span:
            span.set_usage(output_tokens=3)

    asyncio.run(main())
    (event,) = sink.events
    assert (event["request_model"], event["output_tokens"]) == ("m", 3)
