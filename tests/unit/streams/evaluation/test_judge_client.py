"""The judge client against the fake OpenAI API on 127.0.0.1 (real ``openai`` package, real HTTP):
replies, retries with jittered backoff (sleeps recorded, never waited), Retry-After, permanent errors,
and one SDK event per attempt through a real Publisher."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

from llmwatch.broker import free_port
from producers.sdk import Publisher
from streams.evaluation.judge_client import (
    JudgeCallError,
    JudgeClient,
    JudgeEndpoint,
    JudgeReply,
)
from tests.fakes.openai_server import FakeOpenAI, Reply, chat_completion, error_reply

VERDICT = '{"score": 4, "label": "good", "explanation": "Answers the question."}'
MESSAGES = [
    {"role": "system", "content": "You grade answers. Reply in JSON."},
    {"role": "user", "content": "Question: 2+2? Answer: 4"},
]
SEED = 7
QUIET: dict[str, Any] = {"log_level": 0}


@pytest.fixture()
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


class Sleeps:
    """An injected ``sleep``: records the delays, waits for none."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def ok(text: str = VERDICT) -> Reply:
    return Reply(
        body=chat_completion(
            model="judge-model-2025", contents=[text], prompt_tokens=40, completion_tokens=12
        )
    )


def header(headers: dict[str, str], name: str) -> str | None:
    return {k.lower(): v for k, v in headers.items()}.get(name)


def client_for(
    server: FakeOpenAI, sleeps: Sleeps, publisher: Publisher | None = None, **options: Any
) -> JudgeClient:
    endpoint = JudgeEndpoint(base_url=server.base_url, model="judge-model", **options)
    return JudgeClient(endpoint, publisher=publisher, rng=random.Random(SEED), sleep=sleeps)


async def test_success_returns_text_model_tokens_and_sends_json_mode(server: FakeOpenAI) -> None:
    server.enqueue(ok())
    sleeps = Sleeps()
    async with client_for(server, sleeps, api_key="sk-test-judge") as client:
        reply = await client.complete(MESSAGES, seed=3)
    assert reply == JudgeReply(
        text=VERDICT, model="judge-model-2025", input_tokens=40, output_tokens=12, attempts=1
    )
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == "judge-model"
    assert request.body["messages"] == MESSAGES
    assert request.body["temperature"] == 0.0
    assert request.body["seed"] == 3
    assert request.body["response_format"] == {"type": "json_object"}
    assert header(request.headers, "authorization") == "Bearer sk-test-judge"
    assert sleeps.delays == []


async def test_without_json_mode_no_response_format_and_no_key_is_sent_as_placeholder(
    server: FakeOpenAI,
) -> None:
    server.enqueue(ok("plain"))
    async with client_for(server, Sleeps()) as client:
        reply = await client.complete(MESSAGES, json_mode=False, temperature=0.3)
    assert reply.text == "plain"
    body = server.requests[0].body
    assert "response_format" not in body and "seed" not in body
    assert body["temperature"] == 0.3
    assert header(server.requests[0].headers, "authorization") == "Bearer unused"


async def test_429_then_500_then_success_retries_with_full_jitter(server: FakeOpenAI) -> None:
    server.enqueue(
        error_reply(429, "slow down", type="rate_limit_error"),
        error_reply(500, "boom", type="server_error"),
        ok(),
    )
    sleeps = Sleeps()
    async with client_for(server, sleeps, backoff_base_s=0.5, backoff_max_s=20.0) as client:
        reply = await client.complete(MESSAGES)
    assert reply.attempts == 3 and reply.text == VERDICT
    assert len(server.requests) == 3
    assert len(sleeps.delays) == 2
    # Full jitter: uniform in [0, min(max, base * 2**attempt)] for attempts 0 and 1 ...
    assert 0.0 <= sleeps.delays[0] <= 0.5
    assert 0.0 <= sleeps.delays[1] <= 1.0
    # ... drawn from the injected rng, in order.
    rng = random.Random(SEED)
    assert sleeps.delays == [rng.uniform(0, 0.5), rng.uniform(0, 1.0)]
    assert client.counts == {"calls": 1, "attempts": 3, "retries": 2, "failures": 0}


async def test_backoff_is_capped_at_backoff_max(server: FakeOpenAI) -> None:
    server.enqueue(*[error_reply(503, "down", type="server_error")] * 5)
    sleeps = Sleeps()
    async with client_for(server, sleeps, backoff_base_s=1.0, backoff_max_s=2.0) as client:
        with pytest.raises(JudgeCallError):
            await client.complete(MESSAGES)
    assert len(sleeps.delays) == 4
    assert all(0.0 <= d <= 2.0 for d in sleeps.delays)
    rng = random.Random(SEED)
    assert sleeps.delays == [rng.uniform(0, min(2.0, 2**a)) for a in range(4)]


async def test_retry_after_is_honored_and_capped(server: FakeOpenAI) -> None:
    server.enqueue(
        error_reply(429, "wait", type="rate_limit_error", headers={"retry-after": "3"}),
        error_reply(429, "wait long", type="rate_limit_error", headers={"retry-after": "600"}),
        error_reply(503, "wait ms", type="server_error", headers={"retry-after-ms": "250"}),
        ok(),
    )
    sleeps = Sleeps()
    async with client_for(server, sleeps, backoff_max_s=20.0) as client:
        reply = await client.complete(MESSAGES)
    assert reply.attempts == 4
    assert sleeps.delays == [3.0, 20.0, 0.25]


