"""``llmwatch canary`` on the real broker: a slow canary is failed and rolled back through the topics,
the alert names the metrics, and a restarted analyzer does not roll back again (replay-safe)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pytest

from llmwatch.prompt_registry import append, read_registry
from producers.prompts.records import MoveAction, PromptVersionRecord, decode_registry_record
from producers.prompts.registry import RegistryState
from streams.admin import ensure_topics
from streams.prompts.consumer import CanaryConfig, CanaryConsumer
from streams.prompts.policy import DEFAULT_POLICY_FILE, load_policy
from streams.prompts.records import decode_canary
from streams.storage import CANARY_VERDICTS_TABLE
from streams.topics import TopicLayout
from tests.integration.kafka_io import produce, read_until

NAME = "support-bot"


@pytest.fixture()
def layout(broker: Any, topic_prefix: str) -> TopicLayout:
    layout = TopicLayout(prefix=topic_prefix, partitions=2)
    ensure_topics(broker.bootstrap, layout.specs())
    return layout


def _seed(bootstrap: str, layout: TopicLayout, now_ms: int) -> tuple[str, str]:
    state = RegistryState()
    v7 = PromptVersionRecord.create(name=NAME, template="v7 {{ q }}", created_at_ms=now_ms)
    v8 = PromptVersionRecord.create(name=NAME, template="v8 {{ q }}", created_at_ms=now_ms + 1)
    for record in (v7, v8):
        append(bootstrap, layout.prompts, record)
        state.apply(record)
    for ref, weight in (("1", 100), ("2", 10)):
        move = state.plan_label(
            NAME, ref, "production", weight=weight, moved_by="test", reason="", now_ms=now_ms
        )
        append(bootstrap, layout.prompts, move)
        state.apply(move)
    return v7.version, v8.version


def _calls(v7: str, v8: str, n: int, start_ms: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        canary = rng.random() < 0.1
        slow = 2.0 if canary else 1.0
        rows.append(
            orjson.dumps(
                {
                    "prompt_name": NAME,
                    "prompt_version": v8 if canary else v7,
                    "start_time": start_ms + i,
                    "duration_ms": float(rng.lognormal(np.log(800), 0.5) * slow),
                    "status": "ok",
                    "http_status": 200,
                    "cost_usd": float(rng.lognormal(np.log(0.002), 0.5) * slow),
                    "output_tokens": 200,
                }
            )
        )
    return rows


@pytest.fixture()
def running(broker: Any, layout: TopicLayout) -> Iterator[Any]:
    started: list[tuple[CanaryConsumer, threading.Thread, threading.Event]] = []

    def start() -> CanaryConsumer:
        config = CanaryConfig(broker.bootstrap, layout, load_policy(DEFAULT_POLICY_FILE))
        consumer, stop = CanaryConsumer(config), threading.Event()
        thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
        thread.start()
        started.append((consumer, thread, stop))
        return consumer

    yield start
    for _consumer, thread, stop in started:
        stop.set()
        thread.join(15)


def _wait(predicate: Any, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_slow_canary_is_rolled_back_once_through_the_topics(
    broker, layout, running, now_ms
) -> None:
    v7, v8 = _seed(broker.bootstrap, layout, now_ms)
    first = running()
    assert _wait(lambda: first.analyzer.active == 1), "the analyzer never saw the canary"
    produce(
        broker.bootstrap,
        [(layout.calls, i % 2, v) for i, v in enumerate(_calls(v7, v8, 2_000, now_ms + 100, 1))],
    )

    verdicts = read_until(broker.bootstrap, layout.canary, 1, lambda values: len(values) >= 1)
    (verdict,) = decode_canary(verdicts[0])[CANARY_VERDICTS_TABLE]
    assert verdict["verdict"] == "fail" and verdict["action"] == "rolled_back"
    assert "latency_p95_ms" in verdict["failed_metrics"]

    state = read_registry(broker.bootstrap, layout.prompts)
    current = state.label(NAME, "production")
    assert current is not None and current.action is MoveAction.AUTO_ROLLBACK
    assert [(a.version, a.weight) for a in current.arms] == [(v7, 100)]
    assert "latency_p95_ms" in current.reason and current.moved_by == "llmwatch-canary"

    alerts = read_until(broker.bootstrap, layout.alerts, 1, lambda values: len(values) >= 1)
    alert = orjson.loads(alerts[0])
    assert alert["state"] == "firing" and "latency_p95_ms" in alert["description"]

    # A restarted analyzer replays the registry (rollback included) and the calls: nothing to redo.
    second = running()
    assert _wait(lambda: second.counts["records"] >= 4)
    time.sleep(2.0)
    moves = [
        decode_registry_record(v)
        for v in read_until(
            broker.bootstrap, layout.prompts, 1, lambda values: len(values) >= 5, 10
        )
    ]
    assert sum(getattr(m, "action", None) is MoveAction.AUTO_ROLLBACK for m in moves) == 1
    assert second.analyzer.active == 0 and second.counts["rollbacks"] == 0
