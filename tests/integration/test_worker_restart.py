"""SLO state survives a worker crash (issue 7, item 6), on real parts: Tansu, ``llmwatch worker``
subprocesses, the sink on chdb.

An incident burns an SLO fast; the worker fires, publishes its state, and is killed with SIGKILL while
the burn goes on. The restarted worker restores the state: it keeps the same alert open (no new
alert_id), counts every event once, and resolves that alert once traffic is healthy again, so
``llm_alerts FINAL`` holds exactly one firing and one resolved row. Also: the state topic reader
returns the newest record of its key, whatever the broker reports as the end. Times derive from now.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from llmwatch.broker import TansuBroker
from llmwatch.settings import Settings
from producers.events import LlmCallEvent
from producers.sdk import Publisher
from sinks.schema import qualified
from streams.admin import ensure_topics
from streams.slo.alerts import ALERTS_TABLE, AlertEvent, decode_alert
from streams.state import decode_state, read_latest_state
from tests.integration.kafka_io import QUIET, committed, produce
from tests.integration.pipeline_harness import (
    ProcessGroup,
    TopicWatcher,
    pipeline_settings,
    sink_thread,
    wait_until,
)

SLO: Final = "restart-availability"
RULE: Final = "fast"
SERVICE: Final = "restart-bot"
# Burn rate 2 over 5 min and 2 min: fires when more than 20% of calls fail. A 2-minute short window
# keeps the burst inside it for at least a minute, whatever the minute boundaries.
SLOS: Final = f"""
version: 1
slos:
  - name: {SLO}
    objective: 0.9
    period: 1h
    sli: {{type: availability}}
    selector: {{service: {SERVICE}}}
    rules:
      - {{name: {RULE}, long_window: 5m, short_window: 2m, burn_rate: 2, severity: page}}
"""
ALERT_INTERVAL_S: Final = 0.5
BURST: Final = 50  # failing calls before the crash, and again after it
HEALTHY: Final = 1_000
WAIT_S: Final = 90.0
QUIET_AFTER_RESTART_S: Final = 4.0  # eight evaluations of the restored worker


class AlertsReader:
    """Reads the alerts topic from the beginning, without a consumer group."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": settings.bootstrap, "group.id": f"r-{uuid.uuid4().hex}", **QUIET}
        )
        self._consumer.assign([TopicPartition(settings.layout.alerts, 0, OFFSET_BEGINNING)])
        self.alerts: list[AlertEvent] = []
        self.end = 0

    def poll(self) -> list[AlertEvent]:
        while messages := self._consumer.consume(num_messages=100, timeout=0.1):
            for message in messages:
                if message.error() is None:
                    self.end = message.offset() + 1
                    if message.key() != b"status":
                        self.alerts.append(decode_alert(message.value()))
        return [a for a in self.alerts if a.slo == SLO]

    def close(self) -> None:
        self._consumer.close()


def _event(failing: bool) -> LlmCallEvent:
    now = datetime.now(UTC)
    return LlmCallEvent(
        start_time=now - timedelta(milliseconds=300),
        end_time=now,
        service=SERVICE,
        provider_name="openai",
        request_model="gpt-4o-mini",
        http_status=500 if failing else None,
    )


def _emit(publisher: Publisher, events: list[LlmCallEvent]) -> set[str]:
    assert all(publisher.emit(event) for event in events)
    assert publisher.flush(30.0)
    return {event.event_id for event in events}


def _counted(settings: Settings) -> int:
    """Calls in the SLO's minute buckets of the worker's latest published state."""
    value = read_latest_state(
        settings.bootstrap, settings.layout.state, settings.worker_id, idle_s=0.3
    )
    if value is None:
        return 0
    minutes = decode_state(value, settings.worker_id).body["evaluator"]["slos"][SLO]["minutes"]
    return sum(bucket[2] for bucket in minutes)


