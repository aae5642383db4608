"""Instrumented Anthropic clients against a local fake of the Messages API (tests/fakes/anthropic_server).

Real ``anthropic`` clients (sync and async, ``max_retries=0``) talk HTTP to the fake, which answers with
the API's JSON and SSE shapes; the events land in a recording sink that stands in for our Publisher.
Every event is also checked against the event contract (``LlmCallEvent``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any, cast

import anthropic
import pytest
from anthropic.types import Message

from producers.events import LlmCallEvent
from producers.integrations import instrument
from producers.integrations.anthropic import instrument_anthropic
from producers.integrations.calls import STREAM_END_KEY, USAGE_KEY
from producers.sdk.tracking import TrackedSpan
from tests.fakes.anthropic_server import (
    MODEL,
    FakeAnthropic,
    error,
    message,
    ratelimit_headers,
    stream,
)

REQUEST_MODEL = "claude-sonnet-4-5"
PROMPT = [{"role": "user", "content": "What is the capital of France?"}]
SYSTEM = "Answer in one short sentence."
ERROR_CLASSES = {
    429: anthropic.RateLimitError,
    500: anthropic.InternalServerError,
    529: anthropic.OverloadedError,
}


class RecordingSink:
    """Stands in for ``producers.sdk.Publisher``: the attributes instrumentations read, and emit()."""

    service = "unit-svc"
    environment = "test"

    def __init__(self, text_capture: str = "off") -> None:
        self.config = SimpleNamespace(text_capture=text_capture)
        self.events: list[dict[str, Any]] = []

    def emit(self, event: Any) -> bool:
        self.events.append(dict(event))
        return True

    def only(self) -> dict[str, Any]:
        """The single event, validated against the event contract."""
        assert len(self.events) == 1, self.events
        LlmCallEvent.model_validate(self.events[0])
        return self.events[0]


@pytest.fixture()
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture()
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture()
def client(fake: FakeAnthropic, sink: RecordingSink) -> Iterator[anthropic.Anthropic]:
    plain = anthropic.Anthropic(api_key="test-key", base_url=fake.base_url, max_retries=0)
    instrumented = instrument(sink, plain)
    assert instrumented is plain
    yield plain
    plain.close()


@pytest.fixture()
async def aclient(
    fake: FakeAnthropic, sink: RecordingSink
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    plain = anthropic.AsyncAnthropic(api_key="test-key", base_url=fake.base_url, max_retries=0)
    instrument(sink, plain)
    yield plain
    await plain.close()


def _ask(**extra: Any) -> dict[str, Any]:
    return {"model": REQUEST_MODEL, "max_tokens": 256, "messages": PROMPT, **extra}


def _common(event: dict[str, Any], fake: FakeAnthropic, *, stream: bool) -> None:
    assert event["provider_name"] == "anthropic"
    assert event["operation_name"] == "chat"
    assert event["server_address"] == fake.address
    assert event["request_model"] == REQUEST_MODEL
    assert event["max_tokens"] == 256
    assert event["stream"] is stream


def _raised_by_sdk(exc: BaseException) -> bool:
    """The innermost frame of the traceback is inside the SDK or its HTTP client, not ours."""
    frames = traceback.extract_tb(exc.__traceback__)
    return "producers/integrations" not in frames[-1].filename


# --- plain calls ---------------------------------------------------------------------------------


def test_sync_create_records_the_response_usage_and_headers(
    fake: FakeAnthropic, sink: RecordingSink, client: anthropic.Anthropic
) -> None:
    fake.push(
        message(
            "Paris.",
            msg_id="msg_01PlainPlainPlain",
            input_tokens=30,
            output_tokens=4,
            cache_read=1200,
            cache_creation=80,
            stop_reason="max_tokens",
            headers=ratelimit_headers(requests_remaining=17, tokens_remaining=1234),
        )
    )
    result = client.messages.create(**_ask(extra_body={"temperature": 0.25, "top_p": 0.9}))
    assert isinstance(result, Message)
    assert result.content[0].type == "text" and result.content[0].text == "Paris."
    assert result.usage.input_tokens == 30  # the app sees Anthropic's own numbers
    event = sink.only()
    _common(event, fake, stream=False)
    assert event["response_model"] == MODEL and event["response_id"] == "msg_01PlainPlainPlain"
    assert event["input_tokens"] == 30 + 1200 + 80  # OTel: cache reads and writes inside input
    assert event["cache_read_input_tokens"] == 1200
    assert event["cache_creation_input_tokens"] == 80
    assert event["output_tokens"] == 4
    assert event["finish_reasons"] == ["max_tokens"]
    assert event["ratelimit_remaining_requests"] == 17
    assert event["ratelimit_remaining_tokens"] == 1234
    assert event["temperature"] == 0.25 and event["top_p"] == 0.9
    assert fake.requests[-1].body["temperature"] == 0.25
    assert "status" not in event and "time_to_first_token_ms" not in event
    assert "input_text" not in event and "output_text" not in event


async def test_async_create_records_the_response_usage_and_headers(
    fake: FakeAnthropic, sink: RecordingSink, aclient: anthropic.AsyncAnthropic
) -> None:
    fake.push(message(msg_id="msg_01AsyncPlain", input_tokens=11, output_tokens=6, cache_read=7))
    result = await aclient.messages.create(**_ask())
    assert isinstance(result, Message) and result.id == "msg_01AsyncPlain"
    event = sink.only()
    _common(event, fake, stream=False)
    assert event["response_id"] == "msg_01AsyncPlain"
    assert (event["input_tokens"], event["cache_read_input_tokens"]) == (18, 7)
    assert event["output_tokens"] == 6 and event["finish_reasons"] == ["end_turn"]
    assert event["ratelimit_remaining_requests"] == 49


# --- streams: create(stream=True) and messages.stream() -----------------------------------------


def _stream_reply(**extra: Any) -> Any:
    return stream(
        ["The capital", " of France", " is Paris."],
        msg_id="msg_01StreamedStreamed",
        input_tokens=40,
        cache_read=300,
        cache_creation=12,
        delta_usage=[{"output_tokens": 9}],
        stop_reason="stop_sequence",
        headers=ratelimit_headers(requests_remaining=8, tokens_remaining=4321),
        **extra,
    )


def _check_stream_event(event: dict[str, Any], fake: FakeAnthropic) -> None:
    _common(event, fake, stream=True)
    assert event["response_model"] == MODEL and event["response_id"] == "msg_01StreamedStreamed"
    assert event["input_tokens"] == 40 + 300 + 12
    assert event["cache_read_input_tokens"] == 300
    assert event["cache_creation_input_tokens"] == 12
    assert event["output_tokens"] == 9
    assert event["finish_reasons"] == ["stop_sequence"]
    assert event["ratelimit_remaining_requests"] == 8
    assert event["ratelimit_remaining_tokens"] == 4321
    assert event["time_to_first_token_ms"] > 0
    assert "status" not in event and STREAM_END_KEY not in event.get("metadata", {})


def test_sync_create_stream_passes_every_event_and_records_one(
    fake: FakeAnthropic, sink: RecordingSink, client: anthropic.Anthropic
) -> None:
    fake.push(_stream_reply())
    kinds = [event.type for event in client.messages.create(**_ask(stream=True))]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    _check_stream_event(sink.only(), fake)


def test_sync_messages_stream_text_stream(
    fake: FakeAnthropic, sink: RecordingSink, client: anthropic.Anthropic
) -> None:
    fake.push(_stream_reply())
    with client.messages.stream(**_ask()) as reading:
        assert isinstance(reading, anthropic.MessageStream)  # the SDK's own object
        assert "".join(reading.text_stream) == "The capital of France is Paris."
    _check_stream_event(sink.only(), fake)


def test_sync_messages_stream_get_final_message(
    fake: FakeAnthropic, sink: RecordingSink, client: anthropic.Anthropic
) -> None:
    fake.push(_stream_reply())
    with client.messages.stream(**_ask()) as reading:
        final = reading.get_final_message()
    assert final.usage.output_tokens == 9 and final.stop_reason == "stop_sequence"
    _check_stream_event(sink.only(), fake)


async def test_async_create_stream(
    fake: FakeAnthropic, sink: RecordingSink, aclient: anthropic.AsyncAnthropic
) -> None:
    fake.push(_stream_reply())
    result = await aclient.messages.create(**_ask(stream=True))
    texts = [e.delta.text async for e in result if e.type == "content_block_delta"]
    assert texts == ["The capital", " of France", " is Paris."]
    _check_stream_event(sink.only(), fake)


async def test_async_messages_stream_iterated_and_final_message(
    fake: FakeAnthropic, sink: RecordingSink, aclient: anthropic.AsyncAnthropic
) -> None:
    fake.push(_stream_reply(), _stream_reply())
    async with aclient.messages.stream(**_ask()) as reading:
        kinds = [event.type async for event in reading]
    assert "text" in kinds and kinds[-1] == "message_stop"  # the SDK's derived events too
    _check_stream_event(sink.only(), fake)
    sink.events.clear()
    async with aclient.messages.stream(**_ask()) as reading:
        final = await reading.get_final_message()
    assert final.content[0].type == "text"
    _check_stream_event(sink.only(), fake)


def _read_sync(client: anthropic.Anthropic, how: str) -> int:
    """Read one whole stream with ``how``; the SDK's own final output_tokens (None for raw)."""
    if how == "create":
        for _ in client.messages.create(**_ask(stream=True)):
            pass
        return -1
    with client.messages.stream(**_ask()) as reading:
        return reading.get_final_message().usage.output_tokens


