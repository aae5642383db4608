"""PublisherConfig validation and the derived producer configuration."""

from __future__ import annotations

from typing import Any

import pytest

from producers.events import TextCapture
from producers.sdk import Publisher, PublisherConfig
from producers.sdk.config import COMPRESSION, DEFAULT_SERVICE, MAX_MESSAGE_BYTES
from streams.topics import MAX_RECORD_BYTES


def test_record_limit_matches_the_topic_layout() -> None:
    assert MAX_MESSAGE_BYTES == MAX_RECORD_BYTES


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bootstrap", " "),
        ("topic", ""),
        ("topic", "has space"),
        ("service", ""),
        ("environment", " "),
        ("queue_max_events", 0),
        ("batch_max_events", 0),
        ("batch_max_bytes", 10),
        ("batch_max_bytes", MAX_MESSAGE_BYTES + 1),
        ("batch_max_bytes", MAX_MESSAGE_BYTES),  # no room for librdkafka's record framing and key
        ("queue_max_bytes", 0),
        ("queue_max_bytes", -1),
        ("queue_max_bytes", 899_999),  # under batch_max_bytes: a full batch could never be held
        ("queue_max_bytes", float("nan")),
        ("flush_interval_s", -0.1),
        ("buffer_full_timeout_s", 0.0),
        ("shutdown_timeout_s", -1.0),
    ],
)
def test_bad_settings_raise_naming_the_value(field: str, value: Any) -> None:
    kwargs: dict[str, Any] = {"bootstrap": "localhost:9092", "topic": "t", field: value}
    with pytest.raises(ValueError, match=field) as info:
        PublisherConfig(**kwargs)
    assert repr(value) in str(info.value)


def test_producer_defaults_and_overrides() -> None:
    config = PublisherConfig(
        "b:9092", "t", producer_config={"linger.ms": 50, "security.protocol": "SASL_SSL"}
    )
    kafka = config.kafka_config()
    assert kafka["enable.idempotence"] is True
    assert kafka["acks"] == "all"
    assert kafka["compression.type"] == COMPRESSION
    assert kafka["message.max.bytes"] == MAX_MESSAGE_BYTES
    assert (kafka["linger.ms"], kafka["security.protocol"]) == (50, "SASL_SSL")


def test_producer_config_is_frozen_copy() -> None:
    given = {"linger.ms": 1}
    config = PublisherConfig("b:9092", "t", producer_config=given)
    given["linger.ms"] = 2
    assert config.producer_config["linger.ms"] == 1
    with pytest.raises(TypeError):
        config.producer_config["linger.ms"] = 3  # type: ignore[index]


def test_default_service_follows_otel() -> None:
    assert PublisherConfig("b:9092", "t").service_name.startswith(DEFAULT_SERVICE)
    assert PublisherConfig("b:9092", "t", service="api").service_name == "api"


def test_invalid_producer_config_fails_at_construction() -> None:
    with pytest.raises(ValueError, match=r"no\.such\.setting"):
        Publisher("127.0.0.1:1", "t", producer_config={"no.such.setting": 1})


def test_from_config_round_trips() -> None:
    config = PublisherConfig("127.0.0.1:1", "t", service="api", text_capture=TextCapture.STORE)
    publisher = Publisher.from_config(config)
    try:
        assert publisher.config == config
        assert publisher.service == "api"
    finally:
        publisher.close(timeout=0.1)
