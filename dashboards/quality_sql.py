"""The SQL of quality: judge-human agreement and the rolling-score drop test, shared by the Quality
dashboard (``dashboards.quality``) and its alert rule (``dashboards.quality_alerts``).

Agreement, live: per rubric, the calls both the judge and a person scored under the rubric's name
(``watch.feedback(trace_id, "relevance", 4)``, on the rubric's scale), matched by trace id, each side
averaged per (rubric, trace). Quadratic-weighted Cohen's kappa is computed with the moment identity
``1 - mean((j - h)^2) / (var(j) + var(h) + (mean(j) - mean(h))^2)`` (population variances), equal to
scikit-learn's ``cohen_kappa_score(weights="quadratic")`` when the ratings use the scale's levels
(``tests/unit/streams/evaluation/test_agreement.py`` checks the identity); Spearman is ClickHouse's
``rankCorr``. Bootstrap confidence intervals come from ``llmwatch eval agreement``
(``llm_judge_agreement``), which the dashboard shows beside the live figures.

Drop test: per rubric, the judge's scores of the last hour against the 24 hours before, as Welch's
z = (mean_recent - mean_before) / sqrt(var_recent / n_recent + var_before / n_before). The alert fires
below -3 (one-sided p ~ 0.0013: the rule looks every minute, so it is stricter than 0.05), only with at
least :data:`MIN_SCORES` scores on each side, and only for rubrics whose agreement gate holds: a rubric
with ``min_kappa`` > 0 needs at least :data:`MIN_PAIRS` judge-human pairs in the last
:data:`AGREEMENT_DAYS` days and a kappa of at least ``min_kappa`` before its scores may drive alerts.
Nothing here does I/O.
"""

from __future__ import annotations

from typing import Final

from dashboards.query import DATABASE
from streams.evaluation.agreement import MIN_PAIRS
from streams.storage import SCORES_TABLE

__all__ = [
    "AGREEMENT_DAYS",
    "DROP_Z",
    "MIN_PAIRS",
    "MIN_SCORES",
    "agreement_sql",
    "drop_sql",
]

SCORES: Final = f"{DATABASE}.{SCORES_TABLE} FINAL"
AGREEMENT_DAYS: Final = 30
MIN_SCORES: Final = 30
DROP_Z: Final = -3.0
RECENT_HOURS: Final = 1
BEFORE_HOURS: Final = 24


def _side(source: str, days: int) -> str:
    return (
        "SELECT name, trace_id, avg(score_value) AS value\n"
        f"    FROM {SCORES}\n"
        f"    WHERE source = '{source}' AND score_value IS NOT NULL AND trace_id != ''\n"
        f"      AND scored_at >= now64(3) - INTERVAL {days} DAY\n"
        "    GROUP BY name, trace_id"
    )


def pairs_sql(days: int = AGREEMENT_DAYS) -> str:
    """(rubric, judge, human): one row per call both scored under the rubric's name."""
    return (
        "SELECT j.name AS rubric, j.value AS judge, h.value AS human\n"
        f"FROM ({_side('judge', days)}) AS j\n"
        f"INNER JOIN ({_side('human', days)}) AS h\n"
        "    ON j.name = h.name AND j.trace_id = h.trace_id"
    )


def agreement_sql(days: int = AGREEMENT_DAYS) -> str:
    """Per rubric: pairs, quadratic-weighted kappa (moment identity) and Spearman (rankCorr)."""
    return (
        "SELECT rubric, count() AS pairs,\n"
        "    1 - avg(pow(judge - human, 2))\n"
        "        / nullIf(varPop(judge) + varPop(human) + pow(avg(judge) - avg(human), 2), 0)"
        " AS kappa,\n"
        "    if(count() > 1, rankCorr(judge, human), NULL) AS spearman\n"
        f"FROM ({pairs_sql(days)})\n"
        "GROUP BY rubric"
    )


def drop_stats_sql() -> str:
    """Per judged rubric: recent and earlier means, variances and counts, the gate, and z."""
    window = f"scored_at >= now64(3) - INTERVAL {RECENT_HOURS} HOUR"
    return (
        "SELECT s.name AS rubric, m1, m0, n1, n0, s.min_kappa AS min_kappa,\n"
        "    a.pairs AS pairs, a.kappa AS kappa,\n"
        "    (m1 - m0) / sqrt(greatest(v1 / n1 + v0 / n0, 1e-12)) AS z,\n"
        f"    n1 >= {MIN_SCORES} AND n0 >= {MIN_SCORES}\n"
        f"        AND (s.min_kappa <= 0 OR (a.pairs >= {MIN_PAIRS} AND a.kappa >= s.min_kappa))"
        " AS gated_in\n"
        "FROM (\n"
        "    SELECT name,\n"
        "        avgIf(score_value, recent) AS m1, varSampIf(score_value, recent) AS v1,\n"
        "        countIf(recent) AS n1,\n"
        "        avgIf(score_value, NOT recent) AS m0, varSampIf(score_value, NOT recent) AS v0,\n"
        "        countIf(NOT recent) AS n0,\n"
        "        max(min_kappa) AS min_kappa\n"
        "    FROM (\n"
        f"        SELECT name, assumeNotNull(score_value) AS score_value, min_kappa,"
        f" {window} AS recent\n"
        f"        FROM {SCORES}\n"
        "        WHERE source = 'judge' AND score_value IS NOT NULL\n"
        f"          AND scored_at >= now64(3) - INTERVAL {RECENT_HOURS + BEFORE_HOURS} HOUR)\n"
        "    GROUP BY name) AS s\n"
        f"LEFT JOIN ({agreement_sql()}) AS a ON a.rubric = s.name"
    )


def drop_sql() -> str:
    """The alert query: (rubric, z) for gated-in rubrics only; the rule fires when z < DROP_Z."""
    return f"SELECT rubric, z\nFROM ({drop_stats_sql()})\nWHERE gated_in"
