"""``watch.prompts.get`` on the real broker: the label's version rendered, label moves followed live,
fallbacks and the cache file when the registry is down, bad records skipped, events stamped."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from llmwatch.broker import free_port
from producers.events import LlmCallEvent
from producers.prompts.client import PromptClient
from producers.prompts.handle import PromptHandle
from producers.prompts.records import PromptVersionRecord, RegistryRecord, decode_registry_record
from producers.prompts.registry import RegistryState
from producers.sdk import Publisher
from producers.wire import SplitRecord, split_record
from streams.admin import ensure_topics
from streams.topics import TopicLayout
from tests.clock import Clock
from tests.integration.kafka_io import QUIET, read_until

NAME = "support-bot"
LABEL = "production"
KEYS = [f"user-{i}" for i in range(400)]
READY_S = 15.0
MOVE_SEEN_S = 5.0
DOWN_GET_S = 0.050

MakeClient = Callable[..., PromptClient]


class Registry:
    """The registry topic, written with a plain producer, and the state those records fold to."""

    def __init__(self, bootstrap: str, topic: str, now_ms: int) -> None:
        self.topic = topic
        self.now_ms = now_ms
        self.state = RegistryState()
        self._producer = Producer({"bootstrap.servers": bootstrap, **QUIET})

    def send(self, *records: RegistryRecord | bytes) -> None:
        for record in records:
            if isinstance(record, bytes):
                self._producer.produce(self.topic, record, key=b"garbage")
                continue
            self.state.apply(record)
            self._producer.produce(self.topic, record.to_json(), key=record.key())
        assert self._producer.flush(15) == 0

    def push(self, template: str, **extra: Any) -> PromptVersionRecord:
        created_at_ms = self.now_ms + len(self.state.history(NAME))  # version numbers follow pushes
        record = PromptVersionRecord.create(
            name=NAME, template=template, created_at_ms=created_at_ms, **extra
        )
        self.send(record)
        return record

    def label(self, ref: str, weight: int = 100) -> None:
        move = self.state.plan_label(
            NAME, ref, LABEL, weight=weight, moved_by="test", reason="", now_ms=self.now_ms
        )
        self.send(move)

    def rollback(self) -> None:
        self.send(
            self.state.plan_rollback(NAME, LABEL, moved_by="t", reason="", now_ms=self.now_ms)
        )


@pytest.fixture()
def layout(broker: Any, topic_prefix: str) -> TopicLayout:
    layout = TopicLayout(prefix=topic_prefix, partitions=1)
    wanted = {layout.prompts, layout.events}
    ensure_topics(broker.bootstrap, [s for s in layout.specs() if s.name in wanted])
    return layout


@pytest.fixture()
def registry(broker: Any, layout: TopicLayout, now_ms: int) -> Registry:
    return Registry(broker.bootstrap, layout.prompts, now_ms)


@pytest.fixture()
def make_client(broker: Any, layout: TopicLayout) -> Iterator[MakeClient]:
    made: list[PromptClient] = []

    def make(bootstrap: str | None = None, **kwargs: Any) -> PromptClient:
        kwargs.setdefault("client_config", QUIET)
        client = PromptClient(bootstrap or broker.bootstrap, layout.prompts, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        assert client.close(timeout=3.0)


def _cached_label(cache: Path) -> list[tuple[str, int]]:
    state = RegistryState()
    state.apply_all(decode_registry_record(line) for line in cache.read_bytes().splitlines())
    move = state.label(NAME, LABEL)
    return [] if move is None else [(arm.version, arm.weight) for arm in move.arms]


def _versions(client: PromptClient, keys: list[str]) -> list[str]:
    handles = [client.get(NAME, LABEL, key=key) for key in keys]
    return [handle.version if handle else "" for handle in handles]


def _wait_for(predicate: Callable[[], bool], timeout_s: float) -> float:
    """Seconds until ``predicate()`` held; fails the test after ``timeout_s``."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout_s, "not seen in time"
        time.sleep(0.05)
    return time.monotonic() - started


def _timed_get(client: PromptClient, **kwargs: Any) -> tuple[PromptHandle | None, float]:
    started = time.perf_counter()
    handle = client.get(NAME, LABEL, **kwargs)
    return handle, time.perf_counter() - started


