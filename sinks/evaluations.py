"""Evaluation runs in ClickHouse: ``llm_eval_runs`` (one row per run) and ``llm_eval_results`` (one per
case, seed and metric), written by ``llmwatch eval run`` and read back as a baseline.

Writes are direct inserts (a run is a batch job, not a stream); a run id written again replaces its rows
under ``FINAL`` (both tables are ReplacingMergeTree on the run id and the result's key). Reading a
baseline returns the per-metric ``case -> [value per seed]`` table that ``compare_runs`` pairs.
What can block: each function is one or two queries on the given client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streams.evaluation.suite import CaseResult
from streams.storage import EVAL_RESULTS_TABLE, EVAL_RUNS_TABLE

__all__ = ["EvalRun", "load_answers", "load_run", "load_table", "store_run"]

# The metric name of a result row that only keeps an answer (no score for it).
ANSWER_ONLY = "_answer"
RUN_COLUMNS = (
    "run_id",
    "started_at",
    "finished_at",
    "dataset",
    "dataset_sha256",
    "cases",
    "target_url",
    "model",
    "seeds",
    "temperature",
    "metrics",
    "baseline_run_id",
    "exit_code",
    "summary",
)
RESULT_COLUMNS = (
    "run_id",
    "case_id",
    "seed",
    "metric",
    "value",
    "label",
    "output_text",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "error",
    "created_at",
)


@dataclass(frozen=True, slots=True)
class EvalRun:
    run_id: str
    started_at_ms: int
    finished_at_ms: int
    dataset: str
    dataset_sha256: str
    cases: int
    target_url: str
    model: str
    seeds: tuple[int, ...]
    temperature: float
    metrics: tuple[str, ...]
    baseline_run_id: str = ""
    exit_code: int = 0
    summary: str = ""


def store_run(client: Any, database: str, run: EvalRun, results: Sequence[CaseResult]) -> int:
    """Insert the run's row and its results' rows; returns the number of result rows."""
    rows = [
        [
            run.run_id,
            r.case_id,
            r.seed,
            metric,
            float(value),
            "",
            r.output_text,
            r.latency_ms,
            r.input_tokens,
            r.output_tokens,
            r.error,
            run.finished_at_ms,
        ]
        for r in results
        # An answer with no score (a pairwise verdict dropped as inconsistent) keeps its text.
        for metric, value in (r.scores.items() or [(ANSWER_ONLY, 0.0)])
    ]
    if rows:
        client.insert(
            EVAL_RESULTS_TABLE, rows, database=database, column_names=list(RESULT_COLUMNS)
        )
    client.insert(
        EVAL_RUNS_TABLE,
        [
            [
                run.run_id,
                run.started_at_ms,
                run.finished_at_ms,
                run.dataset,
                run.dataset_sha256,
                run.cases,
                run.target_url,
                run.model,
                list(run.seeds),
                run.temperature,
                list(run.metrics),
                run.baseline_run_id,
                run.exit_code,
                run.summary,
            ]
        ],
        database=database,
        column_names=list(RUN_COLUMNS),
    )
    return len(rows)


def load_run(client: Any, database: str, run_id: str) -> dict[str, Any] | None:
    """The run's row as a dict, or None if no run has this id."""
    result = client.query(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM {database}.{EVAL_RUNS_TABLE} FINAL "
        "WHERE run_id = {id:String} LIMIT 1",
        parameters={"id": run_id},
    )
    if not result.result_rows:
        return None
    return dict(zip(RUN_COLUMNS, result.result_rows[0], strict=True))


def load_table(
    client: Any, database: str, run_id: str, metrics: Sequence[str]
) -> dict[str, dict[str, list[float]]]:
    """metric -> case id -> values in seed order, for the given metrics of one stored run."""
    result = client.query(
        f"SELECT metric, case_id, seed, value FROM {database}.{EVAL_RESULTS_TABLE} FINAL "
        "WHERE run_id = {id:String} AND metric IN {metrics:Array(String)} "
        "ORDER BY metric, case_id, seed",
        parameters={"id": run_id, "metrics": list(metrics)},
    )
    table: dict[str, dict[str, list[float]]] = {m: {} for m in metrics}
    for metric, case_id, _seed, value in result.result_rows:
        table[metric].setdefault(case_id, []).append(float(value))
    return table


def load_answers(client: Any, database: str, run_id: str) -> dict[tuple[str, int], str]:
    """(case id, seed) -> the target's answer in one stored run (for pairwise judging)."""
    result = client.query(
        f"SELECT case_id, seed, any(output_text) FROM {database}.{EVAL_RESULTS_TABLE} FINAL "
        "WHERE run_id = {id:String} GROUP BY case_id, seed",
        parameters={"id": run_id},
    )
    return {(str(case), int(seed)): str(text) for case, seed, text in result.result_rows}
