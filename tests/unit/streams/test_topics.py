from __future__ import annotations

import pytest

from streams.topics import TopicLayout


def test_layout_names_and_specs() -> None:
    layout = TopicLayout(prefix="acme", partitions=6, retention_hours=24)
    names = [spec.name for spec in layout.specs()]
    assert names == [
        "acme.events",
        "acme.calls",
        "acme.dlq",
        "acme.rollups",
        "acme.alerts",
        "acme.metrics",
        "acme.state",
        "acme.monitor",
        "acme.texts",
        "acme.guardrails",
        "acme.judge-requests",
        "acme.scores",
        "acme.prompts",
        "acme.canary",
        "acme.drift",
    ]
    monitor = next(s for s in layout.specs() if s.name == layout.monitor)
    assert monitor.partitions == 1  # one owner in the worker group: budgets do not split
    prompts = next(s for s in layout.specs() if s.name == layout.prompts)
    # The registry: one partition (one order of label moves), compacted with a key per move.
    assert (prompts.partitions, prompts.cleanup_policy) == (1, "compact")
    texts = next(s for s in layout.specs() if s.name == layout.texts)
    assert texts.retention_ms == 24 * 3_600_000  # the text retention, not the events'
    short = {
        s.name: s.retention_ms for s in TopicLayout(prefix="a", text_retention_hours=2).specs()
    }
    # Both topics that carry text keep it for the text retention only.
    assert short["a.texts"] == short["a.judge-requests"] == 2 * 3_600_000
    assert short["a.scores"] == 72 * 3_600_000
    dlq = next(s for s in layout.specs() if s.name == layout.dlq)
    assert dlq.retention_ms == 7 * 24 * 3_600_000
    assert layout.specs()[0].config()["retention.ms"] == str(24 * 3_600_000)


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [
        ({"partitions": 0}, "0"),
        ({"retention_hours": -1}, "-1"),
        ({"text_retention_hours": 0}, "text_retention_hours must be >= 1, got 0"),
        ({"prefix": "a b"}, "'a b'"),
    ],
)
def test_bad_layout_names_the_value(kwargs: dict[str, object], bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        TopicLayout(**kwargs)  # type: ignore[arg-type]


def test_the_events_topic_is_stamped_by_the_broker_the_others_by_their_producer() -> None:
    """Event-time bounds use the record timestamp; on Kafka the broker's clock sets it (Tansu
    ignores the setting and keeps the producer's, which the stream state's clock guards against)."""
    layout = TopicLayout(prefix="acme")
    stamped = {s.name for s in layout.specs() if s.config().get("message.timestamp.type")}
    assert stamped == {layout.events}
    (events,) = [s for s in layout.specs() if s.name == layout.events]
    assert events.config()["message.timestamp.type"] == "LogAppendTime"
