"""The sink's time-based flush counts from when the oldest record arrived, not from when it was
read: records that queued up in the consumer during an insert must not wait a whole interval more."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_NOT_AVAILABLE, Message

from sinks.writer import MAX_POLL_WAIT_S, ClickHouseSink, SinkConfig
from streams.topics import TopicLayout

EMPTY_CALLS = orjson.dumps({"llmwatch_batch": 1, "events": []})  # consumed, no rows
FLUSH_S = 0.25


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _message(layout: TopicLayout, offset: int, age_s: float | None) -> Message:
    if age_s is None:
        stamp = (TIMESTAMP_NOT_AVAILABLE, 0)
    else:
        stamp = (TIMESTAMP_CREATE_TIME, int((time.time() - age_s) * 1000))
    return Message(topic=layout.calls, partition=0, offset=offset, value=EMPTY_CALLS,
                   timestamp=stamp)  # fmt: skip


@pytest.fixture()
def sink(ch_client: Any) -> tuple[ClickHouseSink, FakeClock, TopicLayout]:
    layout = TopicLayout(prefix="p")
    clock = FakeClock()
    config = SinkConfig(bootstrap="b:9092", layout=layout, flush_interval_s=FLUSH_S)
    return ClickHouseSink(config, ch_client, clock=clock), clock, layout


@pytest.mark.parametrize(
    ("age_s", "arrived"),
    [
        (0.1, 104.9),  # waited 0.1 s in the consumer's queue
        (60.0, 100.0),  # a backlog: counted from the cycle's start, not a minute ago
        (-30.0, 105.0),  # a producer clock ahead of ours: counted from now
        (None, 105.0),  # no timestamp: counted from now
    ],
)
def test_arrival_is_the_record_timestamp_within_the_current_cycle(
    sink: tuple[ClickHouseSink, FakeClock, TopicLayout], age_s: float | None, arrived: float
) -> None:
    writer, clock, layout = sink
    clock.now = 105.0  # the sink started (its cycle began) at 100.0
    assert writer._arrival(_message(layout, 0, age_s)) == pytest.approx(arrived, abs=0.02)


def test_the_poll_never_waits_past_the_flush_deadline(
    sink: tuple[ClickHouseSink, FakeClock, TopicLayout],
) -> None:
    writer, clock, layout = sink
    assert writer._poll_wait() == MAX_POLL_WAIT_S  # nothing pending
    clock.now = 105.0
    writer._handle(_message(layout, 0, 0.2))  # arrived 0.2 s ago: due in 0.05 s
    assert writer._poll_wait() == pytest.approx(FLUSH_S - 0.2, abs=0.02)
    clock.now += 0.1
    assert writer._poll_wait() == 0.0
    assert writer._flush_due()


def test_old_timestamps_cannot_start_flushes_more_than_once_per_interval(
    sink: tuple[ClickHouseSink, FakeClock, TopicLayout],
) -> None:
    writer, clock, layout = sink
    clock.now = 200.0
    writer._cycle_started = clock.now  # what a flush records when it begins
    writer._handle(_message(layout, 0, 60.0))  # a producer clock a minute behind
    assert not writer._flush_due()
    assert writer._poll_wait() == pytest.approx(MAX_POLL_WAIT_S)
    clock.now += FLUSH_S
    assert writer._flush_due()
