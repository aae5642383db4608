"""Scale-out on Kafka's own mechanism: worker processes in one consumer group share the partitions.

On real parts (the session's Tansu broker, ``llmwatch worker`` subprocesses, the sink on chdb), the
same input (simulated calls, times relative to now, as byte-identical batch records on all 8
partitions of the events topic) goes through:

- one worker (the reference run, once per module);
- two workers that share the 8 partitions;
- two workers, of which the one running the SLO monitor is SIGKILLed once both share the partitions;
  the survivor takes over all partitions (and the monitor) after the session timeout, more input
  arrives, the killed worker restarts and rejoins.

Each scaled run must store what the single worker stored, read as the dashboards read it: the same
event ids in ``llm_calls``, each once after FINAL, with the same content; the same rollup sums per
window and dimensions (``llm_rollup_1m``, ``llm_tenant_cost_1m``, ``llm_user_cost_1h``, FINAL) and the
same merged DDSketch quantiles; no dead letters. And the cost dashboard's top-users panel, which merges
the instances' top-K snapshots (``dashboards/cost.py``), must show the single worker's top users,
with two workers and after a kill and rejoin. That needs one top-K over every instance's rows (the
instance owning the monitor topic's partition computes it); per-instance top-K lists do not merge:
a user's calls are spread over partitions by trace, and a share below an instance's 20th is lost.

SLO budgets and burn rates must not split either. Every run uses one SLO file (written for the input):
a cost SLO whose budget the whole input overspends by 1.5 times its rule's factor, so that an instance
judging less than 2/3 of the spend (half, say) would not fire, and an availability SLO, both over
every call, with windows (1 h and 30 min) that hold all the input for the whole module. With two
workers, and after the monitor's owner is SIGKILLed (once its saved state covers the input it has
seen) and a worker rejoins, the cost alert fires exactly once, as with one worker, and the status
snapshot taken once all input is counted (``llm_slo_status``) has the single worker's good, total,
spent USD and burn rate in every window.

All runs write into one chdb folder, a database each, through a sink thread of this process.
Waits are on conditions with deadlines (``tests.integration.scale_harness``); the workers' metrics
snapshots (every second) tell which instance owns which partitions, and its status snapshots and
saved state (``<prefix>.state``) what the SLO monitor counted. About 1.5 minutes on 2 shared cores
(85 s measured): the reference and two-worker runs ~45 s together, the kill-and-rejoin run ~25 s
(6 s session timeout), pricing the input for the SLO file ~3 s.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from llmwatch.broker import TansuBroker
from llmwatch.settings import Settings
from streams.admin import ensure_topics
from streams.slo.config import HOUR_MS, load_slo_file, parse_duration
from tests.integration.pipeline_harness import (
    clickhouse,
    pipeline_settings,
    sink_thread,
    wait_until,
)
from tests.integration.scale_harness import (
    InputFeed,
    ScaleGroup,
    ScaleInput,
    ScaleWatcher,
    Worker,
    build_input,
    drain,
    feed_until,
    input_cost,
    processing,
)
from tests.integration.scale_queries import (
    SLO_MEASURES,
    SloTables,
    StoredTables,
    differences,
    panel_top_users,
    read_slo,
    read_tables,
)

pytestmark = pytest.mark.slow

PARTITIONS: Final = 8
EVENTS: Final = 4_000
EVENTS_PER_RECORD: Final = 10  # 400 records, 50 per partition
SEED: Final = 21
# Under 1,000 calls a minute: the top-K's Space-Saving buckets (capacity 1,000) stay exact.
SPAN: Final = timedelta(minutes=8)
SESSION_TIMEOUT_S: Final = 6.0  # the survivor takes over a killed worker's partitions after this
SNAPSHOT_INTERVAL_S: Final = 1.0  # metrics, top-K and SLO status snapshots: what the test sees
ALERT_INTERVAL_S: Final = 1.0  # SLO alert evaluations, each followed by a saved state if it moved
# Longer than the default: the killed worker leaves processed-but-uncommitted records to replay.
KILL_COMMIT_INTERVAL_S: Final = 2.0
UP_TIMEOUT_S: Final = 60.0
TAKEOVER_TIMEOUT_S: Final = 45.0
TOP_USERS: Final = 20  # rows of the cost dashboard's top-users panel
# The panel rounds costs to 4 places; sums taken in another order may round apart.
COST_TOL: Final = 1.5e-4
TopUsers = dict[tuple[str, str], tuple[Any, ...]]
# The test's SLOs, each over every call (every span kind); their windows hold all the input (from
# SPAN + 1 min to 1 min before the module starts) until 20 minutes after the module started.
COST_SLO: Final = "scale-cost"
AVAILABILITY_SLO: Final = "scale-availability"
LONG_WINDOW: Final = "1h"
SHORT_WINDOW: Final = "30m"
FAST_BURN: Final = 14.4  # the fast-burn factor (SRE workbook), of both SLOs' one rule
# The whole input spends this many times the cost rule's factor over the long window: an instance
# that judged less than 1/OVERSPEND of the spend (half of it, if budgets split) would not fire.
OVERSPEND: Final = 1.5
AVAILABILITY_OBJECTIVE: Final = 0.95


@dataclass(frozen=True, slots=True)
class Outcome:
    tables: StoredTables
    top_users: TopUsers
    forwarded: int  # call events on the calls topic, replays included
    slo: SloTables  # the status snapshot that counts every call, and the alert transitions


@dataclass(frozen=True, slots=True)
class SloSetup:
    path: Path
    cost_usd: float  # what the whole input spends
    usd_per_hour: float  # the cost SLO's budget


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scale-out")


@pytest.fixture(scope="module")
def store(folder: Path) -> Iterator[Any]:
    """One chdb client for the module (chdb: one folder per process); each run has a database."""
    with clickhouse(f"chdb://{folder / 'clickhouse'}") as client:
        yield client


@pytest.fixture(scope="module")
def moment() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def scale_input(moment: datetime) -> ScaleInput:
    return build_input(
        EVENTS,
        SEED,
        PARTITIONS,
        start=moment - SPAN - timedelta(minutes=1),
        end=moment - timedelta(minutes=1),
        events_per_record=EVENTS_PER_RECORD,
    )


@pytest.fixture(scope="module")
def slos(folder: Path, scale_input: ScaleInput) -> SloSetup:
    """The SLO file of every run: the cost budget is what the input spends / (OVERSPEND x factor)."""
    spent = input_cost(scale_input)
    assert spent > 0, "the input has no priced call"
    long_hours = parse_duration(LONG_WINDOW) / HOUR_MS
    budget = spent / (long_hours * OVERSPEND * FAST_BURN)
    rule = {
        "name": "fast",
        "long_window": LONG_WINDOW,
        "short_window": SHORT_WINDOW,
        "burn_rate": FAST_BURN,
        "severity": "page",
    }
    every_call = {"span_kind": None}
    doc = {
        "version": 1,
        "slos": [
            {
                "name": COST_SLO,
                "sli": {"type": "cost", "usd_per_hour": budget},
                "selector": every_call,
                "rules": [rule],
            },
            {
                "name": AVAILABILITY_SLO,
                "objective": AVAILABILITY_OBJECTIVE,
                "sli": {"type": "availability"},
                "selector": every_call,
                "rules": [rule],
            },
        ],
    }
    path = folder / "slos.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    load_slo_file(path)  # the workers' own check, before they start
    print(f"\nslos: the input spends {spent:.4f} USD; cost budget {budget:.4f} USD/h")
    return SloSetup(path, spent, budget)


def _settings(
    broker: TansuBroker, run: str, folder: Path, slos: SloSetup, **overrides: Any
) -> Settings:
    settings = pipeline_settings(
        broker.bootstrap,
        f"{run}{uuid.uuid4().hex[:8]}",
        folder / run / "data",
        database=run,
        partitions=PARTITIONS,
        session_timeout_s=SESSION_TIMEOUT_S,
        snapshot_interval_s=SNAPSHOT_INTERVAL_S,
        alert_interval_s=ALERT_INTERVAL_S,
        slo_file=slos.path,
        **overrides,
    )
    ensure_topics(broker.bootstrap, settings.layout.specs())
    return settings


def _wait_up(watcher: ScaleWatcher, workers: list[Worker], group: ScaleGroup) -> None:
    """Until each worker has published a snapshot: it runs (it may own nothing yet)."""

    def up() -> bool:
        watcher.poll()
        return all(worker.instance in watcher.instances for worker in workers)

    wait_until(up, f"{[w.name for w in workers]} to start", UP_TIMEOUT_S, group, watcher.__str__)


def _monitor_ran_on(watcher: ScaleWatcher, workers: list[Worker]) -> list[str]:
    """The workers whose latest snapshot claims partitions: the SLO monitor's owner (one, if any)."""
    return [worker.name for worker in workers if watcher.view(worker).owned]