@pytest.mark.parametrize("how", ["create", "stream"])
def test_message_delta_usage_is_cumulative_not_added(
    fake: FakeAnthropic, sink: RecordingSink, client: anthropic.Anthropic, how: str
) -> None:
    # message_start says 1 output token; two message_delta events then carry running totals 7 and
    # 15, the second with the input count again (as the API does when server tools run). Read as
    # cumulative: output 15, input 25 + cache. Read as increments: output 1 + 7 + 15 = 23, input 50.
    fake.push(
        stream(
            input_tokens=25,
            start_output_tokens=1,
            cache_read=100,
            delta_usage=[{"output_tokens": 7}, {"output_tokens": 15, "input_tokens": 25}],
        )
    )
    sdk_output = _read_sync(client, how)
    event = sink.only()
    assert event["output_tokens"] == 15
    assert event["input_tokens"] == 25 + 100  # cache_read kept from message_start (not re-sent)
    assert event["cache_read_input_tokens"] == 100
    if how == "stream":
        assert sdk_output == 15  # the SDK's own accumulator agrees


@pytest.mark.parametrize("how", ["create", "stream"])
def test_time_to_first_token_covers_the_servers_delay(
    fake: FakeAnthropic, sink: RecordingSink, client: anthropic.Anthropic, how: str
) -> None:
    delay_s = 0.15
    fake.push(stream(first_delta_delay_s=delay_s))
    _read_sync(client, how)
    event = sink.only()
    assert event["time_to_first_token_ms"] >= delay_s * 1000
    duration_ms = (event["end_time"] - event["start_time"]).total_seconds() * 1000
    assert event["time_to_first_token_ms"] <= duration_ms + 1


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 529, 500])
@pytest.mark.parametrize("how", ["create", "create-stream", "stream"])
def test_api_errors_become_error_events_and_reach_the_app_unchanged(
    fake: FakeAnthropic, sink: RecordingSink, client: anthropic.Anthropic, status: int, how: str
) -> None:
    fake.push(error(status, headers=ratelimit_headers(requests_remaining=0, tokens_remaining=5)))
    with pytest.raises(anthropic.APIStatusError) as caught:
        if how == "create":
            client.messages.create(**_ask())
        elif how == "create-stream":
            client.messages.create(**_ask(stream=True))
        else:
            with client.messages.stream(**_ask()) as reading:
                reading.until_done()
    exc = caught.value
    assert type(exc) is ERROR_CLASSES[status] and exc.status_code == status
    assert _raised_by_sdk(exc)
    assert cast(dict[str, Any], exc.body)["error"]["type"] in {
        "rate_limit_error",
        "overloaded_error",
        "api_error",
    }
    event = sink.only()
    assert event["status"] == "error"
    assert event["error_type"] == ERROR_CLASSES[status].__name__
    assert event["http_status"] == status
    assert event["ratelimit_remaining_requests"] == 0
    assert event["ratelimit_remaining_tokens"] == 5
    assert event["request_model"] == REQUEST_MODEL