def test_get_serves_the_labels_version_rendered(
    registry: Registry, make_client: MakeClient, now_ms: int
) -> None:
    registry.push("Answer: {{ question }}")
    v2 = registry.push("Be brief. {{ question }} ({{ tone }})", model="gpt-4o", params={"t": 0.2})
    registry.label("2")
    client = make_client()
    assert client.wait_ready(READY_S)
    handle = client.get(NAME, LABEL, key="user-1", variables={"question": "Why?"})
    assert handle is not None
    assert (handle.version, handle.number, handle.variant, handle.source) == (
        v2.version,
        2,
        LABEL,
        "registry",
    )
    assert (handle.text, handle.missing_variables) == ("Be brief. Why? ({{ tone }})", ("tone",))
    assert (handle.model, dict(handle.params), handle.template) == (
        "gpt-4o",
        {"t": 0.2},
        v2.template,
    )
    assert handle.fields() == {"prompt_name": NAME, "prompt_version": v2.version, "variant": LABEL}
    assert client.get(NAME, "staging") is None
    stats = client.stats()
    assert (stats.hits, stats.fallbacks, stats.stale, stats.bad_records) == (1, 1, 0, 0)
    assert stats.last_refresh_ms is not None and stats.last_refresh_ms >= now_ms


def test_a_split_and_its_rollback_are_seen_within_seconds(
    registry: Registry, make_client: MakeClient
) -> None:
    v1 = registry.push("Answer: {{ q }}")
    v2 = registry.push("Answer briefly: {{ q }}")
    registry.label("1")
    client = make_client()
    assert client.wait_ready(READY_S)
    assert set(_versions(client, KEYS)) == {v1.version}

    registry.label("2", weight=10)
    _wait_for(lambda: v2.version in _versions(client, KEYS), MOVE_SEEN_S)
    split = _versions(client, KEYS)
    canary_keys = [k for k, v in zip(KEYS, split, strict=True) if v == v2.version]
    assert 0 < len(canary_keys) < 0.2 * len(KEYS)
    assert _versions(client, KEYS) == split  # sticky
    handle = client.get(NAME, LABEL, key=canary_keys[0])
    assert handle is not None and handle.variant == "canary"

    registry.rollback()
    _wait_for(lambda: set(_versions(client, KEYS)) == {v1.version}, MOVE_SEEN_S)


def test_registry_down_serves_the_fallback_at_once(make_client: MakeClient) -> None:
    client = make_client(f"127.0.0.1:{free_port()}")
    fallback = PromptVersionRecord.create(name=NAME, template="Hi {{ who }}", created_at_ms=0)
    timings = []
    for _ in range(2):  # right after start, and once the reader has been failing for a while
        handle, took = _timed_get(
            client, key="u", variables={"who": "Ada"}, fallback="Hello {{ who }}"
        )
        timings.append(took)
        assert handle is not None
        assert (handle.text, handle.source, handle.variant, handle.version) == (
            "Hello Ada",
            "fallback",
            "fallback",
            "",
        )
        assert handle.fields() == {"prompt_name": NAME, "variant": "fallback"}
        time.sleep(0.5)
    as_record, took = _timed_get(client, fallback=fallback, variables={"who": "Bo"})
    none, took_none = _timed_get(client)
    assert as_record is not None and (as_record.version, as_record.text) == (
        fallback.version,
        "Hi Bo",
    )
    assert none is None
    assert max(*timings, took, took_none) < DOWN_GET_S
    assert client.wait_ready(0.2) is False
    assert client.stats().fallbacks == 4


def test_a_restart_with_the_registry_down_serves_the_cache(
    registry: Registry, make_client: MakeClient, tmp_path: Path
) -> None:
    cache = tmp_path / "prompts" / "cache.jsonl"
    v1 = registry.push("Answer: {{ q }}")
    registry.label("1")
    first = make_client(cache_path=cache)
    assert first.wait_ready(READY_S)
    assert cache.exists()
    assert first.close(timeout=3.0)

    restarted = make_client(f"127.0.0.1:{free_port()}", cache_path=cache)
    handle, took = _timed_get(restarted, key="u1", variables={"q": "why"}, fallback="unused")
    assert handle is not None
    assert (handle.version, handle.number, handle.text, handle.source) == (
        v1.version,
        1,
        "Answer: why",
        "cache",
    )
    assert took < DOWN_GET_S
    assert restarted.stats().stale == 1  # served, but the registry never confirmed it
    assert list(tmp_path.rglob("*.tmp")) == []


