"""Embedding drift over event-time windows: only texts entering a sample are offered for embedding,
windows close on the watermark, the shifted scope alone is flagged, a replay in another order gives the
same rows, sampling rates and the store-only examples hold, and a pinned baseline is used."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from producers.events import TextCapture
from producers.texts import TextRecord
from streams.drift.baseline import Baseline, clear_baseline, load_baseline, save_baseline
from streams.drift.embedding_monitor import EmbeddingDriftConfig, EmbeddingDriftMonitor
from streams.drift.monitor import DRIFT_FIELDS
from streams.drift.records import DRIFT_TOPIC_FIELDS
from streams.drift.shape import ShapeWindow
from tests.unit.streams.drift.vectors import cloud, directions

WINDOW_MS = 60_000
CONFIG = EmbeddingDriftConfig(
    window_ms=WINDOW_MS, reference_windows=3, grace_ms=5_000, min_samples=100, capacity=200,
    topics=6,
)  # fmt: skip
CENTERS = directions(10, seed=3)
TOPIC = {
    name: CENTERS[i * 3 : i * 3 + 3] for i, name in enumerate(("support-bot", "search", "new"))
}
Texts = list[tuple[TextRecord, np.ndarray]]


def _texts(
    rng: np.random.Generator, origin: int, window: int, n: int, shift_service: str | None, tag: str
) -> Texts:
    out = []
    for service in ("support-bot", "search"):
        new = int(0.3 * n) if service == shift_service else 0
        vectors = np.concatenate(
            [cloud(rng, TOPIC[service], n - new), cloud(rng, TOPIC["new"], new)]
        )
        times = rng.integers(origin + window * WINDOW_MS, origin + (window + 1) * WINDOW_MS, n)
        for index, (vector, start) in enumerate(zip(vectors, times, strict=True)):
            record = TextRecord(
                capture=TextCapture.STORE if index % 2 else TextCapture.ANALYZE,
                event_id=f"{tag}-{service}-{window}-{index}",
                service=service,
                start_time=datetime.fromtimestamp(int(start) / 1000, UTC),
                input_text=f"text {index}",
            )
            out.append((record, vector))
    return out


def _feed(monitor: EmbeddingDriftMonitor, texts: Texts) -> tuple[list[Any], list[Any], int]:
    """Offer in polls of 100, embed what is asked for (the vectors are given), close what is due."""
    vectors = {record.event_id: vector for record, vector in texts}
    rows: list[Any] = []
    topics: list[Any] = []
    embedded = 0
    for offset in range(0, len(texts), 100):
        pending = [p for record, _v in texts[offset : offset + 100] for p in monitor.offer(record)]
        batch = np.stack([vectors[p.event_id] for p in pending]) if pending else np.zeros((0, 384))
        monitor.accept(pending, batch, [f"redacted {p.event_id}" for p in pending])
        embedded += len(pending)
        found, shares = monitor.close_due(1)
        rows += found
        topics += shares
    return rows, topics, embedded


def _run(
    monitor: EmbeddingDriftMonitor, origin: int, seed: int, shift_at: int | None
) -> tuple[list[Any], list[Any], int]:
    rng = np.random.default_rng(seed)
    texts: Texts = []
    for window in range(6):
        shifted = "support-bot" if shift_at is not None and window >= shift_at else None
        part = _texts(rng, origin, window, 400, shifted, "t")
        texts += sorted(part, key=lambda item: item[0].start_time)
    return _feed(monitor, texts)


@pytest.fixture()
def origin(now_ms: int) -> int:
    return now_ms - now_ms % WINDOW_MS - 10 * WINDOW_MS


def test_only_the_shifted_scope_is_flagged_in_the_window_it_starts(origin: int) -> None:
    rows, topics, _embedded = _run(EmbeddingDriftMonitor(CONFIG), origin, seed=1, shift_at=4)
    assert rows and all(set(row) == set(DRIFT_FIELDS) for row in rows)
    assert topics and all(set(row) == set(DRIFT_TOPIC_FIELDS) for row in topics)
    windows = sorted({row["window_start"] for row in rows})
    assert windows == [origin + 3 * WINDOW_MS, origin + 4 * WINDOW_MS]  # window 5 has not closed
    flagged = {(r["window_start"], r["service"], r["feature"]) for r in rows if r["flagged"]}
    assert {(s, f) for _w, s, f in flagged} >= {("support-bot", "topics"), ("support-bot", "novel")}
    assert all(w == origin + 4 * WINDOW_MS and s == "support-bot" for w, s, _f in flagged)
    novel = [t for t in topics if t["topic"] == -1 and t["window_start"] == origin + 4 * WINDOW_MS]
    shifted = next(t for t in novel if t["service"] == "support-bot")
    assert shifted["current_share"] > 0.15 and shifted["examples"]
    for example in shifted["examples"][:-1]:  # the last names the nearest reference topic
        index = int(example.split(":")[0].rsplit("-", 1)[1])
        assert (": redacted " in example) == bool(index % 2)  # text only for store captures


def test_a_replay_in_another_order_gives_the_same_rows(origin: int) -> None:
    first, first_topics, _n = _run(EmbeddingDriftMonitor(CONFIG), origin, seed=2, shift_at=4)
    rng = np.random.default_rng(2)
    texts: Texts = []
    for window in range(6):
        shifted = "support-bot" if window >= 4 else None
        part = _texts(rng, origin, window, 400, shifted, "t")
        texts += sorted(part, key=lambda item: item[0].start_time)
    # Shuffle within each window: the same texts in another order.
    order = np.random.default_rng(9).permutation(len(texts))
    by_window = sorted(order, key=lambda i: (texts[i][0].start_time.timestamp() // 60, i))
    again, again_topics, _m = _feed(EmbeddingDriftMonitor(CONFIG), [texts[i] for i in by_window])
    key = lambda r: (r["window_start"], r["service"], r["direction"], r["feature"])  # noqa: E731
    assert sorted(map(key, first)) == sorted(map(key, again))
    for a, b in zip(sorted(first, key=key), sorted(again, key=key), strict=True):
        assert a["flagged"] == b["flagged"] and a["effect"] == pytest.approx(b["effect"])
    assert len(first_topics) == len(again_topics)


def test_only_texts_entering_the_sample_are_embedded(origin: int) -> None:
    """Bottom-k: a window of N texts costs about capacity * (1 + ln(N / capacity)) embeddings."""
    config = EmbeddingDriftConfig(window_ms=WINDOW_MS, min_samples=10, capacity=100)
    texts = _texts(np.random.default_rng(5), origin, 0, 5000, None, "k")
    texts = [t for t in texts if t[0].service == "search"]
    _rows, _topics, embedded = _feed(EmbeddingDriftMonitor(config), texts)
    expected = 100 * (1 + np.log(5000 / 100))  # ~490
    assert expected * 0.7 < embedded < expected * 1.6


def test_a_service_with_rate_zero_is_never_embedded(origin: int) -> None:
    config = EmbeddingDriftConfig(
        window_ms=WINDOW_MS, min_samples=10, capacity=50, rates={"search": 0.0}
    )
    monitor = EmbeddingDriftMonitor(config)
    texts = _texts(np.random.default_rng(3), origin, 0, 100, None, "r")
    offered = [p for record, _v in texts for p in monitor.offer(record)]
    assert offered and {p.scope[0] for p in offered} == {"support-bot"}


def test_bad_configurations_are_named() -> None:
    with pytest.raises(ValueError, match="embedding rate of 'search' must be in \\[0, 1\\], got 2"):
        EmbeddingDriftConfig(rates={"search": 2})
    with pytest.raises(ValueError, match="min_samples \\(300\\) cannot exceed"):
        EmbeddingDriftConfig(min_samples=300, capacity=200)
    with pytest.raises(ValueError, match="unknown directions \\['sideways'\\]"):
        EmbeddingDriftConfig(directions=("sideways",))


def test_a_pinned_baseline_round_trips_and_is_the_reference(origin: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    learn = EmbeddingDriftMonitor(CONFIG)
    _feed(learn, _texts(rng, origin, 0, 400, None, "b"))
    learn.idle(0)
    samples = learn.open[origin]
    save_baseline(tmp_path, Baseline(origin, origin + WINDOW_MS, ShapeWindow(), samples, 5, "me"))
    loaded = load_baseline(tmp_path, CONFIG.capacity)
    assert loaded is not None and set(loaded.texts) == set(samples)
    for scope, sample in samples.items():
        assert [t.event_id for t in loaded.texts[scope].texts()] == [
            t.event_id for t in sample.texts()
        ]
        assert all(t.example is None for t in loaded.texts[scope].texts())  # no text kept
    monitor = EmbeddingDriftMonitor(CONFIG)
    monitor.pin(loaded.texts, (loaded.start_ms, loaded.end_ms))
    rows, _topics, _n = _feed(
        monitor,
        _texts(rng, origin, 2, 400, "support-bot", "c") + _texts(rng, origin, 3, 10, None, "d"),
    )
    assert rows and {r["reference_kind"] for r in rows} == {"pinned"}
    assert {r["service"] for r in rows if r["flagged"]} == {"support-bot"}
    assert clear_baseline(tmp_path) and load_baseline(tmp_path, 200) is None


def test_a_damaged_baseline_is_named(tmp_path: Path) -> None:
    (tmp_path / "baseline.json").write_bytes(b"{not json")
    with pytest.raises(ValueError, match=f"drift baseline in {tmp_path} cannot be read"):
        load_baseline(tmp_path, 200)
