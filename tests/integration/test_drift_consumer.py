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


def test_a_new_topic_in_one_service_is_flagged_on_that_scope_only(
    broker: Any, layout: TopicLayout, now_ms: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Real text records (our topic generator) embedded with the drift encoder; support-bot's last
    closed window sends 25% of its prompts to a topic it never had."""
    import random
    from datetime import UTC, datetime

    from producers.simulator.topics import DEFAULT_TOPIC_MIX, HELD_BACK_TOPICS, TopicTexts
    from streams.drift.embedding_monitor import ENCODER_MAX_TOKENS, EmbeddingDriftConfig
    from streams.storage import DRIFT_TOPICS_TABLE
    from streams.text.embeddings import load_encoder

    texts, rng = TopicTexts(5), random.Random(5)
    shifted = DEFAULT_TOPIC_MIX.shifted("support-bot", HELD_BACK_TOPICS[1], 0.25)
    origin = now_ms - now_ms % WINDOW_MS - 6 * WINDOW_MS
    records = []
    for window in range(6):  # 0-2 reference, 3 compared, 4 shifted, 5 closes 4
        for service in ("support-bot", "code-agent"):
            mix = shifted if window == 4 and service == "support-bot" else DEFAULT_TOPIC_MIX
            for index in range(130 if window < 5 else 2):
                _topic, prompt = texts.draw(service, mix)
                start = origin + window * WINDOW_MS + rng.randrange(WINDOW_MS)
                record = {
                    "text_record": 1, "capture": "analyze", "event_id": f"{service}-{window}-{index}",
                    "service": service, "span_kind": "llm", "input_text": prompt,
                    "start_time": datetime.fromtimestamp(start / 1000, UTC).isoformat(),
                }  # fmt: skip
                records.append((layout.texts, index % 2, orjson.dumps(record)))
    produce(broker.bootstrap, records)
    embedding = EmbeddingDriftConfig(
        window_ms=WINDOW_MS, reference_windows=3, grace_ms=5_000, min_samples=100, capacity=200
    )
    config = DriftConsumerConfig(broker.bootstrap, layout, CONFIG, embedding=embedding)
    models = tmp_path_factory.mktemp("models")
    encoder = load_encoder(ENCODER_MAX_TOKENS, backend="onnx-int8", cache_dir=models)
    consumer = DriftConsumer(config, encoder=encoder)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()

    def both(values: list[bytes]) -> bool:
        starts = {r["window_start"] for v in values for r in decode_drift(v)[DRIFT_TABLE]}
        return len(starts) >= 2

    try:
        values = read_until(broker.bootstrap, layout.drift, 1, both, timeout_s=120)
        alerts = read_until(broker.bootstrap, layout.alerts, 1, lambda v: len(v) >= 1, timeout_s=10)
    finally:
        stop.set()
        thread.join(15)
    decoded = [decode_drift(v) for v in values]
    rows = [r for d in decoded for r in d[DRIFT_TABLE]]
    flagged = {(r["window_start"], r["service"], r["feature"]) for r in rows if r["flagged"]}
    assert any(f in {"topics", "novel"} for _w, _s, f in flagged), rows
    assert all(w == origin + 4 * WINDOW_MS and s == "support-bot" for w, s, _f in flagged)
    topics = [t for d in decoded for t in d[DRIFT_TOPICS_TABLE]]
    novel = [
        t for t in topics
        if t["topic"] == -1 and t["service"] == "support-bot"
        and t["window_start"] == origin + 4 * WINDOW_MS
    ]  # fmt: skip
    assert len(novel) == 1 and novel[0]["current_share"] > 0.1
    assert novel[0]["examples"]
    *examples, nearest = novel[0]["examples"]
    assert examples and all(e.startswith("event support-bot-4-") for e in examples)
    assert nearest.startswith("nearest reference topic: ")
    assert consumer.counts["texts_embedded"] == len(records)  # each window fits its sample
    alert = orjson.loads(alerts[0])
    assert alert["rule"] == "drift" and "support-bot/llm/input" in alert["description"]
