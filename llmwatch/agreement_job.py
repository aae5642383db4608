"""``llmwatch eval agreement``: judge-versus-human agreement per rubric, computed and stored.

Reads the pairs the Quality dashboard's live panel reads (``dashboards.quality_sql.pairs_sql``: calls
scored by the judge and by a person under the rubric's name, matched by trace), computes weighted kappa
and Spearman with bootstrap intervals (``streams.evaluation.agreement``), and stores one
``llm_judge_agreement`` row per rubric with the rubric's minimum kappa and whether it is met. A rubric
with a numeric scale is ordinal (quadratic weights, levels min..max); names that are not rubrics of
this deployment (e.g. a plain "thumbs") are skipped. What can block: two queries and one insert.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Final

from llmwatch.evaluation import load_all_rubrics
from llmwatch.settings import Settings
from streams.evaluation.agreement import MIN_PAIRS, Agreement, agreement

__all__ = ["AGREEMENT_COLUMNS", "AgreementRow", "compute_and_store", "stored_row"]

# The columns of llm_judge_agreement (migration 0010), in insert order.
AGREEMENT_COLUMNS: Final = (
    "rubric",
    "computed_at",
    "window_days",
    "n",
    "kappa",
    "kappa_low",
    "kappa_high",
    "spearman",
    "spearman_low",
    "spearman_high",
    "weights",
    "min_kappa",
    "passes",
)


@dataclass(frozen=True, slots=True)
class AgreementRow:
    """One rubric's agreement, its minimum kappa, and whether its scores may drive alerts."""

    agreement: Agreement
    min_kappa: float
    passes: bool


def compute_and_store(settings: Settings, days: int) -> list[AgreementRow]:
    from dashboards.quality_sql import pairs_sql
    from sinks.clickhouse import connect
    from sinks.migrate import apply_migrations
    from streams.storage import AGREEMENT_TABLE

    rubrics = load_all_rubrics(settings)
    client = connect(settings.dsn)
    try:
        apply_migrations(client, settings.database)
        sql = pairs_sql(days).replace("llmwatch.", f"{settings.database}.")
        pairs: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
        for rubric, judge, human in client.query(sql).result_rows:
            pairs[rubric][0].append(float(judge))
            pairs[rubric][1].append(float(human))
        now = int(time.time() * 1000)
        rows: list[AgreementRow] = []
        for name in sorted(pairs):
            rubric = rubrics.get(name)
            judge, human = pairs[name]
            if rubric is None or len(judge) < 2:
                continue
            ordinal = not rubric.labels or rubric.score_max > rubric.score_min
            levels = (
                [float(v) for v in range(int(rubric.score_min), int(rubric.score_max) + 1)]
                if ordinal
                else None
            )
            result = agreement(name, judge, human, ordinal=ordinal, levels=levels)
            passes = result.n >= MIN_PAIRS and result.passes(rubric.min_kappa)
            rows.append(AgreementRow(result, rubric.min_kappa, passes))
        if rows:
            client.insert(
                AGREEMENT_TABLE,
                [list(stored_row(row, now, days).values()) for row in rows],
                column_names=list(AGREEMENT_COLUMNS),
                database=settings.database,
            )
    finally:
        client.close()
    return rows


def stored_row(row: AgreementRow, now_ms: int, days: int) -> dict[str, object]:
    """The ``llm_judge_agreement`` row of one rubric's agreement (:data:`AGREEMENT_COLUMNS` order)."""
    a = row.agreement
    values = (
        a.rubric,
        now_ms,
        days,
        a.n,
        a.kappa,
        a.kappa_low,
        a.kappa_high,
        a.spearman,
        a.spearman_low,
        a.spearman_high,
        a.weights or "none",
        row.min_kappa,
        row.passes,
    )
    return dict(zip(AGREEMENT_COLUMNS, values, strict=True))
