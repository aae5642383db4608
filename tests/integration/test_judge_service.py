"""The judge service on the real broker: judge requests in, one scores record per request out, dead
letters without text for an undecodable record and a poison item, and committed offsets that reach the
end only when everything finished, and never pass an item that does not finish."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import pytest

from streams.admin import ensure_topics
from streams.evaluation.items import JudgeRequest, Score, ScoreSource, decode_scores
from streams.evaluation.judge_service import JudgeService, JudgeServiceConfig, PoisonItem
from streams.ingest.records import decode_dead_letter
from streams.topics import TopicLayout
from tests.clock import Clock, to_ms
from tests.integration.kafka_io import QUIET, committed, produce, read_until

REQUESTS: Final = 12
POISON: Final = "call-5"
FLAKY: Final = "call-7"  # fails once (transient), then scores
BLOCKED: Final = "call-2"
UNDECODABLE: Final = b'{"judge_request": 1, "event_id": "x", "input_text": "PRIVATE-BAD-RECORD"'
WAIT_S: Final = 20.0
# Tansu holds a JoinGroup for half the session timeout: a short session makes the join take ~1.5 s.
SESSION_TIMEOUT_MS: Final = 3000


def _layout(prefix: str, partitions: int, bootstrap: str) -> TopicLayout:
    layout = TopicLayout(prefix=prefix, partitions=partitions)
    wanted = {layout.judge_requests, layout.scores, layout.dlq}
    ensure_topics(bootstrap, [s for s in layout.specs() if s.name in wanted])
    return layout


def _request(i: int, clock: Clock) -> JudgeRequest:
    return JudgeRequest(
        event_id=f"call-{i}",
        trace_id=f"trace-{i}",
        service="support-bot",
        model="gpt-4o-mini",
        start_time=clock.ago(minutes=2),
        input_text=f"PRIVATE-PROMPT-{i}: where is my order?",
        output_text=f"PRIVATE-ANSWER-{i}: it ships tomorrow.",
        rubrics=("helpfulness",),
        reason="rule:all",
    )


def _score(request: JudgeRequest) -> Score:
    return Score(
        name="helpfulness",
        source=ScoreSource.JUDGE,
        evaluator="judge-model",
        score_value=float(int(request.event_id.split("-")[1]) % 5),
        event_id=request.event_id,
        trace_id=request.trace_id or "",
        service=request.service,
        judge_model="judge-model",
        start_time_ms=to_ms(request.start_time),
        scored_at_ms=to_ms(datetime.now(UTC)),
    )


@contextmanager
def _running(service: JudgeService) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "the judge service did not stop"


def _wait(predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _config(broker: Any, layout: TopicLayout, group: str, **options: Any) -> JudgeServiceConfig:
    return JudgeServiceConfig(
        bootstrap=broker.bootstrap,
        layout=layout,
        group_id=group,
        poll_timeout_s=0.2,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        consumer_overrides=dict(QUIET),
        **options,
    )


def test_requests_scored_poison_dead_lettered_and_offsets_committed_to_the_end(
    broker: Any, topic_prefix: str, clock: Clock
) -> None:
    layout = _layout(topic_prefix, 2, broker.bootstrap)
    requests = [_request(i, clock) for i in range(REQUESTS)]
    records = [(layout.judge_requests, i % 2, r.to_json()) for i, r in enumerate(requests)]
    records.insert(5, (layout.judge_requests, 0, UNDECODABLE))
    ends = produce(broker.bootstrap, records)
    flaky_failed: list[str] = []

    async def score(request: JudgeRequest) -> list[Score]:
        # Random small delays: items finish out of order.
        await asyncio.sleep(random.Random(request.event_id).uniform(0.0, 0.08))
        if request.event_id == POISON:
            raise PoisonItem("judge reply unusable after 2 attempts: not JSON")
        if request.event_id == FLAKY and not flaky_failed:
            flaky_failed.append(request.event_id)
            raise ConnectionError("judge endpoint unreachable")
        return [_score(request)]

    group = f"{topic_prefix}-judge"
    service = JudgeService(_config(broker, layout, group, concurrency=3, max_in_flight=4), score)
    partitions = [(layout.judge_requests, p) for p in range(layout.partitions)]
    with _running(service):
        assert _wait(
            lambda: service.counts["scores"] == REQUESTS - 1 and service.counts["dead_letters"] == 2
        ), service.counts
        assert _wait(lambda: committed(broker.bootstrap, group, partitions) == ends), (
            committed(broker.bootstrap, group, partitions),
            ends,
        )
    assert service.counts["requests"] == REQUESTS
    assert service.counts["retries"] == 1 and flaky_failed == [FLAKY]
    assert service.counts["in_flight"] == 0
    assert committed(broker.bootstrap, group, partitions) == ends  # and still so after stopping

    values = read_until(
        broker.bootstrap, layout.scores, layout.partitions, lambda v: len(v) >= REQUESTS - 1, 15
    )
    rows = [row for value in values for row in decode_scores(value)]
    good = {r.event_id for r in requests} - {POISON}
    assert sorted(row["event_id"] for row in rows) == sorted(good)  # each exactly once
    assert all(row["name"] == "helpfulness" and row["source"] == "judge" for row in rows)

    raw_dead = read_until(
        broker.bootstrap, layout.dlq, layout.partitions, lambda v: len(v) >= 2, 15
    )
    dead = sorted((decode_dead_letter(v) for v in raw_dead), key=lambda d: d.reason)
    assert len(dead) == 2
    poison, bad = (
        next(d for d in dead if POISON in d.reason),
        next(d for d in dead if POISON not in d.reason),
    )
    assert "not JSON" in poison.reason
    assert "undecodable judge request" in bad.reason
    assert (bad.source_partition, bad.source_offset) == (0, 3)  # after call-0, -2 and -4
    assert (poison.source_partition, poison.source_offset) == (1, 2)  # after call-1 and -3
    for letter in dead:
        assert letter.payload == b"" and letter.payload_size == 0
        assert "sha256" in letter.reason and "bytes" in letter.reason
        assert letter.source_topic == layout.judge_requests
    assert f"{len(UNDECODABLE)} bytes" in bad.reason
    assert b"PRIVATE" not in b"".join(raw_dead)  # no judged text in the DLQ


def test_an_item_that_never_finishes_holds_the_commit_at_itself(
    broker: Any, topic_prefix: str, clock: Clock
) -> None:
    layout = _layout(topic_prefix, 1, broker.bootstrap)
    count = 6
    requests = [_request(i, clock) for i in range(count)]
    ends = produce(broker.bootstrap, [(layout.judge_requests, 0, r.to_json()) for r in requests])
    assert ends == {(layout.judge_requests, 0): count}

    async def score(request: JudgeRequest) -> list[Score]:
        if request.event_id == BLOCKED:
            await asyncio.Event().wait()  # never set: the judge hangs on this one
        await asyncio.sleep(0.01)
        return [_score(request)]

    group = f"{topic_prefix}-judge"
    service = JudgeService(_config(broker, layout, group), score)
    partition = [(layout.judge_requests, 0)]
    blocked_at = 2  # call-2 is the 3rd record
    with _running(service):
        assert _wait(lambda: service.counts["scores"] == count - 1), service.counts
        assert _wait(
            lambda: committed(broker.bootstrap, group, partition) == {partition[0]: blocked_at}
        )
        time.sleep(0.6)  # a few more polls and commit rounds: still held
        assert committed(broker.bootstrap, group, partition) == {partition[0]: blocked_at}
        assert service.counts["in_flight"] == 1
    # Stopping (which commits the finished prefix at revoke) does not pass it either.
    assert committed(broker.bootstrap, group, partition) == {partition[0]: blocked_at}
    values = read_until(broker.bootstrap, layout.scores, 1, lambda v: len(v) >= count - 1, 15)
    assert sorted(orjson.loads(v)["scores"][0]["event_id"] for v in values) == sorted(
        r.event_id for r in requests if r.event_id != BLOCKED
    )


def test_config_validation_names_the_value() -> None:
    layout = TopicLayout(prefix="unit")
    with pytest.raises(ValueError, match="concurrency must be >= 1, got 0"):
        JudgeServiceConfig(bootstrap="127.0.0.1:1", layout=layout, concurrency=0)
    with pytest.raises(ValueError, match=r"max_in_flight .* got 2"):
        JudgeServiceConfig(bootstrap="127.0.0.1:1", layout=layout, concurrency=4, max_in_flight=2)