def _outcome(store: Any, settings: Settings, watcher: ScaleWatcher, now: datetime) -> Outcome:
    return Outcome(
        tables=read_tables(store, settings.database),
        top_users=panel_top_users(store, settings.database, now),
        forwarded=watcher.outputs.call_events,
        slo=read_slo(store, settings.database, watcher.slo.evaluated_ms),
    )


@pytest.fixture(scope="module")
def single(
    broker: TansuBroker, folder: Path, store: Any, scale_input: ScaleInput, slos: SloSetup
) -> Outcome:
    """The reference: one worker owns all partitions."""
    settings = _settings(broker, "single", folder, slos)
    group = ScaleGroup(folder / "single" / "logs")
    watcher = ScaleWatcher(settings)
    try:
        worker = group.start_worker("a", settings)
        with sink_thread(settings, store):
            InputFeed(settings.bootstrap, settings.layout.events, scale_input).send_rest()
            drain(watcher, settings, scale_input.event_ids, [worker], group, slo_total=EVENTS)
        return _outcome(store, settings, watcher, datetime.now(UTC))
    finally:
        watcher.close()
        group.kill_all()  # before the next run: two cores


@pytest.fixture(scope="module")
def pair(
    broker: TansuBroker, folder: Path, store: Any, scale_input: ScaleInput, slos: SloSetup
) -> Outcome:
    """Two workers share the partitions for (most of) the input."""
    settings = _settings(broker, "pair", folder, slos)
    group = ScaleGroup(folder / "pair" / "logs")
    watcher = ScaleWatcher(settings)
    feed = InputFeed(settings.bootstrap, settings.layout.events, scale_input)
    try:
        workers = [group.start_worker(name, settings) for name in ("a", "b")]
        with sink_thread(settings, store):
            _wait_up(watcher, workers, group)
            feed_until(
                feed,
                watcher,
                lambda: processing(watcher, workers),
                "both workers to process input",
                group,
                step=PARTITIONS,
                keep=feed.remaining // 2,
            )
            print(f"\npair: both workers process input after {feed.sent} records")
            feed.send_rest()
            drain(watcher, settings, scale_input.event_ids, workers, group, slo_total=EVENTS)
            print(f"pair: the SLO monitor runs on {_monitor_ran_on(watcher, workers)}")
        return _outcome(store, settings, watcher, datetime.now(UTC))
    finally:
        watcher.close()
        group.kill_all()  # before the next run: two cores


