"""``llmwatch drift`` on the real broker: calls of past windows on the calls topic, one scope's answers
get 40% longer in the last closed window; the monitor writes llm_drift records for every compared
window and a drift alert for that scope and feature only."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest

from streams.admin import ensure_topics
from streams.drift.consumer import DriftConsumer, DriftConsumerConfig
from streams.drift.monitor import DriftConfig
from streams.drift.records import decode_drift
from streams.storage import DRIFT_TABLE
from streams.topics import TopicLayout
from tests.integration.kafka_io import produce, read_until
from tests.unit.streams.drift.test_monitor import WINDOW_MS, _calls


def _both_windows(values: list[bytes]) -> bool:
    return len({row["window_start"] for v in values for row in decode_drift(v)[DRIFT_TABLE]}) >= 2


CONFIG = DriftConfig(window_ms=WINDOW_MS, reference_windows=3, grace_ms=5_000, min_samples=100)


@pytest.fixture()
def layout(broker: Any, topic_prefix: str) -> TopicLayout:
    layout = TopicLayout(prefix=topic_prefix, partitions=2)
    ensure_topics(broker.bootstrap, layout.specs())
    return layout


def test_a_shift_in_the_last_window_raises_one_alert(
    broker: Any, layout: TopicLayout, now_ms: int
) -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    origin = now_ms - now_ms % WINDOW_MS - 5 * WINDOW_MS  # inside the monitor's look-back
    calls = []
    for index in range(6):  # windows 0-2: reference; 3: compared; 4: shifted; 5: closes 4
        calls += _calls(rng, origin + index * WINDOW_MS, 300, 1.4 if index == 4 else 1.0)
    records = [(layout.calls, i % 2, orjson.dumps(c)) for i, c in enumerate(calls)]
    produce(broker.bootstrap, records)

    consumer = DriftConsumer(DriftConsumerConfig(broker.bootstrap, layout, CONFIG))
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        values = read_until(broker.bootstrap, layout.drift, 1, _both_windows, timeout_s=60)
        alerts = read_until(broker.bootstrap, layout.alerts, 1, lambda v: len(v) >= 1, timeout_s=10)
    finally:
        stop.set()
        thread.join(15)
    windows = [decode_drift(v)[DRIFT_TABLE] for v in values]
    assert sorted({row["window_start"] for rows in windows for row in rows}) == [
        origin + 3 * WINDOW_MS, origin + 4 * WINDOW_MS,
    ]  # fmt: skip
    flagged = {(r["window_start"], r["feature"]) for rows in windows for r in rows if r["flagged"]}
    assert (origin + 4 * WINDOW_MS, "output_tokens") in flagged
    assert all(start == origin + 4 * WINDOW_MS for start, _feature in flagged)
    alert = orjson.loads(alerts[0])
    assert (
        alert["rule"] == "drift"
        and "output_tokens of support-bot/gpt-4o-mini/llm" in alert["description"]
    )
