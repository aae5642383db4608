"""``llmwatch drift baseline set`` on the real broker: calls and texts of the last minutes become a
saved baseline (shape counts, sampled vectors, no text), ``show`` prints it, and a drift consumer pins
it and compares with it; ``clear`` removes it."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from llmwatch.cli import app
from producers.simulator.topics import DEFAULT_TOPIC_MIX, TopicTexts
from streams.admin import ensure_topics
from streams.drift.baseline import MANIFEST, load_baseline
from streams.drift.consumer import DriftConsumer, DriftConsumerConfig
from streams.drift.embedding_monitor import EmbeddingDriftConfig
from streams.drift.monitor import DriftConfig
from streams.topics import TopicLayout
from tests.integration.kafka_io import produce
from tests.unit.streams.drift.test_monitor import WINDOW_MS, _calls


@pytest.fixture()
def layout(broker: Any, topic_prefix: str) -> TopicLayout:
    layout = TopicLayout(prefix=topic_prefix, partitions=2)
    ensure_topics(broker.bootstrap, layout.specs())
    return layout


def _publish(broker: Any, layout: TopicLayout, now_ms: int) -> None:
    texts, rng = TopicTexts(9), random.Random(9)
    records = []
    for index in range(240):
        _topic, prompt = texts.draw("support-bot", DEFAULT_TOPIC_MIX)
        start = now_ms - rng.randrange(4 * WINDOW_MS)
        doc = {
            "text_record": 1, "capture": "store", "event_id": f"b-{index}", "service": "support-bot",
            "span_kind": "llm", "input_text": prompt, "output_text": texts.answer(_topic),
            "start_time": datetime.fromtimestamp(start / 1000, UTC).isoformat(),
        }  # fmt: skip
        records.append((layout.texts, index % 2, orjson.dumps(doc)))
    calls = _calls(np.random.default_rng(9), now_ms - 4 * WINDOW_MS, 300)
    records += [(layout.calls, i % 2, orjson.dumps(c)) for i, c in enumerate(calls)]
    produce(broker.bootstrap, records)


def test_baseline_set_show_pin_and_clear(
    broker: Any, layout: TopicLayout, now_ms: int, tmp_path: Path
) -> None:
    _publish(broker, layout, now_ms)
    env = {
        "COLUMNS": "160",
        "LLMWATCH_BOOTSTRAP": broker.bootstrap,
        "LLMWATCH_TOPIC_PREFIX": layout.prefix,
        "LLMWATCH_DRIFT_SAMPLE_SIZE": "100",
    }
    runner = CliRunner()
    result = runner.invoke(
        app, ["drift", "baseline", "set", "--from", "now-10m", "--data-dir", str(tmp_path)], env=env
    )
    assert result.exit_code == 0, result.output
    assert "support-bot/llm/input" in result.output and "support-bot/llm/output" in result.output
    folder = tmp_path / "drift-baseline"
    baseline = load_baseline(folder, 100)
    assert baseline is not None
    assert sum(baseline.shape.calls.values()) == 300
    assert {len(s) for s in baseline.texts.values()} == {100}  # the bottom-k sample per scope
    assert all(s.offered == 240 for s in baseline.texts.values())
    stored = b"".join(p.read_bytes() for p in folder.iterdir())
    assert b"support-bot" in stored and b"inbox" not in stored.lower()  # ids and vectors, no text

    shown = runner.invoke(app, ["drift", "baseline", "show", "--data-dir", str(tmp_path)], env=env)
    assert shown.exit_code == 0 and "support-bot/llm/input" in shown.output

    assert baseline.encoder == "onnx-int8" and "encoder: onnx-int8" in result.output
    embedding = EmbeddingDriftConfig(window_ms=WINDOW_MS, min_samples=50, capacity=100)

    def consumer_with(encoder_name: str) -> DriftConsumer:
        config = DriftConsumerConfig(
            broker.bootstrap, layout, DriftConfig(window_ms=WINDOW_MS), embedding=embedding,
            baseline_dir=folder, encoder_name=encoder_name,
        )  # fmt: skip
        return DriftConsumer(config, encoder=_NoEncoder())

    other = consumer_with("torch")  # vectors of another encoder are not comparable: refused
    other._check_baseline()
    assert other.monitor.pinned is None and other.texts is not None and other.texts.pinned is None
    consumer = consumer_with("onnx-int8")
    consumer._check_baseline()
    assert consumer.monitor.pinned is not None and consumer.texts is not None
    assert consumer.texts.pinned is not None and set(consumer.texts.pinned) == set(baseline.texts)

    cleared = runner.invoke(
        app, ["drift", "baseline", "clear", "--data-dir", str(tmp_path)], env=env
    )
    assert cleared.exit_code == 0 and "baseline cleared" in cleared.output
    assert not (folder / MANIFEST).exists()
    consumer._check_baseline()
    assert consumer.monitor.pinned is None and consumer.texts.pinned is None


def test_a_bad_period_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["drift", "baseline", "set", "--from", "ten minutes ago", "--data-dir", str(tmp_path)],
        env={"COLUMNS": "160"},
    )
    assert result.exit_code == 2 and "'ten minutes ago'" in result.output


class _NoEncoder:
    """The consumer needs an encoder to be built; these checks never embed."""

    def encode(self, texts: Any, batch_size: int = 64) -> np.ndarray:
        raise AssertionError("nothing should be embedded here")