def test_the_cache_follows_the_topic(
    registry: Registry, make_client: MakeClient, tmp_path: Path
) -> None:
    cache = tmp_path / "cache.jsonl"
    registry.push("Answer: {{ q }}")
    v2 = registry.push("Answer briefly: {{ q }}")
    registry.label("1")
    client = make_client(cache_path=cache)
    assert client.wait_ready(READY_S)
    registry.label("2")
    _wait_for(lambda: _versions(client, ["k"]) == [v2.version], MOVE_SEEN_S)
    _wait_for(lambda: _cached_label(cache) == [(v2.version, 100)], MOVE_SEEN_S)


def test_a_corrupted_record_is_skipped_and_counted(
    registry: Registry, make_client: MakeClient
) -> None:
    v1 = registry.push("Answer: {{ q }}")
    registry.send(b"\x00not json", b'{"kind": "label_move", "name": "support-bot"}')
    registry.label("1")
    client = make_client()
    assert client.wait_ready(READY_S)
    handle = client.get(NAME, LABEL, key="u1")
    assert handle is not None and handle.version == v1.version
    assert client.stats().bad_records == 2


def test_events_inside_the_handle_carry_the_prompt(
    broker: Any, layout: TopicLayout, registry: Registry, clock: Clock
) -> None:
    v1 = registry.push("Answer: {{ q }}")
    registry.label("1")
    watch = Publisher(broker.bootstrap, layout.events, service="it", producer_config=QUIET)
    try:
        assert watch.prompts.topic == layout.prompts
        assert watch.prompts.wait_ready(READY_S)
        handle = watch.prompts.get(NAME, key="u1", variables={"q": "hi"})
        assert handle is not None and handle.text == "Answer: hi"
        with handle:
            assert watch.emit(LlmCallEvent(service="it", start_time=clock.now, end_time=clock.now))
        assert watch.flush(timeout=15)
    finally:
        assert watch.close(timeout=5)
    assert watch.prompts.closed
    values = read_until(broker.bootstrap, layout.events, 1, lambda v: len(v) >= 1, 30)
    record = split_record(values[0])
    assert isinstance(record, SplitRecord)
    (event,) = record.events
    assert (event["prompt_name"], event["prompt_version"], event["variant"]) == (
        NAME,
        v1.version,
        LABEL,
    )


def _child_follows(client: PromptClient, registry: Registry, v1: str, v2: str) -> int:
    """Runs in a forked child; the exit code says which check failed."""
    if _versions(client, ["k"]) != [v1]:
        return 3  # the inherited state is lost
    registry.label("2")  # a move made after the fork: only the child's own thread can see it
    deadline = time.monotonic() + MOVE_SEEN_S
    while _versions(client, ["k"]) != [v2]:
        if time.monotonic() > deadline:
            return 4
        time.sleep(0.05)
    return 0 if client.close(timeout=3.0) else 5


def test_a_forked_child_reads_the_registry_with_its_own_thread(
    broker: Any, layout: TopicLayout, registry: Registry, make_client: MakeClient, now_ms: int
) -> None:
    v1 = registry.push("Answer: {{ q }}")
    v2 = registry.push("Answer briefly: {{ q }}")
    registry.label("1")
    client = make_client()
    assert client.wait_ready(READY_S)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child process
        code = 2
        try:
            child_registry = Registry(broker.bootstrap, layout.prompts, now_ms)
            child_registry.state = registry.state
            code = _child_follows(client, child_registry, v1.version, v2.version)
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while not (done := os.waitpid(pid, os.WNOHANG))[0]:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("forked child did not exit")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(done[1]) == 0
    _wait_for(lambda: _versions(client, ["k"]) == [v2.version], MOVE_SEEN_S)  # the parent too
