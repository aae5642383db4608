"""Quality rows for the dashboards' tests: judge, metric and human scores, and agreement results.

A fixed plan over ``[end - 2h, end)``, times relative to ``end`` (callers pass "now", so TTLs and the
drop test's ``now()`` windows hold):
- rubric ``relevance`` (1-5, min_kappa 0.4): :data:`PER_HOUR` judge scores an hour; mean ~4.3 in the
  first hour, ~2.9 in the last (a drop), and :data:`HUMAN_PAIRS` of its calls also rated by a person
  within one point of the judge (kappa well above 0.4): the drop alert's gate is open.
- rubric ``correctness`` (1-5, min_kappa 0.4): steady scores and no human ratings: gate closed.
- metric ``bleu`` on the same calls, and thumbs feedback.
- one ``llm_judge_agreement`` row per rubric.
Every score row goes through ``Score.row()`` and the sink's ``insert_rows``, as the sink would write it.
Deterministic (a seeded RNG); the first rows are inserted twice (a replay, collapsed by FINAL).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Final

from clickhouse_connect.driver.client import Client

from llmwatch.agreement_job import AGREEMENT_COLUMNS, AgreementRow, stored_row
from sinks.rows import insert_rows
from streams.evaluation.agreement import Agreement
from streams.evaluation.items import SCORE_FIELDS, Score, ScoreSource
from streams.periodic import PIPELINE_METRIC_FIELDS, PIPELINE_METRICS_TABLE, metric_rows
from streams.storage import AGREEMENT_TABLE, SCORES_TABLE

PER_HOUR: Final = 60
HUMAN_PAIRS: Final = 30
SEED: Final = 11
JUDGE: Final = "gpt-4o-mini"


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _score(
    rubric: str, source: ScoreSource, trace: int, value: float, at: datetime, **extra: object
) -> Score:
    fields: dict[str, object] = {
        "name": rubric,
        "source": source,
        "evaluator": JUDGE if source is ScoreSource.JUDGE else "sacrebleu",
        "score_value": value,
        "label": "pass" if value >= 3 else "fail",
        "explanation": "seeded",
        "event_id": f"e{trace}",
        "trace_id": f"{trace:032x}",
        "span_id": f"{trace:016x}",
        "service": "checkout-bot",
        "environment": "production",
        "provider_name": "openai",
        "model": "gpt-4o",
        "prompt_name": "answer",
        "prompt_version": "v8" if trace % 2 else "v7",
        "judge_model": JUDGE if source is ScoreSource.JUDGE else "",
        "judge_family": "openai" if source is ScoreSource.JUDGE else "",
        "min_kappa": 0.4 if source is ScoreSource.JUDGE else 0.0,
        "cost_usd": 0.0004 if source is ScoreSource.JUDGE else 0.0,
        "start_time_ms": _ms(at) - 2_000,
        "scored_at_ms": _ms(at),
    }
    fields.update(extra)
    return Score.model_validate(fields)


def first_labels(client: Client, database: str, start: datetime, end: datetime) -> dict[str, str]:
    """The first value of each dashboard filter, as a user picking the first of each sees them (the
    rollups' values narrowed by the filters before, like ``dashboards.panels.filter_variables``)."""
    chosen: dict[str, str] = {}
    for column in ("environment", "service", "provider_name", "model", "prompt_version"):
        narrowing = "".join(f" AND {c} = {{{c}:String}}" for c in chosen)
        rows = client.query(
            f"SELECT min({column}) FROM {database}.llm_rollup_1m FINAL "
            "WHERE window_start >= {start:DateTime64(3)} AND window_start < {end:DateTime64(3)} "
            f"AND {column} != ''{narrowing}",
            parameters={"start": start, "end": end, **chosen},
        ).result_rows
        chosen[column] = str(rows[0][0])
    return chosen


def quality_scores(
    start: datetime, end: datetime, labels: dict[str, str] | None = None
) -> list[Score]:
    """The plan's scores (see the module docstring); every other call carries ``labels`` (the
    filters' first values) so that a dashboard narrowed to them still shows scores."""
    rng = random.Random(SEED)
    scores: list[Score] = []
    step = timedelta(hours=1) / PER_HOUR
    for index in range(2 * PER_HOUR):
        at = start + step * index
        last_hour = at >= end - timedelta(hours=1)
        trace = index + 1
        extra: dict[str, object] = dict(labels or {}) if index % 2 else {}
        relevance = min(5, max(1, round(rng.gauss(2.9 if last_hour else 4.3, 0.6))))
        scores.append(_score("relevance", ScoreSource.JUDGE, trace, relevance, at, **extra))
        if index < HUMAN_PAIRS:
            human = min(5, max(1, relevance + rng.choice((-1, 0, 0, 0, 1))))
            user = {**extra, "evaluator": f"user-{index}"}
            scores.append(_score("relevance", ScoreSource.HUMAN, trace, human, at, **user))
            scores.append(_score("thumbs", ScoreSource.HUMAN, trace, float(human >= 3), at, **user))
        correctness = min(5, max(1, round(rng.gauss(3.8, 0.7))))
        scores.append(_score("correctness", ScoreSource.JUDGE, trace, correctness, at, **extra))
        bleu = rng.uniform(0.2, 0.6)
        scores.append(_score("bleu", ScoreSource.METRIC, trace, bleu, at, **extra))
    return scores


def seed_quality_tables(
    client: Client, database: str, start: datetime, end: datetime
) -> dict[str, int]:
    """Insert the plan's rows (migration 0010 must be applied); rows per table, replays included."""
    labels = first_labels(client, database, start, end)
    rows = [s.row() for s in quality_scores(start, end, labels)]
    inserted = insert_rows(client, database, SCORES_TABLE, rows, SCORE_FIELDS)
    inserted += insert_rows(client, database, SCORES_TABLE, rows[:20], SCORE_FIELDS)  # a replay
    kappa = 0.8
    measured = Agreement(
        "relevance", HUMAN_PAIRS, kappa, kappa - 0.15, 0.9, kappa, kappa - 0.15, 0.9, "quadratic"
    )
    agreement = [stored_row(AgreementRow(measured, 0.4, True), _ms(end) - 60_000, 30)]
    agreed = insert_rows(client, database, AGREEMENT_TABLE, agreement, AGREEMENT_COLUMNS)
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
        ("sampling_sampled", (("rule", "support"),)): 240.0,
        ("sampling_capped", (("rule", "support"),)): 0.0,
        ("sampling_capped", (("rule", "overall"),)): 12.0,
        ("sampling_budget_biting", (("budget", "overall.calls_per_minute"),)): 1.0,
    }
    metrics = metric_rows("analyze", "analyze-0", _ms(start), _ms(end) - 30_000, counters)
    inserted_metrics = insert_rows(
        client, database, PIPELINE_METRICS_TABLE, metrics, PIPELINE_METRIC_FIELDS
    )
    return {SCORES_TABLE: inserted, AGREEMENT_TABLE: agreed, "analyze_metrics": inserted_metrics}