@pytest.fixture()
def settings(
    broker: TansuBroker,
    topic_prefix: str,
    tmp_path: Path,
    chdb_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    slo_file = tmp_path / "slos.yaml"
    slo_file.write_text(SLOS, encoding="utf-8")
    # Worker subprocesses inherit the environment (ChildProcess adds the harness's settings to it).
    monkeypatch.setenv("LLMWATCH_SLO_FILE", str(slo_file))
    monkeypatch.setenv("LLMWATCH_ALERT_INTERVAL_S", str(ALERT_INTERVAL_S))
    settings = pipeline_settings(
        broker.bootstrap, topic_prefix, tmp_path / "data", clickhouse_dsn=chdb_dsn
    )
    ensure_topics(broker.bootstrap, settings.layout.specs())
    return settings


@pytest.fixture()
def publisher(settings: Settings) -> Iterator[Publisher]:
    publishing = Publisher(settings.bootstrap, settings.layout.events, producer_config=QUIET)
    try:
        yield publishing
    finally:
        publishing.close(timeout=5.0)


def test_an_incident_spanning_a_worker_crash_keeps_its_alert_and_resolves_once(
    settings: Settings, processes: ProcessGroup, ch_client: Any, publisher: Publisher
) -> None:
    reader, watcher = AlertsReader(settings), TopicWatcher(settings.bootstrap, settings.layout)
    try:
        worker = processes.start("worker", settings)
        with sink_thread(settings, ch_client):
            _emit(publisher, [_event(failing=True) for _ in range(BURST)])
            wait_until(lambda: bool(reader.poll()), "the alert to fire", WAIT_S, processes)
            (fired,) = reader.poll()
            wait_until(
                lambda: _counted(settings) == BURST, "the state with the burst", WAIT_S, processes
            )
            processes.kill(worker)

            after_crash = _emit(publisher, [_event(failing=True) for _ in range(BURST)])
            processes.start("worker", settings)

            def seen() -> bool:
                watcher.poll()
                return after_crash <= watcher.event_ids

            wait_until(seen, "the restarted worker to process the burst", WAIT_S, processes)
            time.sleep(QUIET_AFTER_RESTART_S)
            assert [(a.alert_id, a.state) for a in reader.poll()] == [(fired.alert_id, "firing")]
            assert _counted(settings) == 2 * BURST  # restored, and nothing counted twice

            _emit(publisher, [_event(failing=False) for _ in range(HEALTHY)])
            wait_until(lambda: len(reader.poll()) == 2, "the alert to resolve", WAIT_S, processes)
            end = {(settings.layout.alerts, 0): reader.end}
            wait_until(
                lambda: committed(settings.bootstrap, settings.sink_group, list(end)) == end,
                "the sink to store the alerts",
                WAIT_S,
                processes,
            )
    finally:
        reader.close()
        watcher.close()
    rows = ch_client.query(
        f"SELECT alert_id, state FROM {qualified(ALERTS_TABLE, settings.database)} FINAL "
        f"WHERE slo = '{SLO}' ORDER BY state"
    ).result_rows
    assert [tuple(row) for row in rows] == [
        (fired.alert_id, "firing"),
        (fired.alert_id, "resolved"),
    ]


def test_the_state_reader_returns_the_newest_record_of_its_key(
    broker: TansuBroker, topic_prefix: str
) -> None:
    settings = pipeline_settings(broker.bootstrap, topic_prefix, Path("/nonexistent"))
    topic = settings.layout.state
    ensure_topics(broker.bootstrap, settings.layout.specs())
    assert read_latest_state(broker.bootstrap, topic, "w", idle_s=0.3) is None  # empty topic
    # Several records per produce call: Tansu's reported end is wrong after multi-record batches.
    produce(broker.bootstrap, [(topic, 0, f"old-{i}".encode()) for i in range(5)])
    _produce_keyed(broker.bootstrap, topic, [(b"w", b"first"), (b"x", b"other"), (b"w", b"last")])
    _produce_keyed(broker.bootstrap, topic, [(b"x", b"other-2")] * 3)
    assert read_latest_state(broker.bootstrap, topic, "w", idle_s=0.3) == b"last"
    assert read_latest_state(broker.bootstrap, topic, "nobody", idle_s=0.3) is None
    missing = f"{topic_prefix}.no-such-topic"
    assert read_latest_state(broker.bootstrap, missing, "w", idle_s=0.3, timeout_s=5) is None


def _produce_keyed(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, **QUIET})
    for key, value in records:
        producer.produce(topic, value, key=key, partition=0)
    assert producer.flush(15) == 0