async def test_async_overloaded_error(
    fake: FakeAnthropic, sink: RecordingSink, aclient: anthropic.AsyncAnthropic
) -> None:
    fake.push(error(529), error(429))
    with pytest.raises(anthropic.OverloadedError) as caught:
        await aclient.messages.create(**_ask())
    assert _raised_by_sdk(caught.value)
    with pytest.raises(anthropic.RateLimitError):
        async with aclient.messages.stream(**_ask()):
            pass
    first, second = sink.events
    assert (first["http_status"], first["error_type"]) == (529, "OverloadedError")
    assert (second["http_status"], second["error_type"]) == (429, "RateLimitError")
    assert second["stream"] is True


@pytest.mark.parametrize("how", ["create", "stream"])
def test_a_connection_dropped_mid_stream_is_one_error_event(
    fake: FakeAnthropic, sink: RecordingSink, client: anthropic.Anthropic, how: str
) -> None:
    fake.push(stream(["one", "two", "three", "four"], drop_after_deltas=2))
    with pytest.raises(Exception) as caught:
        _read_sync(client, how)
    assert type(caught.value).__name__ == "RemoteProtocolError"
    assert _raised_by_sdk(caught.value)
    gc.collect()
    event = sink.only()
    assert event["status"] == "error" and event["error_type"] == "RemoteProtocolError"
    assert event["input_tokens"] == 25 and event["output_tokens"] == 1  # from message_start
    assert event["time_to_first_token_ms"] > 0