async def test_400_is_permanent_at_once(server: FakeOpenAI) -> None:
    server.enqueue(error_reply(400, "response_format unsupported", type="invalid_request_error"))
    server.enqueue(ok())  # never asked for
    sleeps = Sleeps()
    async with client_for(server, sleeps) as client:
        with pytest.raises(JudgeCallError) as caught:
            await client.complete(MESSAGES)
    assert caught.value.permanent is True
    assert caught.value.status == 400
    assert "response_format unsupported" in str(caught.value)
    assert "2+2" not in str(caught.value)  # the judged text is never quoted
    assert len(server.requests) == 1 and sleeps.delays == []


async def test_auth_error_is_permanent(server: FakeOpenAI) -> None:
    server.enqueue(error_reply(401, "bad key", type="invalid_request_error"))
    async with client_for(server, Sleeps()) as client:
        with pytest.raises(JudgeCallError) as caught:
            await client.complete(MESSAGES)
    assert (caught.value.permanent, caught.value.status) == (True, 401)


async def test_exhausted_attempts_are_not_permanent(server: FakeOpenAI) -> None:
    server.enqueue(*[error_reply(503, "overloaded", type="server_error")] * 3)
    sleeps = Sleeps()
    async with client_for(server, sleeps, max_attempts=3) as client:
        with pytest.raises(JudgeCallError) as caught:
            await client.complete(MESSAGES)
    assert caught.value.permanent is False
    assert caught.value.status == 503
    assert "3 attempts" in str(caught.value)
    assert len(server.requests) == 3 and len(sleeps.delays) == 2
    assert client.counts["failures"] == 1


async def test_connection_errors_are_retried_then_not_permanent() -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    sleeps = Sleeps()
    endpoint = JudgeEndpoint(base_url=closed, model="judge-model", max_attempts=2)
    async with JudgeClient(endpoint, rng=random.Random(SEED), sleep=sleeps) as client:
        with pytest.raises(JudgeCallError) as caught:
            await client.complete(MESSAGES)
    assert (caught.value.permanent, caught.value.status) == (False, None)
    assert len(sleeps.delays) == 1


async def test_timeouts_are_retried(server: FakeOpenAI) -> None:
    answers: list[Reply] = [ok()]

    def slow_first(_body: Any) -> Reply:
        if len(server.requests) == 1:
            time.sleep(0.4)  # the server's handler thread; the client gave up at 0.1 s
        return answers[0]

    server.set_responder("/v1/chat/completions", slow_first)
    sleeps = Sleeps()
    async with client_for(server, sleeps, timeout_s=0.1) as client:
        reply = await client.complete(MESSAGES)
    assert reply.attempts == 2 and len(sleeps.delays) == 1


async def test_reply_without_choices_is_permanent(server: FakeOpenAI) -> None:
    body = chat_completion(contents=[])
    server.enqueue(Reply(body=body))
    async with client_for(server, Sleeps()) as client:
        with pytest.raises(JudgeCallError) as caught:
            await client.complete(MESSAGES)
    assert caught.value.permanent is True


async def test_every_attempt_is_emitted_through_the_publisher(server: FakeOpenAI) -> None:
    publisher = Publisher(
        f"127.0.0.1:{free_port()}",
        "llmwatch.events",
        service="llmwatch-judge",
        producer_config=QUIET,
    )
    try:
        server.enqueue(
            error_reply(429, "slow down", type="rate_limit_error"),
            error_reply(502, "bad gateway", type="server_error"),
            ok(),
        )
        async with client_for(server, Sleeps(), publisher=publisher) as client:
            reply = await client.complete(MESSAGES)
            assert reply.attempts == 3
            stats = publisher.stats  # one snapshot: the SDK's thread moves queued to emitted
            assert stats.emitted + stats.queued == 3  # two failed attempts and the success
            server.enqueue(error_reply(400, "nope", type="invalid_request_error"))
            with pytest.raises(JudgeCallError):
                await client.complete(MESSAGES)
            stats = publisher.stats
            assert stats.emitted + stats.queued == 4
        assert publisher.service == "llmwatch-judge"
    finally:
        publisher.close(timeout=0.1)


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("base_url", "ftp://judge.local/v1", "ftp://judge.local/v1"),
        ("base_url", "localhost:8000", "localhost:8000"),
        ("model", " ", "' '"),
        ("timeout_s", 0, "0"),
        ("backoff_base_s", -1.0, "-1.0"),
        ("backoff_max_s", float("nan"), "nan"),
        ("max_attempts", 0, "0"),
    ],
)
def test_endpoint_validation_names_the_value(field: str, value: Any, shown: str) -> None:
    fields: dict[str, Any] = {"base_url": "http://127.0.0.1:8000/v1", "model": "m", field: value}
    with pytest.raises(ValueError, match=field) as caught:
        JudgeEndpoint(**fields)
    assert shown in str(caught.value)


def test_endpoint_repr_hides_the_key() -> None:
    endpoint = JudgeEndpoint(base_url="https://api.example.com/v1", model="m", api_key="sk-secret")
    assert "sk-secret" not in repr(endpoint)
