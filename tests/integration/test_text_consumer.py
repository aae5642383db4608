"""The text-analysis consumer on the real broker: SDK text records in, guardrail rows and dead letters
out, offsets committed only after the outputs, and a replay by another group gives identical rows."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import orjson

from producers.events import LlmCallEvent
from producers.sdk import Publisher
from streams.ingest.records import decode_dead_letter
from streams.storage import GUARDRAIL_FINDINGS_TABLE, GUARDRAIL_ROLLUP_TABLE, TEXTS_TABLE
from streams.text.analyzer import TextAnalyzer
from streams.text.consumer import AnalyzerConfig, TextConsumer
from streams.text.pii import PiiDetector
from streams.text.records import decode_guardrails
from streams.topics import TopicLayout
from tests.clock import Clock
from tests.integration.kafka_io import QUIET, committed, produce, read_until

CALLS = 40
EMAIL = "rosalind.okoye@example.net"


def _events(clock: Clock) -> list[LlmCallEvent]:
    start = clock.ago(minutes=3)
    return [
        LlmCallEvent(
            event_id=f"call-{i}",
            trace_id=f"trace-{i}",
            start_time=start,
            end_time=start,
            service="support-bot",
            request_model="gpt-4o-mini",
            input_text=f"Hello, write to {EMAIL} about order {i}."
            if i % 2
            else f"Order {i} status?",
            output_text="Done.",
            text_capture="store" if i % 4 == 1 else "analyze",
        )
        for i in range(CALLS)
    ]


def _read_all(
    bootstrap: str, topic: str, partitions: int, expect: int, timeout_s: float = 60.0
) -> list[bytes]:
    """``expect`` records of ``topic`` from the start, read by assignment (no group join)."""
    return read_until(bootstrap, topic, partitions, lambda v: len(v) >= expect, timeout_s)


def _run(config: AnalyzerConfig, analyzer: TextAnalyzer, until: Any) -> TextConsumer:
    return run_until(TextConsumer(config, analyzer.analyze), until)


def run_until(consumer: TextConsumer, until: Any) -> TextConsumer:
    """Run ``consumer`` in a thread until ``until(consumer)`` holds (at most 120 s), then stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not until(consumer) and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    thread.join(30)
    return consumer


def test_text_records_become_guardrail_rows_and_commit_after_output(
    broker: Any, layout: TopicLayout, clock: Clock
) -> None:
    with Publisher(broker.bootstrap, layout.events, service="itest", producer_config=QUIET) as sdk:
        assert all(sdk.emit(event) for event in _events(clock))
        assert sdk.flush(30)
        assert sdk.stats.texts_delivered == CALLS
    produce(broker.bootstrap, [(layout.texts, 0, b"\x00 not a text record")])
    analyzer = TextAnalyzer(pii=PiiDetector())
    config = AnalyzerConfig(bootstrap=broker.bootstrap, layout=layout, group_id="analyze-a")
    first = _run(
        config, analyzer, lambda c: c.counts["texts"] >= CALLS and c.counts["dead_letters"]
    )
    assert (first.counts["texts"], first.counts["dead_letters"]) == (CALLS, 1)

    records = _read_all(
        broker.bootstrap, layout.guardrails, layout.partitions, first.counts["records"] - 1
    )
    tables: dict[str, list[dict[str, Any]]] = {}
    for value in records:
        for table, rows in decode_guardrails(value).items():
            tables.setdefault(table, []).extend(rows)
    emails = [r for r in tables[GUARDRAIL_FINDINGS_TABLE] if r["type"] == "EMAIL"]
    assert len(emails) == CALLS // 2
    assert sum(r["texts"] for r in tables[GUARDRAIL_ROLLUP_TABLE]) == CALLS
    stored = tables[TEXTS_TABLE]
    assert len(stored) == CALLS // 4  # only the "store" captures
    assert all(EMAIL not in row["input_text"] and "<EMAIL>" in row["input_text"] for row in stored)
    assert EMAIL.encode() not in b"".join(records)

    (dead,) = [
        decode_dead_letter(v) for v in _read_all(broker.bootstrap, layout.dlq, layout.partitions, 1)
    ]
    assert "text record" in dead.reason and dead.payload_size == 0
    partitions = [(layout.texts, p) for p in range(layout.partitions)]
    offsets = committed(broker.bootstrap, "analyze-a", partitions).values()
    assert sum(max(0, o) for o in offsets) == first.counts["records"]  # every record, after output

    # Another group replays the topic: the rows are identical, so the tables collapse them.
    again = _run(
        AnalyzerConfig(bootstrap=broker.bootstrap, layout=layout, group_id="analyze-b"),
        analyzer,
        lambda c: c.counts["texts"] >= CALLS and c.counts["dead_letters"],
    )
    replayed = _read_all(broker.bootstrap, layout.guardrails, layout.partitions, 2 * len(records))
    assert again.counts["texts"] == CALLS
    assert set(Counter(replayed).values()) == {2}  # every record twice, byte for byte
    assert all(orjson.loads(v)["kind"] == "guardrails" for v in replayed)
