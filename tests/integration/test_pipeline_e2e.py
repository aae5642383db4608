"""The whole pipeline on real parts: SDK -> Tansu -> Faust worker -> ClickHouse sink on chdb.

Each test starts its own worker (``llmwatch worker`` subprocess) and sink on the session broker, with its
own topics, consumer groups and chdb folder, and proves one of the foundation scenarios:

1. every event emitted through the SDK is stored exactly once, and the 1-minute rollups agree;
2. bad payloads of every kind, produced raw next to valid traffic, each become one ``llm_dlq`` row whose
   reason names the problem and which keeps the payload, while the valid traffic lands completely;
3. a worker killed with SIGKILL mid-stream and restarted loses and double-counts nothing;
4. a sink subprocess killed with SIGKILL mid-stream and restarted loses and double-counts nothing.

The SDK's "emit never blocks with the broker down" scenario is
``tests/integration/test_sdk_publish.py::test_emit_does_not_block_with_broker_down``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from llmwatch.broker import TansuBroker
from llmwatch.settings import Settings
from producers.events import LlmCallEvent
from producers.sdk import Publisher
from sinks.schema import CALLS_TABLE, DLQ_TABLE, qualified
from streams.admin import ensure_topics
from tests.integration.bad_payloads import (
    BAD_KINDS,
    BAD_TOTAL,
    HUGE_TEXT_CHARS,
    WHOLE_RECORD,
    BadKind,
)
from tests.integration.kafka_io import QUIET, Sent, TaggedProducer, committed
from tests.integration.pipeline_harness import (
    ProcessGroup,
    StoredCounts,
    TopicWatcher,
    Traffic,
    clickhouse,
    pipeline_settings,
    simulated_events,
    sink_thread,
    stored_counts,
    wait_drained,
    wait_until,
)

EVENTS: Final = 10_000
CRASH_EVENTS: Final = 20_000
WARMUP_EVENTS: Final = 500
# The paced traffic (19,500 events) flows for ~10 s: the crash and the restart happen meanwhile.
RATE: Final = 2_000.0
# The crash comes once this many events of the paced traffic went through the worker.
CRASH_AFTER: Final = 2_000
CRASH_COMMIT_INTERVAL_S: Final = 2.0
START_TIMEOUT_S: Final = 60.0
FLUSH_TIMEOUT_S: Final = 30.0
VALID_EVENTS_WITH_BAD: Final = 3_000
# Small inserts: many insert-and-commit cycles while traffic flows.
SINK_BATCH: Final = 1_000


@pytest.fixture()
def settings(broker: TansuBroker, topic_prefix: str, tmp_path: Path, chdb_dsn: str) -> Settings:
    """This test's settings; ``chdb_dsn`` is the folder ``ch_client`` or a sink subprocess opens."""
    return _settings(broker, topic_prefix, tmp_path, chdb_dsn)


def _settings(broker: TansuBroker, prefix: str, folder: Path, dsn: str) -> Settings:
    settings = pipeline_settings(
        broker.bootstrap, prefix, folder / "data", clickhouse_dsn=dsn, sink_batch_rows=SINK_BATCH
    )
    ensure_topics(broker.bootstrap, settings.layout.specs())
    return settings


@pytest.fixture()
def publisher(settings: Settings) -> Iterator[Publisher]:
    publishing = Publisher(settings.bootstrap, settings.layout.events, producer_config=QUIET)
    try:
        yield publishing
    finally:
        publishing.close(timeout=5.0)


def _emit_all(publisher: Publisher, events: Sequence[LlmCallEvent]) -> None:
    assert sum(publisher.emit(event) for event in events) == len(events)
    assert publisher.flush(FLUSH_TIMEOUT_S), publisher.stats


def _assert_exactly_once(counts: StoredCounts, sent: int) -> None:
    print(f"\nstored: {counts} (count() without FINAL counts replayed rows not merged yet)")
    assert counts.calls_final == sent
    assert counts.calls_distinct == sent
    assert counts.calls_raw >= counts.calls_final
    assert counts.rollup_requests == sent  # no window counted twice
    assert counts.dlq_final == 0


def _stored_ids(client: Any, database: str) -> set[str]:
    query = f"SELECT event_id FROM {qualified(CALLS_TABLE, database)} FINAL"
    return set(client.query(query).result_columns[0])


def test_sdk_events_are_stored_exactly_once_and_rollups_agree(
    settings: Settings,
    processes: ProcessGroup,
    ch_client: Any,
    watcher: TopicWatcher,
    publisher: Publisher,
) -> None:
    events = simulated_events(EVENTS, seed=11)
    processes.start("worker", settings)
    with sink_thread(settings, ch_client):
        _emit_all(publisher, events)
        wait_drained(watcher, settings, calls=EVENTS, dead_letters=0, processes=processes)
    _assert_exactly_once(stored_counts(ch_client, settings.database), EVENTS)
    assert _stored_ids(ch_client, settings.database) == {event.event_id for event in events}


# Scenario 2: bad payloads (tests.integration.bad_payloads), next to valid traffic.


