"""The hourly rollups (migration 0014) and the dashboards' hourly/1-minute split give the numbers of
the 1-minute table alone.

One chdb folder for the module. The migrations before 0014 are applied, then a few hours of 1-minute
rollup rows before now (the storage bench's generator, a slice of its dimension combinations, two
source records per combination-minute) and replayed copies of some rows (same key, newer
``ingested_at``: a sink replay). Migration 0014 then backfills ``llm_rollup_1h``. Checked:

- every complete hour of ``llm_rollup_1h FINAL`` equals ``llm_rollup_1m FINAL`` aggregated by hour,
  group by group (sums, sketch bins, minima, maxima), so replays are not double-counted;
- a late row added to an hour that ended 2 hours ago reaches the hourly table at the next refresh of
  the refreshable view (``SYSTEM REFRESH VIEW``), and the tables agree again;
- overview / cost panels over a 6-hour range with a 1-hour step (hourly branch) return what the same
  SQL on the 1-minute table alone returns.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import clickhouse_connect
import numpy as np
import pyarrow as pa
import pytest
from clickhouse_connect.driver.client import Client

from bench.storage_data import Combos, build_combos, rollup_batch
from dashboards import sql
from dashboards.build import build_all
from dashboards.macros import QueryWindow, render_sql
from dashboards.runner import resolve_variables, run_sql
from dashboards.walk import queries
from sinks.migrate import MIGRATIONS_DIR, apply_migrations, load_migrations

DB: Final = "llmwatch"  # the dashboards' SQL names llmwatch.<table>
HOURLY_MIGRATION: Final = 14
HOURS: Final = 5
COMBOS: Final = 24
REPLAYED_EVERY: Final = 7  # every 7th row is inserted a second time
MINUTE_MS: Final = 60_000
GROUP: Final = (
    "service, environment, provider_name, model, span_kind, prompt_name, prompt_version, variant, "
    "status"
)
SUMS: Final = (
    "requests", "errors", "rate_limited", "timeouts", "input_tokens", "output_tokens",
    "cache_read_input_tokens", "cache_creation_input_tokens", "reasoning_output_tokens",
    "priced_requests", "unpriced_requests", "latency_zero_count", "ttft_zero_count",
    "tokens_per_s_zero_count",
)  # fmt: skip
FLOAT_SUMS: Final = ("cost_usd", "reported_cost_usd", "latency_sum_ms")
MAPS: Final = ("error_types", "latency_bins", "ttft_bins", "tokens_per_s_bins")
# The panels checked on the hourly/1-minute split (sums, sketches, minima, per-step series).
PANELS: Final = {
    "llmwatch-overview": (
        "LLM calls", "p95 latency", "Spend", "Traffic by service", "Errors and rate limits",
        "LLM call latency p50 / p95 / p99", "Rate-limit headroom (requests left)",
    ),
    "llmwatch-cost": ("Spend", "Spend by model", "Cost by variant", "Calls without a price, by model"),
}  # fmt: skip


def _small_combos() -> Combos:
    full = build_combos(np.random.default_rng(7))
    keep = slice(0, COMBOS)
    return Combos(
        full.service[keep], full.environment[keep], full.model[keep], full.version[keep],
        full.error[keep], full.share[keep],
    )  # fmt: skip


def _insert(client: Client, data: pa.Table) -> None:
    client.insert_arrow(f"{DB}.llm_rollup_1m", data)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    folder = tmp_path_factory.mktemp("storage_rollups")
    early = folder / "migrations"
    early.mkdir()
    for migration in load_migrations(MIGRATIONS_DIR):
        if migration.version < HOURLY_MIGRATION:
            shutil.copy(migration.path, early / migration.name)
    ch = clickhouse_connect.get_client(dsn=f"chdb://{folder / 'chdb'}")
    try:
        apply_migrations(ch, DB, directory=early)
        now_ms = int(datetime.now(UTC).timestamp() * 1000) // MINUTE_MS * MINUTE_MS
        minutes = now_ms - np.arange(HOURS * 60, 0, -1, dtype=np.int64) * MINUTE_MS
        data = rollup_batch(np.random.default_rng(11), _small_combos(), minutes, 2, 0)
        _insert(ch, data)
        _insert(ch, data.take(pa.array(np.arange(0, data.num_rows, REPLAYED_EVERY))))
        assert apply_migrations(ch, DB) == ["0014_rollup_hourly.sql"]
        ch.command(f"SYSTEM STOP VIEW {DB}.llm_rollup_1h_refresh")  # refreshed on demand only
        yield ch
    finally:
        ch.close()


def _by_minute_table(client: Client, since: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    columns = ", ".join(
        [f"sum({c})" for c in SUMS]
        + [f"round(sum({c}), 6)" for c in FLOAT_SUMS]
        + [f"sumMap({c})" for c in MAPS]
        + ["min(ratelimit_remaining_requests_min)", "min(ratelimit_remaining_tokens_min)"]
        + ["max(max_sent_at)"]
    )
    rows = client.query(
        f"SELECT hour, {GROUP}, {columns} FROM (SELECT toStartOfHour(window_start) AS hour, * "
        f"FROM {DB}.llm_rollup_1m FINAL WHERE window_start >= {since} "
        f"AND window_start < toStartOfHour(now())) GROUP BY hour, {GROUP}"
    ).result_rows
    return {tuple(r[:10]): tuple(r[10:]) for r in rows}


def _hourly_table(client: Client, since: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    columns = ", ".join(
        list(SUMS)
        + [f"round({c}, 6)" for c in FLOAT_SUMS]
        + list(MAPS)
        + ["ratelimit_remaining_requests_min", "ratelimit_remaining_tokens_min", "max_sent_at"]
    )
    rows = client.query(
        f"SELECT window_start, {GROUP}, {columns} FROM {DB}.llm_rollup_1h FINAL "
        f"WHERE window_start >= {since} AND window_start < toStartOfHour(now())"
    ).result_rows
    return {tuple(r[:10]): tuple(r[10:]) for r in rows}


def _assert_same(client: Client, since: str) -> None:
    minute = _by_minute_table(client, since)
    hourly = _hourly_table(client, since)
    assert minute, "no complete hour in the 1-minute table: the fixture is wrong"
    assert set(hourly) == set(minute)
    differing = [key for key in minute if minute[key] != hourly[key]]
    assert not differing, f"{len(differing)} groups differ, e.g. {differing[0]}"


def test_backfilled_hours_equal_the_minute_table(client: Client) -> None:
    replayed = client.command(f"SELECT count() - uniqExact(source_offset) FROM {DB}.llm_rollup_1m")
    assert int(str(replayed)) > 0, "the fixture holds no replayed row"
    _assert_same(client, "toDateTime(0)")


def test_a_late_row_reaches_the_hourly_table_at_the_next_refresh(client: Client) -> None:
    hour = client.command("SELECT toUnixTimestamp(toStartOfHour(now()) - INTERVAL 2 HOUR)")
    hour_ms = int(str(hour)) * 1000
    late = rollup_batch(
        np.random.default_rng(5), _small_combos(), np.array([hour_ms + 30 * MINUTE_MS]), 1, 10**9
    )
    _insert(client, late)
    since = f"fromUnixTimestamp64Milli({hour_ms})"
    before = _hourly_table(client, since)
    client.command(f"SYSTEM START VIEW {DB}.llm_rollup_1h_refresh")
    client.command(f"SYSTEM REFRESH VIEW {DB}.llm_rollup_1h_refresh")
    client.command(f"SYSTEM WAIT VIEW {DB}.llm_rollup_1h_refresh")
    client.command(f"SYSTEM STOP VIEW {DB}.llm_rollup_1h_refresh")
    assert _hourly_table(client, since) != before, "the refresh changed nothing"
    _assert_same(client, "toDateTime(0)")


def _minute_only(query_sql: str) -> str:
    split = query_sql.replace(sql.ROLLUP, "llmwatch.llm_rollup_1m FINAL")
    assert split != query_sql, "the panel does not read the split rollups"
    return split


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize(
    ("uid", "title"), [(uid, title) for uid, titles in PANELS.items() for title in titles]
)
def test_panels_on_the_hourly_split_equal_the_minute_table(
    client: Client, uid: str, title: str
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    window = QueryWindow(now - timedelta(hours=HOURS) + timedelta(minutes=17), now, 3_600)
    doc = build_all()[uid]
    values = resolve_variables(client, doc, replace(window, interval_s=60))
    (query,) = [q for q in queries(doc) if q.kind == "panel" and q.owner == title]
    split = run_sql(client, render_sql(query.sql, window, values))
    minute = run_sql(client, render_sql(_minute_only(query.sql), window, values))
    assert minute.rows, f"{title}: no rows"
    assert _close(split.rows, minute.rows), f"{title}: {split.rows[:3]} != {minute.rows[:3]}"
    hourly_rows = client.command(f"SELECT count() FROM {DB}.llm_rollup_1h")
    assert int(str(hourly_rows)) > 0
