"""The worker's restart state: what a restored monitor knows, and what it refuses to load.

Times derive from the ``clock`` fixture. The Kafka side (reading the state topic, kill -9 of a real
worker) is in tests/integration/test_worker_restart.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import orjson
import pytest

from llmwatch.embedded import DEMO_SLO_FILE
from streams.analytics.record import RecordAnalytics
from streams.ingest.validate import SourcePosition
from streams.monitor import StreamMonitor
from streams.periodic import TOP_USERS_TABLE, decode_snapshot
from streams.slo.alerts import decode_alert
from streams.slo.config import MINUTE_MS, load_slo_file, parse_slo_file
from streams.state import MAX_STATE_BYTES, decode_state, encode_state, restore_state
from streams.topics import TopicLayout
from tests.clock import Clock
from tests.unit.streams.test_stream_clock import REAL_USERS, burning_rows, call_row

APP_ID: Final = "test-worker"
SLOS: Final = """
version: 1
slos:
  - {name: bot-availability, objective: 0.99, sli: {type: availability}, selector: {service: bot}}
"""
REPO: Final = Path(__file__).resolve().parents[3]


def new_monitor(
    now_ms: int, slos: str = SLOS, clock: Callable[[], int] | None = None
) -> StreamMonitor:
    return StreamMonitor(
        RecordAnalytics(),
        parse_slo_file(slos),
        instance="t",
        started_ms=now_ms,
        clock=clock or (lambda: now_ms),
    )


def burning_monitor(now_ms: int) -> tuple[StreamMonitor, list[str]]:
    """A monitor that read partition 0 up to offset 9 and fired the fast and slow rules."""
    monitor = new_monitor(now_ms)
    rows = burning_rows(now_ms)
    for offset in range(10):
        monitor.observe(rows[offset * 20 : (offset + 1) * 20], SourcePosition("ev", 0, offset))
    fired = [decode_alert(record).alert_id for _, record in monitor.alerts(now_ms)]
    assert fired
    return monitor, fired


def saved(monitor: StreamMonitor, now_ms: int) -> bytes:
    record = monitor.state_record(APP_ID, now_ms)
    assert record is not None
    return record


def test_a_restored_incident_keeps_its_alert_id_and_resolves_once(clock: Clock) -> None:
    now_ms = clock.now_ms
    before, fired = burning_monitor(now_ms)
    wall = [now_ms]
    after = new_monitor(now_ms, clock=lambda: wall[0])
    assert restore_state(after, saved(before, now_ms), APP_ID)
    assert after.evaluator is not None and before.evaluator is not None
    assert after.evaluator.firing() == before.evaluator.firing()
    assert after.alerts(now_ms) == []  # still firing: no new alert id
    later = wall[0] = now_ms + 31 * MINUTE_MS  # both short windows (5m, 30m) past the incident
    healthy = [call_row(later - 60_000 + i * 1_000) for i in range(60)]
    after.observe(healthy, SourcePosition("ev", 0, 10))
    resolved = [decode_alert(record) for _, record in after.alerts(later)]
    assert sorted(a.alert_id for a in resolved if a.state == "resolved") == sorted(fired)
    assert after.alerts(later) == []


def test_records_in_the_saved_state_are_not_counted_again(clock: Clock) -> None:
    now_ms = clock.now_ms
    before, _ = burning_monitor(now_ms)
    after = new_monitor(now_ms)
    assert restore_state(after, saved(before, now_ms), APP_ID)
    assert after.observe([call_row(now_ms)], SourcePosition("ev", 0, 9)) is False  # replayed
    assert after.observe([call_row(now_ms)], SourcePosition("ev", 1, 0)) is True  # other partition
    assert after.observe([call_row(now_ms)], SourcePosition("ev", 0, 10)) is True
    assert after.replayed_records == 1
    assert after.evaluator is not None and before.evaluator is not None
    assert after.evaluator.status_rows(now_ms)[0]["total"] == (
        before.evaluator.status_rows(now_ms)[0]["total"] + 2
    )


def test_top_users_and_lifecycle_alerts_survive(clock: Clock) -> None:
    now_ms = clock.now_ms
    before, _ = burning_monitor(now_ms)
    before.flagged_models[("openai", "gpt-4-32k", "retired")] = 1  # as a monitor record adds it
    assert any(b"model-lifecycle" in record for _, record in before.alerts(now_ms))
    after = new_monitor(now_ms)
    assert restore_state(after, saved(before, now_ms), APP_ID)
    after.flagged_models[("openai", "gpt-4-32k", "retired")] = 1
    assert after.alerts(now_ms) == []  # the lifecycle alert was sent before the restart

    def top(monitor: StreamMonitor) -> list[tuple[str, float]]:
        rows = decode_snapshot(monitor.snapshot(now_ms))[TOP_USERS_TABLE]
        return [(row["user_id"], row["cost_usd"]) for row in rows]

    assert top(after) == top(before) and {user for user, _ in top(after)} == set(REAL_USERS)


def test_state_is_published_only_after_a_change(clock: Clock) -> None:
    now_ms = clock.now_ms
    monitor, _ = burning_monitor(now_ms)
    assert monitor.state_record(APP_ID, now_ms) is not None
    assert monitor.state_record(APP_ID, now_ms) is None
    monitor.observe([call_row(now_ms)], SourcePosition("ev", 0, 10))
    assert monitor.state_record(APP_ID, now_ms) is not None


def _edit_body(edit: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def apply(record: bytes) -> bytes:
        doc = orjson.loads(record)
        edit(doc["body"])
        return orjson.dumps(doc)

    return apply


CORRUPTIONS: Final[dict[str, Callable[[bytes], bytes]]] = {
    "empty": lambda record: b"",
    "truncated": lambda record: record[: len(record) // 2],
    "other version": lambda record: record.replace(b'"llmwatch_state":1', b'"llmwatch_state":2'),
    "other key": lambda record: record.replace(APP_ID.encode(), b"someone-else"),
    "bad offsets": _edit_body(lambda body: body.update(offsets=[["ev", -1, 3]])),
    "bad top-K": _edit_body(lambda body: body["top_users"].update(buckets=[[1, "x"]])),
    "bad bucket": _edit_body(
        lambda body: body["evaluator"]["slos"]["bot-availability"].update(minutes=[[1, "good"]])
    ),
    "bad firing": _edit_body(lambda body: body["evaluator"].update(fired=[["a", "b", "c"]])),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_an_unusable_state_is_ignored_and_the_monitor_starts_empty(
    corruption: str, clock: Clock
) -> None:
    now_ms = clock.now_ms
    before, _ = burning_monitor(now_ms)
    after = new_monitor(now_ms)
    assert not restore_state(after, CORRUPTIONS[corruption](saved(before, now_ms)), APP_ID)
    assert after.evaluator is not None and after.evaluator.firing() == {}
    assert after.observe([call_row(now_ms)], SourcePosition("ev", 0, 0)) is True
    assert after.evaluator.stats().observed == 1


@pytest.mark.parametrize(
    ("changed", "buckets_kept", "firing_kept"),
    [
        ("objective: 0.99", True, True),
        ("objective: 0.95", True, True),  # same SLI and selector: the counts still hold
        (
            "objective: 0.99, rules: [{name: other, long_window: 1h, short_window: 5m, "
            "burn_rate: 2, severity: page}]",
            True,
            False,
        ),
    ],
    ids=["same file", "new objective", "rule removed"],
)
def test_a_changed_slo_file_restores_what_still_means_the_same(
    changed: str, buckets_kept: bool, firing_kept: bool, clock: Clock
) -> None:
    now_ms = clock.now_ms
    before, _ = burning_monitor(now_ms)
    slos = SLOS.replace("objective: 0.99", changed)
    after = new_monitor(now_ms, slos)
    assert restore_state(after, saved(before, now_ms), APP_ID)
    assert after.evaluator is not None
    assert (after.evaluator.status_rows(now_ms)[0]["total"] > 0) is buckets_kept
    assert (("bot-availability", "fast") in after.evaluator.firing()) is firing_kept


def test_a_new_selector_drops_the_buckets(clock: Clock) -> None:
    now_ms = clock.now_ms
    before, _ = burning_monitor(now_ms)
    after = new_monitor(now_ms, SLOS.replace("service: bot", "service: other"))
    assert restore_state(after, saved(before, now_ms), APP_ID)
    assert after.evaluator is not None
    assert after.evaluator.status_rows(now_ms)[0]["total"] == 0


def test_decode_names_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="for 'a', not 'b'"):
        decode_state(encode_state("a", 1, {}), "b")


@pytest.mark.parametrize("slo_file", [DEMO_SLO_FILE, REPO / "config" / "slos.yaml"], ids=str)
def test_an_slo_file_with_full_windows_fits_easily(slo_file: Path, clock: Clock) -> None:
    """Every SLO with all its minute and hour buckets, and a top-K hour of 200 users a minute."""
    now_ms = clock.now_ms
    monitor = StreamMonitor(
        RecordAnalytics(),
        load_slo_file(slo_file),
        instance="t",
        started_ms=now_ms,
        clock=lambda: now_ms,
    )
    assert monitor.evaluator is not None
    state = monitor.evaluator.dump()
    for windows in state["slos"].values():  # 6 h + lateness of minutes, 30 d of hours
        windows["minutes"] = [[now_ms - m * MINUTE_MS, 900, 1000, 12.5, 3] for m in range(362)]
        windows["hours"] = [[now_ms - h * 3_600_000, 54000, 60000, 750.25, 180] for h in range(720)]
    top = [
        [now_ms - m * MINUTE_MS, [["t", f"u{i}", 1.5, 7, 0.0] for i in range(200)]]
        for m in range(60)
    ]
    body = {"offsets": [], "evaluator": state, "top_users": {"watermark": now_ms, "buckets": top}}
    record = encode_state(APP_ID, now_ms, body)
    assert record is not None
    print(f"\nstate record for {len(state['slos'])} SLOs, full windows: {len(record):,} bytes")
    assert len(record) < MAX_STATE_BYTES // 4


def test_the_state_topic_is_compacted_and_single_partition() -> None:
    layout = TopicLayout(prefix="acme", partitions=6)
    (spec,) = [s for s in layout.specs() if s.name == layout.state == "acme.state"]
    assert spec.partitions == 1
    assert spec.config()["cleanup.policy"] == "compact"
    assert spec.config()["segment.ms"] == str(3_600_000)
    compacted = {s.name for s in layout.specs() if s.config()["cleanup.policy"] == "compact"}
    # Besides the state, only the prompt registry is compacted (it keeps a key per move).
    assert compacted == {layout.state, layout.prompts}