def _assert_same_storage(scaled: Outcome, single: Outcome, events: int) -> None:
    got, want = scaled.tables, single.tables
    print(
        f"\nstored: {got.calls_final} calls FINAL ({got.calls_raw} rows before FINAL), "
        f"{len(got.rollups)} rollup groups; the workers forwarded {scaled.forwarded} call events "
        f"({scaled.forwarded - events} replayed)"
    )
    assert want.calls_final == want.calls_distinct == events  # the reference itself is complete
    assert got.calls_final == got.calls_distinct == events
    assert got.calls_raw >= got.calls_final
    assert got.dlq_final == want.dlq_final == 0
    assert got.calls.keys() == want.calls.keys()
    assert (
        differences(
            {(k,): v for k, v in got.calls.items()}, {(k,): v for k, v in want.calls.items()}
        )
        == []
    )
    for name in ("rollups", "tenant_cost", "user_cost"):
        mine, theirs = getattr(got, name), getattr(want, name)
        assert mine.keys() == theirs.keys(), name
        assert differences(mine, theirs) == [], name
    assert sum(row[0] for row in got.rollups.values()) == events  # requests


def test_two_workers_store_what_one_worker_stores(
    pair: Outcome, single: Outcome, scale_input: ScaleInput
) -> None:
    _assert_same_storage(pair, single, len(scale_input.event_ids))
    # The reference top-K is exact (no Space-Saving evictions) and full: the panel tests compare to it.
    assert len(single.top_users) == TOP_USERS
    assert {bound for _, _, bound in single.top_users.values()} == {0.0}


