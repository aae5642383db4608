from __future__ import annotations

from typing import Any

import pytest

from sinks.routes import Route, decode_call_rows, default_routes
from sinks.schema import CALL_COLUMNS, DLQ_TABLE
from sinks.writer import DEFAULT_GROUP_ID, ClickHouseSink, SinkConfig
from streams.topics import TopicLayout


def test_defaults() -> None:
    config = SinkConfig(bootstrap="127.0.0.1:9092")
    settings = config.consumer_settings()
    assert config.group_id == DEFAULT_GROUP_ID == "llmwatch-sink"
    assert (config.batch_max_rows, config.flush_interval_s) == (10_000, 1.0)
    assert settings["enable.auto.commit"] is False
    assert settings["session.timeout.ms"] == 6000
    assert settings["heartbeat.interval.ms"] < settings["session.timeout.ms"]
    assert settings["auto.offset.reset"] == "earliest"


def test_extra_consumer_config_is_passed_through() -> None:
    extra = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "session.timeout.ms": 45000,
    }
    settings = SinkConfig(bootstrap="b:9092", consumer_config=extra).consumer_settings()
    assert {k: settings[k] for k in extra} == extra


@pytest.mark.parametrize("owned", ["enable.auto.commit", "group.id", "bootstrap.servers"])
def test_extra_consumer_config_cannot_override_the_guarantees(owned: str) -> None:
    with pytest.raises(ValueError, match=owned):
        SinkConfig(bootstrap="b:9092", consumer_config={owned: "x"})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"batch_max_rows": 0}, "batch_max_rows must be >= 1, got 0"),
        ({"flush_interval_s": 0.0}, "flush_interval_s must be > 0, got 0.0"),
        ({"retry_initial_s": 5.0, "retry_max_s": 1.0}, "got 5.0 and 1.0"),
        ({"database": "no-dashes"}, "'no-dashes'"),
    ],
)
def test_bad_config_values_are_named(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SinkConfig(bootstrap="b:9092", **fields)


def test_two_routes_into_one_table_must_agree_on_columns(ch_client: Any) -> None:
    layout = TopicLayout(prefix="p")
    routes = {
        **default_routes(layout),
        "p.more-calls": Route("llm_calls", decode_call_rows, CALL_COLUMNS[:3]),
    }
    with pytest.raises(ValueError, match=r"'p\.more-calls'"):
        ClickHouseSink(SinkConfig(bootstrap="b:9092", layout=layout), ch_client, routes)


def test_a_route_cannot_redefine_the_dead_letter_columns(ch_client: Any) -> None:
    routes = {"p.x": Route(DLQ_TABLE, decode_call_rows, ("dead_letter_id",))}
    with pytest.raises(ValueError, match=DLQ_TABLE):
        ClickHouseSink(SinkConfig(bootstrap="b:9092"), ch_client, routes)