async def test_async_connection_dropped_mid_stream(
    fake: FakeAnthropic, sink: RecordingSink, aclient: anthropic.AsyncAnthropic
) -> None:
    fake.push(stream(drop_after_deltas=1))
    result = await aclient.messages.create(**_ask(stream=True))
    with pytest.raises(Exception) as caught:
        async for _ in result:
            pass
    assert type(caught.value).__name__ == "RemoteProtocolError"
    await result.close()
    event = sink.only()
    assert event["status"] == "error" and event["error_type"] == "RemoteProtocolError"


# --- streams that end early ------------------------------------------------------------------------


def test_leaving_a_create_stream_early_is_one_closed_event(
    fake: FakeAnthropic, sink: RecordingSink, client: anthropic.Anthropic
) -> None:
    fake.push(stream(["a", "b", "c", "d"]))
    with client.messages.create(**_ask(stream=True)) as result:
        for event in result:
            if event.type == "content_block_delta":
                break
    result.close()
    del result
    gc.collect()
    event = sink.only()
    assert event["metadata"][STREAM_END_KEY] == "closed"
    assert "status" not in event
    assert event["input_tokens"] == 25 and event["output_tokens"] == 1  # usage seen so far
    assert "finish_reasons" not in event


def test_leaving_messages_stream_early_is_one_closed_event(
    fake: FakeAnthropic, sink: RecordingSink, client: anthropic.Anthropic
) -> None:
    fake.push(stream(["a", "b", "c", "d"]))
    with client.messages.stream(**_ask()) as reading:
        for text in reading.text_stream:
            assert text == "a"
            break
    gc.collect()
    event = sink.only()
    assert event["metadata"][STREAM_END_KEY] == "closed"
    assert "status" not in event


def test_an_app_error_inside_messages_stream_is_recorded_once(
    fake: FakeAnthropic, sink: RecordingSink, client: anthropic.Anthropic
) -> None:
    fake.push(stream())
    with pytest.raises(KeyError, match="app-side"), client.messages.stream(**_ask()) as reading:
        next(iter(reading))
        raise KeyError("app-side")
    event = sink.only()
    assert event["status"] == "error" and event["error_type"] == "KeyError"
    assert event["input_tokens"] == 25


@pytest.mark.parametrize("how", ["create", "stream"])
def test_an_abandoned_stream_is_one_event(
    fake: FakeAnthropic, sink: RecordingSink, client: anthropic.Anthropic, how: str
) -> None:
    fake.push(stream())
    if how == "create":
        reading: Any = client.messages.create(**_ask(stream=True))
        first = next(iter(reading))
    else:
        manager = client.messages.stream(**_ask())
        reading = manager.__enter__()  # never left: the app drops it
        first = next(iter(reading))
        del manager
    assert first.type == "message_start"
    assert sink.events == []
    del reading
    gc.collect()
    event = sink.only()
    assert event["metadata"][STREAM_END_KEY] == "abandoned"
    assert event["response_id"] == "msg_01StreamStreamStream1"


async def test_async_streams_closed_early(
    fake: FakeAnthropic, sink: RecordingSink, aclient: anthropic.AsyncAnthropic
) -> None:
    fake.push(stream(), stream())
    result = await aclient.messages.create(**_ask(stream=True))
    async with result:
        async for _ in result:
            break
    async with aclient.messages.stream(**_ask()) as reading:
        async for _ in reading.text_stream:
            break
    await asyncio.sleep(0)
    gc.collect()
    assert len(sink.events) == 2
    assert all(e["metadata"][STREAM_END_KEY] == "closed" for e in sink.events)


def test_a_finished_stream_closed_and_collected_still_emits_once(
    fake: FakeAnthropic, sink: RecordingSink, client: anthropic.Anthropic
) -> None:
    fake.push(stream())
    with client.messages.create(**_ask(stream=True)) as result:
        list(result)
    result.close()
    del result
    gc.collect()
    assert STREAM_END_KEY not in sink.only().get("metadata", {})


# --- text capture ---------------------------------------------------------------------------------