@dataclass(frozen=True, slots=True)
class Letter:
    """One llm_dlq row, with what was produced at its source position."""

    index: int
    reason: str
    payload_size: int
    payload_sha256: str
    sent: Sent | None


def _letter(row: Sequence[Any], raw: TaggedProducer) -> Letter:
    partition, offset, index, reason, size, sha256 = row
    return Letter(index, reason, size, sha256, sent=raw.placed.get((partition, offset)))


@dataclass(frozen=True, slots=True)
class BadTrafficOutcome:
    counts: StoredCounts
    stored_ids: set[str]
    sent_ids: set[str]
    letters: list[Letter]

    def of_kind(self, name: str) -> list[Letter]:
        return [letter for letter in self.letters if letter.sent and letter.sent.tag == name]


def _send_bad_traffic(settings: Settings, publisher: Publisher) -> tuple[TaggedProducer, set[str]]:
    """Interleave raw bad payloads with valid SDK traffic; return the producer and the valid ids."""
    events = simulated_events(VALID_EVENTS_WITH_BAD, seed=12)
    sent_ids = {event.event_id for event in events}
    raw = TaggedProducer(settings.bootstrap, settings.layout.events)
    kinds = [kind for kind in BAD_KINDS for _ in range(kind.count)]
    chunk = len(events) // len(kinds) + 1
    for i, kind in enumerate(kinds):
        assert all(publisher.emit(event) for event in events[i * chunk : (i + 1) * chunk])
        raw.send(kind.payload(i), kind.name)
        sent_ids |= kind.valid_ids(i)
        if i % 10 == 9:  # flushing both producers makes their records alternate on the topic
            assert publisher.flush(FLUSH_TIMEOUT_S)
            raw.flush()
    assert publisher.flush(FLUSH_TIMEOUT_S)
    raw.flush()
    return raw, sent_ids


@pytest.fixture(scope="module")
def bad_traffic(broker: TansuBroker, tmp_path_factory: pytest.TempPathFactory) -> BadTrafficOutcome:
    """Runs the pipeline once over the bad traffic; the tests below check what it stored.

    Everything is read before the chdb client closes: the next test opens another folder.
    """
    folder = tmp_path_factory.mktemp("bad-traffic")
    settings = _settings(
        broker, f"bad{uuid.uuid4().hex[:10]}", folder, f"chdb://{folder / 'clickhouse'}"
    )
    processes = ProcessGroup(folder / "logs")
    watcher = TopicWatcher(settings.bootstrap, settings.layout)
    publisher = Publisher(settings.bootstrap, settings.layout.events, producer_config=QUIET)
    try:
        processes.start("worker", settings)
        with clickhouse(settings.dsn) as client:
            with sink_thread(settings, client):
                raw, sent_ids = _send_bad_traffic(settings, publisher)
                wait_drained(
                    watcher,
                    settings,
                    calls=len(sent_ids),
                    dead_letters=BAD_TOTAL,
                    processes=processes,
                )
            rows = client.query(
                "SELECT source_partition, source_offset, index_in_record, reason, payload_size, "
                f"payload_sha256 FROM {qualified(DLQ_TABLE, settings.database)} FINAL"
            ).result_rows
            return BadTrafficOutcome(
                counts=stored_counts(client, settings.database),
                stored_ids=_stored_ids(client, settings.database),
                sent_ids=sent_ids,
                letters=[_letter(row, raw) for row in rows],
            )
    finally:
        publisher.close(timeout=5.0)
        watcher.close()
        processes.stop_all()


def test_bad_payloads_are_dead_lettered_and_valid_traffic_lands(
    bad_traffic: BadTrafficOutcome,
) -> None:
    counts = bad_traffic.counts
    print(f"\nstored: {counts}")
    assert counts.dlq_final == BAD_TOTAL == 100
    assert [letter for letter in bad_traffic.letters if letter.sent is None] == []
    assert all(letter.reason.strip() for letter in bad_traffic.letters)
    expected = len(bad_traffic.sent_ids)
    assert expected == VALID_EVENTS_WITH_BAD + 3 * 9  # the good events next to a bad one too
    assert counts.calls_final == counts.calls_distinct == counts.rollup_requests == expected
    assert bad_traffic.stored_ids == bad_traffic.sent_ids


@pytest.mark.parametrize("kind", BAD_KINDS, ids=lambda kind: kind.name)
def test_each_bad_payload_is_kept_with_a_reason_naming_the_problem(
    bad_traffic: BadTrafficOutcome, kind: BadKind
) -> None:
    letters = bad_traffic.of_kind(kind.name)
    print(f"\n{kind.name}: {letters[0].reason[:300] if letters else None}")
    assert len(letters) == kind.count
    assert [x for x in letters if not all(part in x.reason for part in kind.reason)] == []
    assert {letter.index for letter in letters} == {kind.index}
    if kind.index == WHOLE_RECORD:  # the record's original bytes, whole
        kept = [(x.payload_size, x.payload_sha256) for x in letters]
        assert kept == [(x.sent.size, x.sent.sha256) for x in letters if x.sent]
    else:  # the bad event alone
        assert all(0 < x.payload_size < x.sent.size for x in letters if x.sent)


