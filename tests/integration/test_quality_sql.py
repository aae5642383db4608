"""The quality SQL on chdb over seeded scores: the drop test fires only for a gated-in rubric, the live
kappa equals the moment identity (and scikit-learn's quadratic kappa) on the same pairs, and
``llmwatch eval agreement`` stores bootstrap intervals and the gate."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
import yaml
from sklearn.metrics import cohen_kappa_score

from dashboards.alert_rules import EXPR_UID, RULES_PATH
from dashboards.quality_alerts import GROUP as QUALITY_GROUP
from dashboards.quality_sql import DROP_Z, agreement_sql, drop_sql, drop_stats_sql, pairs_sql
from llmwatch.agreement_job import compute_and_store
from llmwatch.settings import Settings
from sinks.migrate import apply_migrations
from streams.evaluation.agreement import quadratic_kappa_moments
from streams.storage import AGREEMENT_TABLE
from tests.unit.dashboards.seed_quality import HUMAN_PAIRS, seed_quality_tables


@pytest.fixture(scope="module")
def dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("quality") / "clickhouse"
    client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    try:
        apply_migrations(client, "llmwatch")
        end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        seed_quality_tables(client, "llmwatch", end - timedelta(hours=2), end)
        client.query(f"TRUNCATE TABLE llmwatch.{AGREEMENT_TABLE}")  # the job writes its own
    finally:
        client.close()
    yield f"chdb://{path}"


def _query(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    client = clickhouse_connect.get_client(dsn=dsn)
    try:
        return [tuple(row) for row in client.query(sql).result_rows]
    finally:
        client.close()


def test_the_drop_test_fires_only_for_the_rubric_people_agree_with(dsn: str) -> None:
    stats = {row[0]: row for row in _query(dsn, drop_stats_sql())}
    relevance, correctness = stats["relevance"], stats["correctness"]
    # (rubric, m1, m0, n1, n0, min_kappa, pairs, kappa, z, gated_in)
    assert relevance[1] < relevance[2] and relevance[8] < DROP_Z and relevance[9] == 1
    assert correctness[9] == 0  # no human pairs: its kappa gate stays closed
    assert [row[0] for row in _query(dsn, drop_sql())] == ["relevance"]


def test_live_kappa_is_the_quadratic_weighted_kappa_of_the_pairs(dsn: str) -> None:
    pairs = [(j, h) for rubric, j, h in _query(dsn, pairs_sql()) if rubric == "relevance"]
    assert len(pairs) == HUMAN_PAIRS
    judge, human = [p[0] for p in pairs], [p[1] for p in pairs]
    (rubric, n, kappa, spearman), *_ = _query(dsn, agreement_sql())
    assert (rubric, n) == ("relevance", HUMAN_PAIRS)
    assert kappa == pytest.approx(quadratic_kappa_moments(judge, human), abs=1e-9)
    levels = [1, 2, 3, 4, 5]
    sklearn = cohen_kappa_score(judge, human, weights="quadratic", labels=levels)
    if set(judge) | set(human) == set(levels):  # the identity needs every level present
        assert kappa == pytest.approx(sklearn, abs=1e-9)
    assert 0.5 < kappa <= 1.0 and 0.5 < spearman <= 1.0


def test_the_agreement_job_stores_intervals_and_the_gate(dsn: str, tmp_path: Path) -> None:
    settings = Settings(clickhouse_dsn=dsn, data_dir=tmp_path)
    (row,) = compute_and_store(settings, days=30)
    agreement = row.agreement
    assert (agreement.rubric, agreement.n, agreement.weights) == (
        "relevance",
        HUMAN_PAIRS,
        "quadratic",
    )
    assert agreement.kappa_low <= agreement.kappa <= agreement.kappa_high
    assert (row.min_kappa, row.passes) == (0.4, True)
    stored = _query(dsn, f"SELECT rubric, n, passes FROM llmwatch.{AGREEMENT_TABLE} FINAL")
    assert stored == [("relevance", HUMAN_PAIRS, True)]


def test_the_provisioned_alert_query_runs_and_names_the_dropping_rubric(dsn: str) -> None:
    doc = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))
    (group,) = [g for g in doc["groups"] if g["name"] == QUALITY_GROUP]
    (query,) = [q for q in group["rules"][0]["data"] if q["datasourceUid"] != EXPR_UID]
    sql = query["model"]["rawSql"].replace("$$", "$")  # the file escapes $ for Grafana
    rows = _query(dsn, sql)
    assert [rubric for rubric, _z in rows] == ["relevance"]
    assert rows[0][1] < DROP_Z
