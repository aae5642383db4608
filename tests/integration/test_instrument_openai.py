"""An instrumented real ``openai`` client with a real Publisher on the Tansu broker: a plain call and a
stream (answered by the local fake API) arrive on the events topic as valid ``LlmCallEvent``s."""

from __future__ import annotations

import time
import uuid
from typing import Any

import openai
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from producers.events import LlmCallEvent
from producers.sdk import Publisher
from producers.wire import SplitRecord, split_record
from streams.topics import TopicLayout
from tests.fakes.openai_server import (
    DEFAULT_REMAINING_REQUESTS,
    FakeOpenAI,
    Reply,
    chat_chunks,
    chat_completion,
    sse_reply,
)
from tests.integration.kafka_io import QUIET


def _events(bootstrap: str, topic: str, expect: int, timeout_s: float = 60.0) -> list[LlmCallEvent]:
    """Every event on ``topic`` from the start (decoded from the batch envelopes), reading on briefly
    after ``expect`` arrived to catch duplicates."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex}", **QUIET}
    )
    found: list[LlmCallEvent] = []
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + timeout_s
        quiet_until: float | None = None
        while time.monotonic() < (quiet_until or deadline):
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            record = split_record(message.value())
            assert isinstance(record, SplitRecord), record
            found += [LlmCallEvent.model_validate(event) for event in record.events]
            if len(found) >= expect and quiet_until is None:
                quiet_until = time.monotonic() + 0.3
    finally:
        consumer.close()
    return found


def test_instrumented_calls_arrive_as_valid_events(broker: Any, layout: TopicLayout) -> None:
    with (
        FakeOpenAI() as server,
        Publisher(
            broker.bootstrap, layout.events, service="itest-openai", producer_config=QUIET
        ) as publisher,
    ):
        client = publisher.instrument(
            openai.OpenAI(api_key="sk-test", base_url=server.base_url, max_retries=0),
            stream_usage=True,
        )
        server.enqueue(
            Reply(body=chat_completion(id="chatcmpl-plain", prompt_tokens=21, completion_tokens=9)),
            sse_reply(chat_chunks(["Hel", "lo"], id="chatcmpl-stream", usage=(14, 2, 8, 0))),
        )
        messages: Any = [{"role": "user", "content": "Say hello."}]
        plain = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        assert plain.id == "chatcmpl-plain"
        pieces = [
            c.choices[0].delta.content
            for c in client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, stream=True
            )
            if c.choices and c.choices[0].delta.content
        ]
        assert pieces == ["Hel", "lo"]
        assert publisher.flush(30)
        assert publisher.stats.delivered == 2

    events = {e.response_id: e for e in _events(broker.bootstrap, layout.events, expect=2)}
    assert set(events) == {"chatcmpl-plain", "chatcmpl-stream"}
    first, streamed = events["chatcmpl-plain"], events["chatcmpl-stream"]
    for event in (first, streamed):
        assert (event.service, event.provider_name, event.operation_name) == (
            "itest-openai",
            "openai_compatible",
            "chat",
        )
        assert event.server_address == f"127.0.0.1:{server.port}" and event.status == "ok"
        assert event.ratelimit_remaining_requests == DEFAULT_REMAINING_REQUESTS
        assert event.input_text is None  # the publisher captures no text
    assert (first.stream, first.input_tokens, first.output_tokens) == (False, 21, 9)
    assert (streamed.stream, streamed.input_tokens, streamed.cache_read_input_tokens) == (
        True,
        14,
        8,
    )
    assert streamed.time_to_first_token_ms is not None
    assert streamed.time_to_first_token_ms <= streamed.duration_ms + 1.0
