"""The prompt tables on chdb: registry records and canary looks go through the sink's routes into
llm_prompts, llm_prompt_labels, llm_canary_verdicts and llm_canary_metrics; replays collapse, and an
unbounded interval is stored as NULL."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from producers.prompts.records import PromptVersionRecord
from producers.prompts.registry import RegistryState
from sinks.migrate import apply_migrations
from sinks.routes import default_routes
from sinks.rows import insert_rows
from streams.prompts.analyzer import CanaryAnalyzer
from streams.prompts.policy import DEFAULT_POLICY_FILE, load_policy
from streams.prompts.records import (
    CANARY_METRIC_FIELDS,
    CANARY_VERDICT_FIELDS,
    PROMPT_FIELDS,
    PROMPT_LABEL_FIELDS,
)
from streams.storage import (
    CANARY_METRICS_TABLE,
    CANARY_VERDICTS_TABLE,
    PROMPT_LABELS_TABLE,
    PROMPTS_TABLE,
)
from streams.topics import TopicLayout

DB = "prompts_t"
LAYOUT = TopicLayout("p")
COLUMNS = {
    PROMPTS_TABLE: PROMPT_FIELDS,
    PROMPT_LABELS_TABLE: PROMPT_LABEL_FIELDS,
    CANARY_VERDICTS_TABLE: CANARY_VERDICT_FIELDS,
    CANARY_METRICS_TABLE: CANARY_METRIC_FIELDS,
}


@pytest.fixture()
def client(ch_client: Any) -> Any:
    apply_migrations(ch_client, DB)
    return ch_client


def _store(client: Any, topic: str, value: bytes) -> None:
    for table, rows in default_routes(LAYOUT)[topic].split(value).items():
        if rows:
            insert_rows(client, DB, table, rows, COLUMNS[table])


def _count(client: Any, table: str) -> int:
    return int(client.query(f"SELECT count() FROM {DB}.{table} FINAL").result_rows[0][0])


def test_registry_and_canary_records_land_in_their_tables_once(client: Any, now_ms: int) -> None:
    state = RegistryState()
    v1 = PromptVersionRecord.create(name="bot", template="a {{ q }}", created_at_ms=now_ms)
    v2 = PromptVersionRecord.create(name="bot", template="b {{ q }}", created_at_ms=now_ms + 1)
    records: list[Any] = [v1, v2]
    state.apply_all(records)
    for ref, weight in (("1", 100), ("2", 10)):
        move = state.plan_label("bot", ref, "production", weight=weight, moved_by="ana",
                                reason="why", now_ms=now_ms)  # fmt: skip
        state.apply(move)
        records.append(move)
    analyzer = CanaryAnalyzer(load_policy(DEFAULT_POLICY_FILE), clock_ms=lambda: now_ms + 1_000)
    rng = np.random.default_rng(1)
    for record in records * 2:  # replayed
        _store(client, LAYOUT.prompts, record.to_json())
        analyzer.apply_registry(record)
    for i in range(600):
        canary = i % 10 == 0
        analyzer.add_call({
            "prompt_name": "bot", "prompt_version": (v2 if canary else v1).version,
            "start_time": now_ms + i, "status": "ok",
            "duration_ms": float(rng.lognormal(6.7, 0.5) * (3 if canary else 1)),
        })  # fmt: skip
    (decision,) = analyzer.due()
    for _ in range(2):  # replayed
        _store(client, LAYOUT.canary, decision.verdict.to_json())

    assert _count(client, PROMPTS_TABLE) == 2
    labels = client.query(
        f"SELECT revision, versions, weights, canary, action, moved_by, reason "
        f"FROM {DB}.{PROMPT_LABELS_TABLE} FINAL ORDER BY revision"
    ).result_rows
    assert [row[0] for row in labels] == [1, 2]
    assert labels[1][2] == [90, 10] and labels[1][3] == v2.version and labels[1][4] == "split"
    assert labels[1][5:] == ("ana", "why")
    (verdict,) = client.query(
        f"SELECT verdict, action, failed_metrics FROM {DB}.{CANARY_VERDICTS_TABLE} FINAL"
    ).result_rows
    assert verdict[0] == "fail" and verdict[1] == "rolled_back" and "latency_p95_ms" in verdict[2]
    assert _count(client, CANARY_METRICS_TABLE) == len(analyzer.policy.metrics)
    waiting = client.query(
        f"SELECT diff_low, diff_high, verdict FROM {DB}.{CANARY_METRICS_TABLE} FINAL "
        "WHERE metric = 'score:relevance'"
    ).result_rows
    assert waiting == [(None, None, "waiting")]
