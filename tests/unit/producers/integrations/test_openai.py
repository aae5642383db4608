"""The openai client instrumentation against a local fake of the OpenAI HTTP API (real ``openai`` SDK):
one valid event per call with the fields the server sent, streams however they end, errors passed
through unchanged, text only when the sink captures it."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam

from producers.events import LlmCallEvent
from producers.integrations import INSTRUMENTED_MARK, instrument
from producers.integrations.calls import STREAM_END_KEY, USAGE_KEY
from producers.integrations.openai import provider_for_host
from tests.fakes.openai_server import (
    DEFAULT_REMAINING_REQUESTS,
    DEFAULT_REMAINING_TOKENS,
    FakeOpenAI,
    Reply,
    chat_chunks,
    chat_completion,
    embeddings_body,
    error_reply,
    response_body,
    response_events,
    sse_reply,
)

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Which planet has the longest day?"}
]
PIECES = ["Venus ", "spins ", "very ", "slowly."]


@dataclass
class _Config:
    text_capture: str = "off"


class RecordingSink:
    """Stands in for our Publisher: keeps every emitted event dict."""

    service = "unit-svc"
    environment = "test"

    def __init__(self, text_capture: str = "off") -> None:
        self.config = _Config(text_capture)
        self.events: list[dict[str, Any]] = []

    def emit(self, event: Any) -> bool:
        self.events.append(dict(event))
        return True

    def one(self) -> LlmCallEvent:
        """The only event, validated against the contract."""
        assert len(self.events) == 1, self.events
        return LlmCallEvent.model_validate(self.events[0])


@pytest.fixture()
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def _client(server: FakeOpenAI, sink: RecordingSink, **options: Any) -> openai.OpenAI:
    client = openai.OpenAI(api_key="sk-test", base_url=server.base_url, max_retries=0)
    return instrument(sink, client, **options)


def _async_client(server: FakeOpenAI, sink: RecordingSink, **options: Any) -> openai.AsyncOpenAI:
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=server.base_url, max_retries=0)
    return instrument(sink, client, **options)


def _address(server: FakeOpenAI) -> str:
    return f"127.0.0.1:{server.port}"


# Plain calls.


def test_chat_call_records_request_response_usage_and_headers(server: FakeOpenAI) -> None:
    sink = RecordingSink()
    client = _client(server, sink)
    server.enqueue(
        Reply(
            body=chat_completion(
                id="chatcmpl-abc",
                model="gpt-4o-mini-2024-07-18",
                contents=["One.", "Two."],
                finish_reasons=["stop", "length"],
                prompt_tokens=120,
                completion_tokens=40,
                cached_tokens=64,
                reasoning_tokens=16,
            ),
            headers={
                "x-ratelimit-remaining-requests": "17",
                "x-ratelimit-remaining-tokens": "9000",
            },
        )
    )
    result = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        temperature=0.3,
        top_p=0.9,
        max_completion_tokens=64,
        seed=7,
        n=2,
    )
    assert isinstance(result, openai.types.chat.ChatCompletion)  # what create returns, parsed
    assert [c.message.content for c in result.choices] == ["One.", "Two."]
    event = sink.one()
    assert (event.provider_name, event.server_address) == ("openai_compatible", _address(server))
    assert (event.operation_name, event.span_kind, event.stream) == ("chat", "llm", False)
    assert (event.request_model, event.response_model, event.response_id) == (
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
        "chatcmpl-abc",
    )
    assert (event.temperature, event.top_p, event.max_tokens, event.seed) == (0.3, 0.9, 64, 7)
    assert (event.input_tokens, event.output_tokens) == (120, 40)
    assert (event.cache_read_input_tokens, event.reasoning_output_tokens) == (64, 16)
    assert event.finish_reasons == ["stop", "length"]
    assert (event.ratelimit_remaining_requests, event.ratelimit_remaining_tokens) == (17, 9000)
    assert (event.status, event.error_type, event.time_to_first_token_ms) == ("ok", None, None)
    assert USAGE_KEY not in event.metadata
    assert event.input_text is None and event.output_text is None  # the sink captures no text
    assert server.requests[0].body["messages"] == MESSAGES  # the request went out unchanged


def test_responses_call_records_usage_and_output(server: FakeOpenAI) -> None:
    sink = RecordingSink(text_capture="analyze")
    client = _client(server, sink)
    server.enqueue(Reply(body=response_body(id="resp_9", text="Venus.", usage=(50, 20, 30, 8))))
    result = client.responses.create(
        model="gpt-4.1-mini", input="Which planet?", instructions="Be brief.", max_output_tokens=99
    )
    assert result.output_text == "Venus."
    event = sink.one()
    assert (event.operation_name, event.request_model, event.response_id) == (
        "responses",
        "gpt-4.1-mini",
        "resp_9",
    )
    assert event.response_model == "gpt-4.1-mini-2025-04-14"
    assert (event.input_tokens, event.output_tokens, event.max_tokens) == (50, 20, 99)
    assert (event.cache_read_input_tokens, event.reasoning_output_tokens) == (30, 8)
    assert event.finish_reasons == ["stop"]
    assert event.output_text == "Venus."
    assert orjson.loads(event.input_text or "") == {
        "instructions": "Be brief.",
        "input": "Which planet?",
    }
    assert event.ratelimit_remaining_requests == DEFAULT_REMAINING_REQUESTS


def test_an_incomplete_response_reports_length(server: FakeOpenAI) -> None:
    sink = RecordingSink()
    client = _client(server, sink)
    server.enqueue(
        Reply(body=response_body(status="incomplete", incomplete_reason="max_output_tokens"))
    )
    client.responses.create(model="gpt-4.1-mini", input="Tell me everything.")
    assert sink.one().finish_reasons == ["length"]


def test_embeddings_call(server: FakeOpenAI) -> None:
    sink = RecordingSink(text_capture="store")
    client = _client(server, sink)
    server.enqueue(
        Reply(body=embeddings_body(count=2, model="text-embedding-3-small", prompt_tokens=11))
    )
    result = client.embeddings.create(
        model="text-embedding-3-small", input=["red", "blue"], encoding_format="float"
    )
    assert len(result.data) == 2 and result.data[1].embedding[0] == pytest.approx(0.2)
    event = sink.one()
    assert (event.operation_name, event.span_kind) == ("embeddings", "embedding")
    assert (event.request_model, event.response_model) == (
        "text-embedding-3-small",
        "text-embedding-3-small",
    )
    assert (event.input_tokens, event.output_tokens) == (11, 0)
    assert orjson.loads(event.input_text or "") == ["red", "blue"]
    assert event.ratelimit_remaining_tokens == DEFAULT_REMAINING_TOKENS


async def test_async_chat_and_embeddings(server: FakeOpenAI) -> None:
    sink = RecordingSink()
    client = _async_client(server, sink)
    server.enqueue(
        Reply(body=chat_completion(id="chatcmpl-async", prompt_tokens=5, completion_tokens=2)),
        Reply(body=embeddings_body(prompt_tokens=3)),
    )
    result = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert isinstance(result, openai.types.chat.ChatCompletion)
    await client.embeddings.create(model="text-embedding-3-small", input="red")
    await client.close()
    chat, embed = (LlmCallEvent.model_validate(e) for e in sink.events)
    assert (chat.response_id, chat.input_tokens, chat.output_tokens) == ("chatcmpl-async", 5, 2)
    assert (embed.operation_name, embed.input_tokens) == ("embeddings", 3)
    assert chat.ratelimit_remaining_requests == DEFAULT_REMAINING_REQUESTS


# Streams.


def test_chat_stream_ttft_counts_the_first_content_chunk(server: FakeOpenAI) -> None:
    sink = RecordingSink(text_capture="analyze")
    client = _client(server, sink)
    first_delay, later_delay = 0.15, 0.08
    chunks = chat_chunks(PIECES, id="chatcmpl-s", usage=(40, 4, 32, 0))
    # The role-only chunk 0 comes at once; the first content chunk (1) after first_delay.
    delays = {1: first_delay, **{i: later_delay for i in range(2, len(chunks))}}
    server.enqueue(sse_reply(chunks, delays=delays))
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, openai.Stream) is False  # a proxy, but it behaves like one:
    assert stream.response.status_code == 200
    texts = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    total_ms = (time.perf_counter() - started) * 1000
    assert "".join(texts) == "".join(PIECES)
    event = sink.one()
    assert event.stream is True and event.time_to_first_token_ms is not None
    assert event.time_to_first_token_ms >= first_delay * 1000
    assert event.time_to_first_token_ms < total_ms - 0.8 * later_delay * 1000 * (len(chunks) - 2)
    assert (event.input_tokens, event.output_tokens, event.cache_read_input_tokens) == (40, 4, 32)
    assert (event.response_id, event.finish_reasons) == ("chatcmpl-s", ["stop"])
    assert event.output_text == "".join(PIECES)
    assert event.ratelimit_remaining_requests == DEFAULT_REMAINING_REQUESTS
    assert STREAM_END_KEY not in event.metadata and USAGE_KEY not in event.metadata


def test_a_tool_call_delta_is_a_first_token(server: FakeOpenAI) -> None:
    sink = RecordingSink()
    client = _client(server, sink)
    chunks = chat_chunks(['{"city":', '"Oslo"}'], tool_call=True, finish_reason="tool_calls")
    server.enqueue(sse_reply(chunks, delays={1: 0.1}))
    list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    event = sink.one()
    assert event.time_to_first_token_ms is not None and event.time_to_first_token_ms >= 100
    assert event.finish_reasons == ["tool_calls"]


def test_chat_stream_without_usage_says_missing(server: FakeOpenAI) -> None:
    sink = RecordingSink()
    client = _client(server, sink)
    server.enqueue(sse_reply(chat_chunks(PIECES)))
    chunks = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    )
    assert all(c.choices for c in chunks)  # nothing added to what the app sees
    assert "stream_options" not in server.requests[0].body
    event = sink.one()
    assert event.metadata[USAGE_KEY] == "missing"
    assert (event.input_tokens, event.output_tokens) == (0, 0)


def test_stream_usage_option_asks_for_usage_and_keeps_other_options(server: FakeOpenAI) -> None:
    sink = RecordingSink()
    client = _client(server, sink, stream_usage=True)
    server.enqueue(sse_reply(chat_chunks(PIECES, usage=(33, 4, 0, 0))))
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_obfuscation": False},
        )
    )
    sent = server.requests[0].body["stream_options"]
    assert sent == {"include_obfuscation": False, "include_usage": True}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # the documented extra chunk
    event = sink.one()
    assert (event.input_tokens, event.output_tokens) == (33, 4)
    assert USAGE_KEY not in event.metadata


def test_responses_stream(server: FakeOpenAI) -> None:
    sink = RecordingSink(text_capture="analyze")
    client = _client(server, sink)
    server.enqueue(
        sse_reply(
            response_events(PIECES, id="resp_s", usage=(70, 9, 64, 5)), done=False, delays={3: 0.1}
        )
    )
    kinds = [e.type for e in client.responses.create(model="gpt-4.1-mini", input="Hi", stream=True)]
    assert kinds[-1] == "response.completed" and kinds.count("response.output_text.delta") == 4
    event = sink.one()
    assert (event.operation_name, event.stream, event.response_id) == ("responses", True, "resp_s")
    assert (event.input_tokens, event.output_tokens) == (70, 9)
    assert (event.cache_read_input_tokens, event.reasoning_output_tokens) == (64, 5)
    assert event.finish_reasons == ["stop"] and event.output_text == "".join(PIECES)
    assert event.time_to_first_token_ms is not None and event.time_to_first_token_ms >= 100
    assert event.input_text == "Hi"


async def test_async_chat_stream(server: FakeOpenAI) -> None:
    sink = RecordingSink()
    client = _async_client(server, sink)
    chunks = chat_chunks(PIECES, usage=(12, 4, 0, 2))
    server.enqueue(sse_reply(chunks, delays={1: 0.1}))
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    seen = [c async for c in stream]
    await client.close()
    assert len(seen) == len(chunks)
    event = sink.one()
    assert (event.input_tokens, event.output_tokens, event.reasoning_output_tokens) == (12, 4, 2)
    assert event.time_to_first_token_ms is not None and event.time_to_first_token_ms >= 100


async def test_async_responses_stream_in_async_with(server: FakeOpenAI) -> None:
    sink = RecordingSink()
    client = _async_client(server, sink)
    server.enqueue(sse_reply(response_events(PIECES, usage=(8, 4, 0, 0)), done=False))
    stream = await client.responses.create(model="gpt-4.1-mini", input="Hi", stream=True)
    async with stream:
        kinds = [e.type async for e in stream]
    await client.close()
    assert kinds[-1] == "response.completed"
    event = sink.one()
    assert (event.input_tokens, event.output_tokens, event.finish_reasons) == (8, 4, ["stop"])
    assert STREAM_END_KEY not in event.metadata


# Streams that do not finish.


def test_a_stream_abandoned_after_break_emits_once(server: FakeOpenAI) -> None:
    sink = RecordingSink()
    client = _client(server, sink)
    server.enqueue(sse_reply(chat_chunks(PIECES)))
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    for chunk in stream:
        if chunk.choices[0].delta.content:
            break
    assert sink.events == []  # still open
    del stream, chunk
    gc.collect()
    event = sink.one()
    assert event.metadata[STREAM_END_KEY] == "abandoned"
    assert event.status == "ok" and event.time_to_first_token_ms is not None
    gc.collect()
    assert len(sink.events) == 1


def test_a_stream_closed_early_in_with_says_closed(server: FakeOpenAI) -> None:
    sink = RecordingSink()
    client = _client(server, sink)
    server.enqueue(sse_reply(chat_chunks(PIECES)))
    with client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    ) as stream:
        first = next(iter(stream))
        assert first.choices[0].delta.role == "assistant"
    assert stream.response.is_closed  # the SDK's stream was closed too
    event = sink.one()
    assert event.metadata[STREAM_END_KEY] == "closed" and event.status == "ok"
    assert event.metadata[USAGE_KEY] == "missing"


def test_a_connection_dropped_mid_stream_is_one_error_and_the_apps_exception(
    server: FakeOpenAI,
) -> None:
    sink = RecordingSink()
    client = _client(server, sink)
    server.enqueue(sse_reply(chat_chunks(PIECES), drop_after=3))
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    seen = []
    with pytest.raises(openai.APIConnectionError) as raised:
        for chunk in stream:
            seen.append(chunk)
    assert len(seen) == 3
    del stream
    gc.collect()
    event = sink.one()
    assert (event.status, event.error_type) == ("error", "APIConnectionError")
    assert event.time_to_first_token_ms is not None  # chunks 1 and 2 carried content
    assert type(raised.value) is openai.APIConnectionError


# Errors.


@pytest.mark.parametrize(
    ("reply", "exception", "status"),
    [
        (
            error_reply(
                429,
                "Rate limit reached for requests",
                type="requests",
                code="rate_limit_exceeded",
                headers={
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-remaining-tokens": "1200",
                    "retry-after": "1",
                },
            ),
            openai.RateLimitError,
            429,
        ),
        (
            error_reply(500, "The server had an error", type="server_error"),
            openai.InternalServerError,
            500,
        ),
    ],
)
def test_http_errors_pass_through_and_are_recorded(
    server: FakeOpenAI, reply: Reply, exception: type[openai.APIStatusError], status: int
) -> None:
    sink = RecordingSink()
    client = _client(server, sink)
    server.enqueue(reply)
    with pytest.raises(exception) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    error = raised.value
    assert type(error) is exception and error.status_code == status  # the SDK's own, as is
    assert (
        error.body == reply.body["error"] and error.response.headers["x-request-id"] == "req_fake"
    )
    event = sink.one()
    assert (event.status, event.error_type, event.http_status) == (
        "error",
        exception.__name__,
        status,
    )
    if status == 429:
        assert (event.ratelimit_remaining_requests, event.ratelimit_remaining_tokens) == (0, 1200)
    else:
        assert event.ratelimit_remaining_requests is None


async def test_async_error_passes_the_same_exception(server: FakeOpenAI) -> None:
    sink = RecordingSink()
    client = _async_client(server, sink)
    server.enqueue(error_reply(429, "slow down", type="tokens", code="rate_limit_exceeded"))
    with pytest.raises(openai.RateLimitError):
        await client.responses.create(model="gpt-4.1-mini", input="Hi")
    await client.close()
    event = sink.one()
    assert (event.operation_name, event.http_status, event.error_type) == (
        "responses",
        429,
        "RateLimitError",
    )


def test_an_unreachable_server_is_a_connection_error(server: FakeOpenAI) -> None:
    sink = RecordingSink()
    port = server.port
    server.close()
    client = instrument(
        sink,
        openai.OpenAI(api_key="k", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0),
    )
    with pytest.raises(openai.APIConnectionError):
        client.embeddings.create(model="text-embedding-3-small", input="red")
    event = sink.one()
    assert (event.status, event.error_type, event.http_status) == (
        "error",
        "APIConnectionError",
        None,
    )


# Text, providers, patching.


def test_text_is_collected_only_when_the_sink_captures_text(server: FakeOpenAI) -> None:
    for capture, expect_text in (("off", False), ("analyze", True)):
        sink = RecordingSink(text_capture=capture)
        client = _client(server, sink)
        server.enqueue(Reply(body=chat_completion(contents=["Ten hours."])))
        server.enqueue(sse_reply(chat_chunks(PIECES)))
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
        plain, streamed = sink.events
        if expect_text:
            assert orjson.loads(plain["input_text"]) == MESSAGES
            assert plain["output_text"] == "Ten hours."
            assert streamed["output_text"] == "".join(PIECES)
        else:
            assert not {"input_text", "output_text"} & (plain.keys() | streamed.keys())


def test_a_generator_of_messages_is_not_consumed(server: FakeOpenAI) -> None:
    sink = RecordingSink(text_capture="analyze")
    client = _client(server, sink)
    server.enqueue(Reply(body=chat_completion()))
    client.chat.completions.create(model="gpt-4o-mini", messages=(m for m in MESSAGES))
    assert server.requests[0].body["messages"] == MESSAGES
    assert sink.one().input_text is None


def test_provider_names(server: FakeOpenAI) -> None:
    assert provider_for_host("api.openai.com") == "openai"
    assert provider_for_host("my-resource.openai.azure.com") == "azure.ai.openai"
    assert provider_for_host("localhost") == "openai_compatible"
    sink = RecordingSink()
    vllm = _client(server, sink, provider="vllm")
    server.enqueue(Reply(body=chat_completion()))
    vllm.chat.completions.create(model="m", messages=MESSAGES)
    assert (sink.one().provider_name, sink.one().server_address) == ("vllm", _address(server))
    official = instrument(RecordingSink(), openai.OpenAI(api_key="k"))
    assert official.chat.completions.create.__name__ == "create"
    assert getattr(official, INSTRUMENTED_MARK) is True


def test_a_bad_provider_leaves_the_client_unpatched() -> None:
    client = openai.OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1")
    create = client.chat.completions.create
    instrument(RecordingSink(), client, provider="Not A Token")
    assert client.chat.completions.create == create
    assert not getattr(client, INSTRUMENTED_MARK, False)


def test_instrumenting_twice_patches_once_and_only_that_client(server: FakeOpenAI) -> None:
    sink = RecordingSink()
    client = _client(server, sink)
    patched = client.chat.completions.create
    assert instrument(sink, client) is client
    assert client.chat.completions.create is patched
    other = openai.OpenAI(api_key="sk-test", base_url=server.base_url, max_retries=0)
    server.enqueue(Reply(body=chat_completion()), Reply(body=chat_completion()))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    other.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(sink.events) == 1  # one call recorded once; the other client untouched


def test_copies_are_instrumented_and_raw_response_calls_still_work(server: FakeOpenAI) -> None:
    sink = RecordingSink()
    client = _client(server, sink)
    server.enqueue(Reply(body=chat_completion()), Reply(body=chat_completion(id="raw")))
    client.with_options(timeout=5).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(sink.events) == 1
    raw = client.chat.with_raw_response.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.parse().id == "raw" and raw.headers["x-request-id"] == "req_fake"
    assert len(sink.events) == 1  # raw-response calls pass through unrecorded


def test_a_failing_sink_never_reaches_the_app(server: FakeOpenAI) -> None:
    class Broken(RecordingSink):
        def emit(self, event: Any) -> bool:
            raise RuntimeError("sink bug")

    client = _client(server, Broken())
    server.enqueue(Reply(body=chat_completion(id="fine")), sse_reply(chat_chunks(PIECES)))
    assert client.chat.completions.create(model="m", messages=MESSAGES).id == "fine"
    assert len(
        list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    ) == len(chat_chunks(PIECES))


def test_calls_inside_track_join_the_trace(server: FakeOpenAI) -> None:
    from producers.sdk.tracking import TrackedSpan

    sink = RecordingSink()
    client = _client(server, sink)
    server.enqueue(Reply(body=chat_completion()))
    with TrackedSpan(sink, {"operation_name": "agent", "span_kind": "agent"}) as parent:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    call, outer = sink.events
    assert (call["trace_id"], call["parent_span_id"]) == (parent.trace_id, parent.span_id)
    assert outer["span_id"] == parent.span_id


async def test_an_async_stream_closed_early_says_closed(server: FakeOpenAI) -> None:
    sink = RecordingSink()
    client = _async_client(server, sink)
    server.enqueue(sse_reply(chat_chunks(PIECES)))
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    async for _ in stream:
        break
    await stream.close()
    assert stream.response.is_closed
    await client.close()
    event = sink.one()
    assert event.metadata[STREAM_END_KEY] == "closed" and event.status == "ok"