def test_a_5mb_payload_is_kept_whole(bad_traffic: BadTrafficOutcome) -> None:
    (letter,) = bad_traffic.of_kind("text_5mb")
    assert letter.sent is not None
    assert letter.payload_size == letter.sent.size > HUGE_TEXT_CHARS


# Scenarios 3 and 4: crashes.


def _warm_up(
    publisher: Publisher,
    watcher: TopicWatcher,
    events: Sequence[LlmCallEvent],
    processes: ProcessGroup,
) -> None:
    """Send the first events and wait until the worker has processed them (it is running)."""
    _emit_all(publisher, events[:WARMUP_EVENTS])

    def through() -> bool:
        watcher.poll()
        return len(watcher.event_ids) >= WARMUP_EVENTS

    wait_until(through, "the worker to process the warm-up events", START_TIMEOUT_S, processes)


def _sink_committed(settings: Settings) -> int:
    """Records of the calls topic the sink has inserted and committed."""
    calls = [(settings.layout.calls, p) for p in range(settings.layout.partitions)]
    positions = committed(settings.bootstrap, settings.sink_group, calls)
    return sum(max(0, offset) for offset in positions.values())  # -1001: nothing committed


def test_worker_killed_mid_stream_loses_and_double_counts_nothing(
    settings: Settings,
    processes: ProcessGroup,
    ch_client: Any,
    watcher: TopicWatcher,
    publisher: Publisher,
) -> None:
    events = simulated_events(CRASH_EVENTS, seed=13)
    # A longer commit interval widens the window of processed-but-uncommitted records the crash hits.
    settings = settings.model_copy(update={"commit_interval_s": CRASH_COMMIT_INTERVAL_S})
    worker = processes.start("worker", settings)
    with sink_thread(settings, ch_client) as sink:
        _warm_up(publisher, watcher, events, processes)
        traffic = Traffic(publisher, events[WARMUP_EVENTS:], RATE).start()

        def flowing() -> bool:
            watcher.poll()
            return len(watcher.event_ids) >= WARMUP_EVENTS + CRASH_AFTER

        wait_until(flowing, "traffic through the worker", START_TIMEOUT_S, processes)
        assert traffic.alive(), "traffic ended before the crash: nothing was tested mid-stream"
        processes.kill(worker)
        print(f"\nworker SIGKILLed after {len(watcher.event_ids)} of {CRASH_EVENTS} events")
        processes.start("worker", settings)
        traffic.join(START_TIMEOUT_S)
        assert traffic.accepted == CRASH_EVENTS - WARMUP_EVENTS
        assert publisher.flush(FLUSH_TIMEOUT_S), publisher.stats
        wait_drained(watcher, settings, calls=CRASH_EVENTS, dead_letters=0, processes=processes)
    inserted = sink.sink.stats().written(CALLS_TABLE)
    replayed = watcher.call_events - CRASH_EVENTS
    print(f"the restarted worker replayed {replayed} events; the sink inserted {inserted} rows")
    assert inserted == watcher.call_events  # the replays reached ClickHouse; FINAL collapses them
    _assert_exactly_once(stored_counts(ch_client, settings.database), CRASH_EVENTS)


def test_sink_killed_mid_stream_loses_and_double_counts_nothing(
    settings: Settings, processes: ProcessGroup, watcher: TopicWatcher, publisher: Publisher
) -> None:
    events = simulated_events(CRASH_EVENTS, seed=14)
    processes.start("worker", settings)
    sink = processes.start("sink", settings)  # `llmwatch sink`, on the chdb folder settings.dsn
    _warm_up(publisher, watcher, events, processes)

    def inserted(more_than: int) -> Callable[[], bool]:
        return lambda: _sink_committed(settings) > more_than

    wait_until(inserted(0), "the sink's first insert", START_TIMEOUT_S, processes)
    traffic = Traffic(publisher, events[WARMUP_EVENTS:], RATE).start()
    warm = _sink_committed(settings)
    wait_until(inserted(warm), "the sink to insert traffic", START_TIMEOUT_S, processes)
    assert traffic.alive(), "traffic ended before the crash: nothing was tested mid-stream"
    processes.kill(sink)
    print(f"\nsink SIGKILLed after committing {_sink_committed(settings)} calls records")
    sink = processes.start("sink", settings)
    traffic.join(START_TIMEOUT_S)
    assert traffic.accepted == CRASH_EVENTS - WARMUP_EVENTS
    assert publisher.flush(FLUSH_TIMEOUT_S), publisher.stats
    wait_drained(watcher, settings, calls=CRASH_EVENTS, dead_letters=0, processes=processes)
    assert sink.stop() == 0  # SIGTERM: flush, commit, leave; then the chdb folder is free
    with clickhouse(settings.dsn) as client:
        _assert_exactly_once(stored_counts(client, settings.database), CRASH_EVENTS)
