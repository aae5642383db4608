"""llm_scores on chdb: the sink's route decodes score records, a replay counts once, a changed
thumbs-up replaces the old one, the per-minute view rolls up, and bad records are refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from sinks.migrate import apply_migrations
from sinks.routes import default_routes
from sinks.rows import insert_rows
from streams.evaluation.items import SCORE_FIELDS, Score, ScoreSource, encode_scores
from streams.storage import SCORES_1M_VIEW, SCORES_TABLE, SCORES_TTL_DAYS
from streams.topics import TopicLayout
from tests.clock import Clock

DB = "scores_t"
LAYOUT = TopicLayout("s")


@pytest.fixture()
def client(ch_client: Any) -> Any:
    apply_migrations(ch_client, DB)
    return ch_client


def _thumb(value: float, at_ms: int, user: str = "u1") -> Score:
    return Score(
        name="thumbs",
        source=ScoreSource.HUMAN,
        evaluator=user,
        score_value=value,
        label="positive" if value else "negative",
        trace_id="t1",
        service="bot",
        model="gpt-4o",
        prompt_version="v8",
        scored_at_ms=at_ms,
        target_id="t1",
    )


def _store(client: Any, scores: list[Score]) -> None:
    rows = default_routes(LAYOUT)[LAYOUT.scores].split(encode_scores(scores))[SCORES_TABLE]
    insert_rows(client, DB, SCORES_TABLE, rows, SCORE_FIELDS)


def _final(client: Any, sql: str) -> list[tuple[Any, ...]]:
    return list(client.query(sql.format(scores=f"{DB}.{SCORES_TABLE} FINAL")).result_rows)


def test_a_changed_thumb_replaces_the_old_one_and_replays_count_once(
    client: Any, clock: Clock
) -> None:
    now = clock.now_ms
    _store(client, [_thumb(1.0, now - 60_000), _thumb(1.0, now - 60_000, user="u2")])
    _store(client, [_thumb(0.0, now)])  # u1 changed their mind
    _store(client, [_thumb(0.0, now)])  # and the record was replayed
    rows = _final(client, "SELECT evaluator, score_value, label FROM {scores} ORDER BY evaluator")
    assert rows == [("u1", 0.0, "negative"), ("u2", 1.0, "positive")]


def test_the_minute_view_rolls_up_per_labels_and_name(client: Any, clock: Clock) -> None:
    minute = clock.now_ms // 60_000 * 60_000
    _store(client, [_thumb(1.0, minute + 1_000, user=f"u{i}") for i in range(3)])
    _store(client, [_thumb(0.0, minute + 2_000, user="u9")])
    rows = client.query(
        f"SELECT service, prompt_version, name, source, scores, valued, score_sum "
        f"FROM {DB}.{SCORES_1M_VIEW}"
    ).result_rows
    assert rows == [("bot", "v8", "thumbs", "human", 4, 4, 3.0)]


def test_the_table_keeps_scores_for_their_ttl(client: Any) -> None:
    ddl = client.query(f"SHOW CREATE TABLE {DB}.{SCORES_TABLE}").result_rows[0][0]
    assert f"toDateTime(scored_at) + toIntervalDay({SCORES_TTL_DAYS})" in ddl
    assert "ORDER BY (target, name, source, evaluator)" in ddl


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"", "empty scores record"),
        (b"{", "not JSON"),
        (b'{"llmwatch_scores": 9, "scores": []}', "got 9"),
        (b'{"llmwatch_scores": 1, "scores": {}}', "without a list of scores"),
        (b'{"llmwatch_scores": 1, "scores": [3]}', "a score must be an object, got int"),
    ],
)
def test_bad_records_are_refused_naming_what_is_wrong(value: bytes, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        default_routes(LAYOUT)[LAYOUT.scores].split(value)
