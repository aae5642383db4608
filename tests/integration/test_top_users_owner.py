"""Top-K snapshots of a dead worker instance stop counting once its partitions move (issue 7, item 6).

The cost dashboard's top-users panel and 'User' variable run on chdb, on rows made by the worker's own
row builder (``streams.periodic.top_user_rows``) after the real migrations. Times derive from now.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

import pytest

from dashboards import cost
from dashboards.build import build_all
from dashboards.macros import QueryWindow, render_sql
from dashboards.runner import run_sql
from dashboards.walk import queries
from sinks.migrate import apply_migrations
from sinks.rows import insert_rows
from streams.analytics.topk import TopUser
from streams.periodic import TOP_USERS_FIELDS, TOP_USERS_TABLE, top_user_rows
from tests.clock import Clock

DATABASE: Final = "llmwatch"  # the dashboards' SQL names it
PANEL: Final = "Top users by cost (trailing hour)"
MINUTE_MS: Final = 60_000


def _sql(owner: str) -> str:
    return next(q.sql for q in queries(build_all()[cost.UID]) if q.owner == owner)


def _publish(
    client: Any, at_ms: int, instance: str, partitions: list[int], users: dict[str, float]
) -> None:
    top = [TopUser("acme", user, usd, 1, 0.0) for user, usd in users.items()]
    rows = top_user_rows(at_ms, instance, partitions, top)
    insert_rows(client, DATABASE, TOP_USERS_TABLE, rows, TOP_USERS_FIELDS)


def _panel_users(client: Any, clock: Clock) -> dict[str, float]:
    window = QueryWindow(clock.now - timedelta(hours=1), clock.now + timedelta(minutes=1), 60)
    result = run_sql(client, render_sql(_sql(PANEL), window, {}))
    user, usd = result.columns.index("user_id"), result.columns.index("cost_usd")
    return {row[user]: row[usd] for row in result.rows}


@pytest.fixture()
def client(ch_client: Any) -> Any:
    apply_migrations(ch_client, DATABASE)
    return ch_client


def test_a_dead_instance_counts_until_its_partitions_move(client: Any, clock: Clock) -> None:
    start = clock.ago_ms(minutes=10)
    _publish(client, start, "host:1", [0, 1], {"alice": 5.0, "bob": 1.0})
    _publish(client, start, "host:2", [2, 3], {"carol": 2.0})
    # host:1 is killed; until its partitions move, its last snapshot still counts.
    _publish(client, start + 2 * MINUTE_MS, "host:2", [2, 3], {"carol": 3.0})
    assert _panel_users(client, clock) == {"alice": 5.0, "bob": 1.0, "carol": 3.0}
    # host:3 restarts with host:1's partitions and its restored top-K (alice grew meanwhile).
    _publish(client, start + 2 * MINUTE_MS + 1, "host:3", [0, 1], {"alice": 6.0, "bob": 1.0})
    assert _panel_users(client, clock) == {"alice": 6.0, "bob": 1.0, "carol": 3.0}


def test_partitions_moving_in_the_same_minute_go_by_publish_time(client: Any, clock: Clock) -> None:
    minute = clock.ago_ms(minutes=5)
    _publish(client, minute + 1_000, "host:1", [0], {"alice": 5.0})
    _publish(client, minute + 30_000, "host:2", [0], {"alice": 7.0})
    assert _panel_users(client, clock) == {"alice": 7.0}


def test_a_rebalance_splits_partitions_and_both_instances_count(client: Any, clock: Clock) -> None:
    start = clock.ago_ms(minutes=10)
    _publish(client, start, "host:1", [0, 1], {"alice": 5.0})
    _publish(client, start + MINUTE_MS, "host:2", [1], {"bob": 1.0})
    assert _panel_users(client, clock) == {"alice": 5.0, "bob": 1.0}  # host:1 still owns 0


def test_rows_from_before_the_migration_still_count(client: Any, clock: Clock) -> None:
    minute = clock.ago_ms(minutes=3)
    client.command(
        f"INSERT INTO {DATABASE}.{TOP_USERS_TABLE} "
        "(snapshot_minute, instance, rank, tenant_id, user_id, cost_usd, requests, error_bound_usd)"
        f" VALUES (fromUnixTimestamp64Milli({minute}), 'old:1', 1, 'acme', 'dave', 4.0, 2, 0.0)"
    )
    _publish(client, minute, "host:2", [1], {"bob": 1.0})
    assert _panel_users(client, clock) == {"dave": 4.0, "bob": 1.0}


def test_the_user_variable_lists_only_counted_instances(client: Any, clock: Clock) -> None:
    start = clock.ago_ms(minutes=10)
    _publish(client, start, "host:1", [0], {"alice": 5.0})
    _publish(client, start + MINUTE_MS, "host:3", [0], {"bob": 1.0})
    window = QueryWindow(clock.now - timedelta(hours=1), clock.now, 60)
    result = run_sql(client, render_sql(_sql("user"), window, {}))
    assert [row[0] for row in result.rows] == ["bob"]
