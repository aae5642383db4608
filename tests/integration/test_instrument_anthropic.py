"""An instrumented Anthropic client with a real Publisher on the Tansu broker: a stream and a plain call
(against the local fake Messages API) arrive on the events topic as valid ``LlmCallEvent``s."""

from __future__ import annotations

import time
from typing import Any

import anthropic
from anthropic.types import MessageParam
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from producers.events import LlmCallEvent
from producers.sdk import Publisher
from producers.wire import SplitRecord, split_record
from streams.topics import TopicLayout
from tests.fakes.anthropic_server import FakeAnthropic, message, stream
from tests.integration.kafka_io import QUIET

PROMPT: list[MessageParam] = [{"role": "user", "content": "Name one moon of Jupiter."}]


def _read_events(bootstrap: str, topic: str, partitions: int, expect: int) -> list[LlmCallEvent]:
    """Every event in ``topic`` (batch envelopes split), read by assignment until ``expect`` arrive."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "reader", "fetch.wait.max.ms": 50, **QUIET}
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    events: list[LlmCallEvent] = []
    deadline = time.monotonic() + 60
    try:
        while len(events) < expect and time.monotonic() < deadline:
            record = consumer.poll(0.1)
            if record is None or record.error() is not None:
                continue
            split = split_record(record.value())
            assert isinstance(split, SplitRecord), split
            events += [LlmCallEvent.model_validate(raw) for raw in split.events]
    finally:
        consumer.close()
    return events


def test_a_stream_and_a_plain_call_arrive_as_valid_events(broker: Any, layout: TopicLayout) -> None:
    with (
        FakeAnthropic() as fake,
        Publisher(broker.bootstrap, layout.events, service="itest", producer_config=QUIET) as sdk,
    ):
        fake.push(
            stream(["Io", " is one."], msg_id="msg_01ItStream", cache_read=64),
            message("Europa.", msg_id="msg_01ItPlain", cache_creation=32),
        )
        client = sdk.instrument(
            anthropic.Anthropic(api_key="k", base_url=fake.base_url, max_retries=0)
        )
        with client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=PROMPT) as s:
            assert s.get_final_text() == "Io is one."
        reply = client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=PROMPT)
        assert reply.id == "msg_01ItPlain"
        assert sdk.flush(30)
        client.close()

    events = {
        e.response_id: e
        for e in _read_events(broker.bootstrap, layout.events, layout.partitions, expect=2)
    }
    assert set(events) == {"msg_01ItStream", "msg_01ItPlain"}
    streamed, plain = events["msg_01ItStream"], events["msg_01ItPlain"]
    for event in (streamed, plain):
        assert event.service == "itest" and event.provider_name == "anthropic"
        assert event.request_model == "claude-haiku-4-5" and event.status == "ok"
        assert event.server_address == fake.address
        assert event.ratelimit_remaining_requests == 49
        assert event.input_text is None and event.output_text is None  # text capture is off
    assert streamed.stream and streamed.time_to_first_token_ms is not None
    assert (streamed.input_tokens, streamed.cache_read_input_tokens) == (25 + 64, 64)
    assert streamed.output_tokens == 3 and streamed.finish_reasons == ["end_turn"]
    assert not plain.stream and plain.time_to_first_token_ms is None
    assert (plain.input_tokens, plain.cache_creation_input_tokens) == (25 + 32, 32)
    assert plain.output_tokens == 9