def _monitor_owner(
    watcher: ScaleWatcher, workers: list[Worker], feed: InputFeed, group: ScaleGroup
) -> Worker:
    """The worker that runs the SLO monitor, once the state it saved covers every record produced so
    far: its crash then loses nothing of the SLO windows (``streams.monitor`` bounds the loss of a
    crash by what was counted after the last saved state; that bound is not tested here)."""
    since_ms = time.time_ns() // 1_000_000
    events = watcher.settings.layout.events
    owners: list[Worker] = []

    def saved() -> bool:
        watcher.poll()
        if any(watcher.view(worker).snapshot_ms <= since_ms for worker in workers):
            return False
        owners[:] = [worker for worker in workers if watcher.view(worker).owned]
        offsets = watcher.slo.saved
        return len(owners) == 1 and all(
            offsets.get((events, partition), 0) >= sent
            for partition, sent in feed.next_offsets().items()
        )

    wait_until(
        saved, "the SLO monitor's owner to save a state covering the input", UP_TIMEOUT_S, group,
        watcher.__str__,
    )  # fmt: skip
    return owners[0]


@pytest.fixture(scope="module")
def rejoin(
    broker: TansuBroker, folder: Path, store: Any, scale_input: ScaleInput, slos: SloSetup
) -> Outcome:
    """Two workers share the partitions; the one running the SLO monitor is SIGKILLed, the survivor
    takes over all partitions (and the monitor) and processes more input alone; the killed worker
    restarts, rejoins and shares the rest."""
    settings = _settings(broker, "rejoin", folder, slos, commit_interval_s=KILL_COMMIT_INTERVAL_S)
    group = ScaleGroup(folder / "rejoin" / "logs")
    watcher = ScaleWatcher(settings)
    feed = InputFeed(settings.bootstrap, settings.layout.events, scale_input)
    third = len(scale_input.records) // 3
    try:
        pair = [group.start_worker(name, settings) for name in ("a", "b")]
        with sink_thread(settings, store):
            _wait_up(watcher, pair, group)
            feed_until(
                feed,
                watcher,
                lambda: processing(watcher, pair),
                "both workers to process input",
                group,
                step=PARTITIONS,
                keep=2 * third,
            )
            victim = _monitor_owner(watcher, pair, feed, group)
            survivor = next(worker for worker in pair if worker is not victim)
            group.kill(victim.child)
            killed_ms = time.time_ns() // 1_000_000
            print(
                f"\nrejoin: worker {victim.name}, the SLO monitor's owner, SIGKILLed after "
                f"{feed.sent} records"
            )

            # One record on every partition: only the survivor can forward them all.
            feed.send(PARTITIONS)

            def through() -> bool:
                watcher.poll()
                return feed.sent_ids <= watcher.outputs.event_ids

            wait_until(
                through, "the survivor to take over every partition", TAKEOVER_TIMEOUT_S, group,
                watcher.__str__,
            )  # fmt: skip
            took_s = (time.time_ns() // 1_000_000 - killed_ms) / 1e3
            print(f"rejoin: the survivor took over every partition {took_s:.1f} s after the kill")
            feed.send(feed.remaining - third)
            wait_until(through, "the survivor to process its input", UP_TIMEOUT_S, group)

            rejoined = group.start_worker(f"{victim.name}2", settings)
            _wait_up(watcher, [rejoined], group)
            feed_until(
                feed,
                watcher,
                lambda: processing(watcher, [rejoined]),
                "the restarted worker to rejoin and process input",
                group,
                step=PARTITIONS,
                keep=0,
            )
            print(f"rejoin: {rejoined.name} processes input after {feed.sent} records")
            feed.send_rest()
            drain(
                watcher, settings, scale_input.event_ids, [survivor, rejoined], group,
                slo_total=EVENTS,
            )  # fmt: skip
            owner = _monitor_ran_on(watcher, [survivor, rejoined])
            print(f"rejoin: the SLO monitor runs on {owner}")
        return _outcome(store, settings, watcher, datetime.now(UTC))
    finally:
        watcher.close()
        group.kill_all()  # before the next run: two cores


def test_a_killed_worker_rejoining_loses_and_double_counts_nothing(
    rejoin: Outcome, single: Outcome, scale_input: ScaleInput
) -> None:
    _assert_same_storage(rejoin, single, len(scale_input.event_ids))


def _top_user_differences(scaled: TopUsers, single: TopUsers) -> list[str]:
    """Users whose calls or cost (to the panel's 4 places) differ, or who are on one panel only."""
    out = []
    for user in sorted(scaled.keys() | single.keys()):
        a, b = scaled.get(user), single.get(user)
        if a is None or b is None or a[1] != b[1] or not math.isclose(a[0], b[0], abs_tol=COST_TOL):
            out.append(f"{user}: scaled (cost, calls, bound) {a}, single worker {b}")
    return out


def test_the_top_users_panel_merges_two_instances_into_the_single_workers_top_k(
    pair: Outcome, single: Outcome
) -> None:
    assert _top_user_differences(pair.top_users, single.top_users) == []


def test_the_top_users_panel_after_a_kill_and_rejoin_shows_the_single_workers_top_k(
    rejoin: Outcome, single: Outcome
) -> None:
    assert _top_user_differences(rejoin.top_users, single.top_users) == []


def _assert_same_slo(scaled: Outcome, single: Outcome, slos: SloSetup, events: int) -> None:
    got, want = scaled.slo, single.slo
    print(f"\nslo status: {got.status}\nslo alerts: {got.alerts}")
    windows = {
        (slo, "fast", w)
        for slo in (COST_SLO, AVAILABILITY_SLO)
        for w in (LONG_WINDOW, SHORT_WINDOW)
    }
    # The reference itself: one status snapshot counting every call once, spending what the input
    # spends, so that the cost rule burns at OVERSPEND x its factor and fires once, never resolving.
    assert want.status.keys() == windows, want.status
    total, spent, burn = (SLO_MEASURES.index(m) for m in ("total", "spent_usd", "burn_rate"))
    assert {values[total] for values in want.status.values()} == {events}
    cost_long = want.status[(COST_SLO, "fast", LONG_WINDOW)]
    assert math.isclose(cost_long[spent], slos.cost_usd, rel_tol=1e-9)
    assert math.isclose(cost_long[burn], OVERSPEND * FAST_BURN, rel_tol=1e-9)
    fired = [(slo, rule, state) for slo, rule, _, state in want.alerts]
    assert fired == [(COST_SLO, "fast", "firing")], want.alerts
    # The scaled run: the same status, the same single cost alert.
    assert got.status.keys() == windows, got.status
    assert differences(got.status, want.status) == []
    assert [(slo, rule, state) for slo, rule, _, state in got.alerts] == fired, got.alerts


def test_slo_budgets_and_burn_rates_do_not_split_across_two_workers(
    pair: Outcome, single: Outcome, slos: SloSetup
) -> None:
    _assert_same_slo(pair, single, slos, EVENTS)


def test_slo_state_survives_the_monitor_owners_kill_and_a_rejoin(
    rejoin: Outcome, single: Outcome, slos: SloSetup
) -> None:
    _assert_same_slo(rejoin, single, slos, EVENTS)