@pytest.mark.parametrize("capture", ["off", "analyze"])
@pytest.mark.parametrize("how", ["create", "create-stream", "stream"])
def test_text_is_captured_only_when_the_sink_captures_text(
    fake: FakeAnthropic, how: str, capture: str
) -> None:
    sink = RecordingSink(text_capture=capture)
    client = instrument(
        sink, anthropic.Anthropic(api_key="k", base_url=fake.base_url, max_retries=0)
    )
    if how == "create":
        fake.push(message("Paris is the capital."))
        client.messages.create(**_ask(system=SYSTEM))
    elif how == "create-stream":
        fake.push(stream(["Paris", " is", " the capital."]))
        list(client.messages.create(**_ask(system=SYSTEM, stream=True)))
    else:
        fake.push(stream(["Paris", " is", " the capital."]))
        with client.messages.stream(**_ask(system=SYSTEM)) as reading:
            reading.until_done()
    client.close()
    event = sink.only()
    if capture == "off":
        assert "input_text" not in event and "output_text" not in event
    else:
        assert json.loads(event["input_text"]) == [{"role": "system", "content": SYSTEM}, *PROMPT]
        assert event["output_text"] == "Paris is the capital."


def test_messages_given_as_an_iterator_are_not_consumed_for_text(fake: FakeAnthropic) -> None:
    sink = RecordingSink(text_capture="store")
    client = instrument(
        sink, anthropic.Anthropic(api_key="k", base_url=fake.base_url, max_retries=0)
    )
    client.messages.create(model=REQUEST_MODEL, max_tokens=5, messages=iter(cast(Any, PROMPT)))
    assert fake.requests[-1].body["messages"] == PROMPT  # the SDK still sent them
    event = sink.only()
    assert "input_text" not in event and event["output_text"]


# --- patching ----------------------------------------------------------------------------------------


def test_instrumenting_twice_patches_once_and_only_that_client(fake: FakeAnthropic) -> None:
    sink = RecordingSink()
    client = anthropic.Anthropic(api_key="k", base_url=fake.base_url, max_retries=0)
    other = anthropic.Anthropic(api_key="k", base_url=fake.base_url, max_retries=0)
    instrument(sink, client)
    create, stream_method = client.messages.create, client.messages.stream
    instrument(sink, client)
    instrument_anthropic(sink, client)  # even directly: the wrapper is recognised
    assert client.messages.create is create and client.messages.stream is stream_method
    client.messages.create(**_ask())
    other.messages.create(**_ask())
    assert len(sink.events) == 1
    assert "create" not in vars(other.messages)  # the other client's resource is untouched


def test_raw_and_streaming_response_helpers_still_work(
    fake: FakeAnthropic, sink: RecordingSink, client: anthropic.Anthropic
) -> None:
    raw = client.messages.with_raw_response.create(**_ask())
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "49"
    assert isinstance(raw.parse(), Message)
    with client.messages.with_streaming_response.create(**_ask()) as streamed:
        assert isinstance(streamed.parse(), Message)
    assert sink.events == []  # not instrumented (documented)


def test_an_explicit_provider_wins_and_a_bad_one_is_refused(
    fake: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    sink = RecordingSink()
    client = instrument(
        sink,
        anthropic.Anthropic(api_key="k", base_url=fake.base_url, max_retries=0),
        provider="aws.bedrock",
    )
    client.messages.create(**_ask())
    assert sink.only()["provider_name"] == "aws.bedrock"

    other = anthropic.Anthropic(api_key="k", base_url=fake.base_url, max_retries=0)
    with caplog.at_level(logging.WARNING, logger="producers.integrations"):
        assert instrument(sink, other, provider="AWS Bedrock") is other
    assert "create" not in vars(other.messages)
    assert "'AWS Bedrock'" in caplog.text


def test_a_failing_sink_never_reaches_the_app(fake: FakeAnthropic) -> None:
    class Broken(RecordingSink):
        def emit(self, event: Any) -> bool:
            raise RuntimeError("sink is broken")

    client = instrument(
        Broken(), anthropic.Anthropic(api_key="k", base_url=fake.base_url, max_retries=0)
    )
    assert isinstance(client.messages.create(**_ask()), Message)
    fake.push(stream())
    assert [e.type for e in client.messages.create(**_ask(stream=True))][-1] == "message_stop"


def test_a_call_inside_a_tracked_span_joins_its_trace(
    fake: FakeAnthropic, sink: RecordingSink, client: anthropic.Anthropic
) -> None:
    with TrackedSpan(sink, {"span_kind": "agent", "operation_name": "invoke_agent"}) as parent:
        client.messages.create(**_ask())
    call, outer = sink.events
    assert call["trace_id"] == parent.trace_id and call["parent_span_id"] == parent.span_id
    assert outer["span_id"] == parent.span_id
    assert USAGE_KEY not in call.get("metadata", {})
