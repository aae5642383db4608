"""The shared call span and stream proxies: exactly one event however a stream ends, nothing raised."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from producers.integrations import instrument
from producers.integrations.calls import (
    STREAM_END_KEY,
    AsyncStreamProxy,
    CallSpan,
    SyncStreamProxy,
    captures_text,
    header_int,
)
from producers.sdk.tracking import TrackedSpan


class Sink:
    service = "svc"
    environment = "test"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, event: Any) -> bool:
        self.events.append(dict(event))
        return True


class Closable:
    """An inner stream with close() and context-manager methods, like the providers' streams."""

    def __init__(self, items: list[int], fail_at: int | None = None) -> None:
        self.items, self.fail_at, self.closed = items, fail_at, False
        self.response = "the-response"

    def __iter__(self) -> Iterator[int]:
        for index, item in enumerate(self.items):
            if index == self.fail_at:
                raise ConnectionError("dropped")
            yield item

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> Closable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _proxy(sink: Sink, inner: Closable, seen: list[int]) -> SyncStreamProxy:
    span = CallSpan(sink, {"operation_name": "chat"})
    return SyncStreamProxy(inner, span, seen.append, lambda: span.set(output_tokens=len(seen)))


def test_an_exhausted_stream_emits_once_with_what_it_saw() -> None:
    sink, seen = Sink(), list[int]()
    stream = _proxy(sink, Closable([1, 2, 3]), seen)
    assert list(stream) == [1, 2, 3]
    stream.close()
    del stream
    gc.collect()
    (event,) = sink.events
    assert event["output_tokens"] == 3 and STREAM_END_KEY not in event.get("metadata", {})


def test_a_stream_that_raises_emits_one_error_and_reraises_the_same_exception() -> None:
    sink, seen = Sink(), list[int]()
    stream = _proxy(sink, Closable([1, 2, 3], fail_at=2), seen)
    with pytest.raises(ConnectionError, match="dropped"):
        list(stream)
    del stream
    gc.collect()
    (event,) = sink.events
    assert (event["status"], event["error_type"], event["output_tokens"]) == (
        "error",
        "ConnectionError",
        2,
    )


def test_leaving_with_early_closes_the_inner_stream_and_says_closed() -> None:
    sink, seen, inner = Sink(), list[int](), Closable([1, 2, 3])
    with _proxy(sink, inner, seen) as stream:
        assert next(stream) == 1
        assert stream.response == "the-response"  # attributes pass through
    assert inner.closed
    (event,) = sink.events
    assert event["metadata"][STREAM_END_KEY] == "closed" and event["output_tokens"] == 1


def test_an_abandoned_stream_still_emits_once() -> None:
    sink, seen = Sink(), list[int]()
    stream = _proxy(sink, Closable([1, 2, 3]), seen)
    for item in stream:
        if item == 2:
            break
    assert sink.events == []
    del stream
    gc.collect()
    (event,) = sink.events
    assert event["metadata"][STREAM_END_KEY] == "abandoned"


def test_a_failing_item_callback_never_reaches_the_app() -> None:
    sink = Sink()
    span = CallSpan(sink, {})

    def boom(_: Any) -> None:
        raise RuntimeError("instrumentation bug")

    assert list(SyncStreamProxy(Closable([1, 2]), span, boom)) == [1, 2]
    assert len(sink.events) == 1 and sink.events[0].get("status") != "error"


def test_async_streams_end_once_whichever_way_they_end() -> None:
    async def items(fail: bool) -> AsyncIterator[int]:
        for index in range(3):
            if fail and index == 1:
                raise ConnectionError("dropped")
            yield index

    async def main() -> list[dict[str, Any]]:
        sink = Sink()
        done = AsyncStreamProxy(items(False), CallSpan(sink, {}), lambda _: None)
        assert [i async for i in done] == [0, 1, 2]
        failing = AsyncStreamProxy(items(True), CallSpan(sink, {}), lambda _: None)
        with pytest.raises(ConnectionError):
            async for _ in failing:
                pass
        closed = AsyncStreamProxy(items(False), CallSpan(sink, {}), lambda _: None)
        assert await anext(closed) == 0
        await closed.close()
        await closed.close()  # twice: still one event
        return sink.events

    events = asyncio.run(main())
    assert [e.get("status", "ok") for e in events] == ["ok", "error", "ok"]
    assert events[2]["metadata"][STREAM_END_KEY] == "closed"


def test_a_call_inside_a_tracked_span_joins_its_trace() -> None:
    sink = Sink()
    with TrackedSpan(sink, {"span_kind": "agent"}) as parent:
        CallSpan(sink, {"operation_name": "chat"}).end()
    child, outer = sink.events
    assert child["trace_id"] == outer["trace_id"] == parent.trace_id
    assert child["parent_span_id"] == parent.span_id


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x": "42"}, 42),
        ({"x": " 7 "}, 7),
        ({"x": "-1"}, None),
        ({"x": "lots"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_header_int(headers: dict[str, str] | None, expected: int | None) -> None:
    assert header_int(headers, "x") == expected


def test_text_is_collected_only_when_the_publisher_captures_it() -> None:
    class Config:
        text_capture = "analyze"

    sink = Sink()
    assert not captures_text(sink)
    sink.config = Config()  # type: ignore[attr-defined]
    assert captures_text(sink)


def test_an_unknown_client_is_returned_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    client = object()
    assert instrument(Sink(), client) is client
    assert "cannot instrument" in caplog.text


def test_an_app_error_inside_the_with_block_is_not_the_calls_error() -> None:
    sink, seen = Sink(), list[int]()
    with pytest.raises(ValueError, match="app bug"), _proxy(sink, Closable([1, 2]), seen) as stream:
        next(stream)
        raise ValueError("app bug")
    (event,) = sink.events
    assert event.get("status", "ok") == "ok" and event["metadata"][STREAM_END_KEY] == "closed"
