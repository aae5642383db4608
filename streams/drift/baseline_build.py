"""Build a pinned drift baseline from what the broker holds for a time range (``llmwatch drift
baseline set``).

Reads the calls topic (and the texts topic when an encoder is given) from the first offset at or after
``start_ms`` to each partition's end, keeps calls whose start time is in
``[start_ms, end_ms)``, and builds what :mod:`streams.drift.baseline` saves: shape counts, and per text
scope a bottom-k sample sampled exactly as the live monitor samples (same rate, same hash), embedded in
batches. Nothing is written to the broker. What can block: the read (to every partition's end, at
most ``timeout_s``) and the embedding (~hundreds of texts/s).
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from typing import Final

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from pydantic import ValidationError

from producers.texts import TextRecord
from producers.wire import RecordError, split_record
from streams.drift.baseline import Baseline
from streams.drift.consumer import TextEncoder
from streams.drift.embedding import EmbeddingSample, SampledText, priority
from streams.drift.embedding_monitor import DIRECTIONS, EmbeddingDriftConfig
from streams.drift.shape import ShapeWindow
from streams.ingest.call_batches import decode_call_rows
from streams.topics import TopicLayout

__all__ = ["build_baseline"]

METADATA_TIMEOUT_S: Final = 10.0
BATCH: Final = 256
_HASH_SPACE: Final = 2**64


def _read(bootstrap: str, topic: str, start_ms: int, timeout_s: float) -> list[bytes]:
    """Every record of ``topic`` from the first at or after ``start_ms`` to each partition's end
    (partition EOF; calls are filtered by start time afterwards)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "llmwatch-drift-baseline-unused",  # assign() only: nothing is committed
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    values: list[bytes] = []
    try:
        metadata = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise ValueError(f"topic {topic!r} not found: run `llmwatch topics create`")
        wanted = [TopicPartition(topic, p, start_ms) for p in metadata.partitions]
        assignment = [
            tp
            for tp in consumer.offsets_for_times(wanted, timeout=METADATA_TIMEOUT_S)
            if tp.offset >= 0
        ]
        pending = {tp.partition for tp in assignment}
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.5):
                error = message.error()
                if error is None:
                    values.append(message.value() or b"")
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition() or 0)
                elif error.fatal():
                    raise KafkaException(error)
        if pending:
            raise TimeoutError(f"reading {topic!r} took longer than {timeout_s} s")
    finally:
        consumer.close()
    return values


def build_baseline(
    bootstrap: str,
    layout: TopicLayout,
    start_ms: int,
    end_ms: int,
    *,
    embedding: EmbeddingDriftConfig | None,
    encoder: TextEncoder | None,
    timeout_s: float = 300.0,
) -> Baseline:
    """The baseline of calls and texts that started in ``[start_ms, end_ms)``."""
    if end_ms <= start_ms:
        raise ValueError(f"baseline range is empty: start {start_ms} >= end {end_ms}")
    shape = ShapeWindow()
    for value in _read(bootstrap, layout.calls, start_ms, timeout_s):
        try:
            rows = decode_call_rows(value)
        except ValueError:
            continue
        for row in rows:
            start = row.get("start_time") if isinstance(row, dict) else None
            if isinstance(start, int) and start_ms <= start < end_ms:
                shape.add(row)
    texts: dict[tuple[str, str, str], EmbeddingSample] = {}
    if embedding is None or encoder is None:
        return Baseline(start_ms, end_ms, shape, texts)
    # Per scope, the ``capacity`` texts of smallest priority (a bounded max-heap), then embedded.
    chosen: dict[tuple[str, str, str], list[tuple[int, str, str]]] = {}
    offered: Counter[tuple[str, str, str]] = Counter()
    for value in _read(bootstrap, layout.texts, start_ms, timeout_s):
        split = split_record(value)
        if isinstance(split, RecordError):
            continue
        for doc in split.events:
            try:
                record = TextRecord.model_validate(doc)
            except ValidationError:
                continue
            start = int(record.start_time.timestamp() * 1000)
            rank = priority(record.event_id)
            sampled = rank < embedding.rate_of(record.service) * _HASH_SPACE
            if not (start_ms <= start < end_ms and sampled):
                continue
            for direction in embedding.directions:
                text = getattr(record, DIRECTIONS[direction])
                if not text:
                    continue
                scope = (record.service, str(record.span_kind), direction)
                offered[scope] += 1
                heap = chosen.setdefault(scope, [])
                item = (-rank, record.event_id, text[: embedding.max_text_chars])
                if len(heap) < embedding.capacity:
                    heapq.heappush(heap, item)
                elif item > heap[0]:
                    heapq.heapreplace(heap, item)
    for scope, heap in sorted(chosen.items()):
        sample = texts[scope] = EmbeddingSample(embedding.capacity)
        sample.offered = offered[scope]
        for offset in range(0, len(heap), BATCH):
            batch = heap[offset : offset + BATCH]
            vectors = encoder.encode([text for _rank, _event, text in batch])
            for (negative, event, _text), vector in zip(batch, vectors, strict=True):
                sample.add(SampledText(-negative, event, vector))
    return Baseline(start_ms, end_ms, shape, texts)
