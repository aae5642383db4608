"""The ``llmwatch eval`` commands (golden regression suites, judge agreement) and ``llmwatch judge``.

- ``eval run``: answer a golden dataset with an OpenAI-compatible target, N seeds per case, score it,
  store the run in ClickHouse and, with ``--baseline``, compare it case by case. Exit codes: 0 no
  significant regression, 1 a significant regression against the baseline, 2 a usage or target error
  (the message names it). Prints a rich table; ``--junit PATH`` writes JUnit XML for CI.
- ``eval agreement``: judge-versus-human agreement per rubric, with bootstrap intervals, stored in
  ``llm_judge_agreement`` for the Quality dashboard.
- ``judge``: the judge service (``streams.evaluation.judge_service``) on the judge-requests topic.

Settings as every command: options, then ``LLMWATCH_*`` variables, then defaults. Keys
(``LLMWATCH_EVAL_API_KEY``, ``LLMWATCH_JUDGE_API_KEY``) are never options, so they stay out of shell
history and process lists.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer
from rich.table import Table

from llmwatch.cli_common import (
    BootstrapOpt,
    DataDirOpt,
    DsnOpt,
    _logging,
    _settings,
    console,
    err_console,
)
from llmwatch.settings import Settings

if TYPE_CHECKING:
    from streams.evaluation.compare import MetricComparison
    from streams.evaluation.golden import GoldenCase
    from streams.evaluation.scoring import GoldenScorer, PairwiseScorer
    from streams.evaluation.suite import CaseResult

__all__ = ["EXIT_OK", "EXIT_REGRESSION", "EXIT_USAGE", "register"]

EXIT_OK: Final = 0
EXIT_REGRESSION: Final = 1
EXIT_USAGE: Final = 2

eval_app = typer.Typer(
    help="Golden regression suites and judge-human agreement.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add ``eval`` (run, agreement) and ``judge`` to ``app``."""
    app.add_typer(eval_app, name="eval")
    app.command()(judge)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(EXIT_USAGE)


@eval_app.command("run")
def run(
    dataset: Annotated[
        Path, typer.Option("--dataset", help="Golden JSONL: {id, input, reference?} per line.")
    ],
    target_url: Annotated[
        str, typer.Option("--target-url", help="OpenAI-compatible base URL of the system tested.")
    ],
    model: Annotated[str, typer.Option("--model", help="Model name sent to the target.")],
    metric: Annotated[
        list[str],
        typer.Option(
            "--metric",
            help="exact, bleu, chrf, rouge_l, bertscore, cosine, or a rubric name; repeatable.",
        ),
    ],
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Runs per case (seeds 0..N-1).")] = 5,
    temperature: Annotated[
        float, typer.Option("--temperature", help="Sampling temperature.")
    ] = 0.7,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Default: a new id.")] = None,
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="Run id to compare with (paired).")
    ] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level.")] = 0.05,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Write JUnit XML here (for CI).")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1)] = 4,
    dsn: DsnOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run a golden dataset against a target, store it, and gate it against a baseline."""
    from sinks.clickhouse import connect
    from sinks.evaluations import EvalRun, load_answers, load_run, load_table, store_run
    from sinks.migrate import apply_migrations
    from streams.evaluation.compare import compare_runs
    from streams.evaluation.golden import DatasetError, load_dataset
    from streams.evaluation.junit import junit_xml, write_junit
    from streams.evaluation.metrics import METRIC_NAMES
    from streams.evaluation.suite import SuiteOptions, TargetError, metric_table, run_suite

    settings = _settings(clickhouse_dsn=dsn, data_dir=data_dir)
    _logging(settings)
    rubrics = _rubric_kinds(settings)
    unknown = [m for m in metric if m not in METRIC_NAMES and m not in rubrics]
    if unknown:
        raise _fail(
            f"unknown metric {unknown[0]!r}; metrics: {', '.join(METRIC_NAMES)}; "
            f"rubrics: {', '.join(sorted(rubrics))}"
        )
    pairwise = tuple(dict.fromkeys(m for m in metric if rubrics.get(m) == "pairwise"))
    if pairwise and baseline is None:
        raise _fail(f"{pairwise[0]!r} compares answers with a baseline's: give --baseline RUN_ID")
    try:
        golden = load_dataset(dataset)
        options = SuiteOptions(
            target_url=target_url,
            model=model,
            seeds=tuple(range(seeds)),
            metrics=tuple(m for m in dict.fromkeys(metric) if m not in pairwise),
            api_key=_secret(settings.eval_api_key),
            temperature=temperature,
            concurrency=concurrency,
        )
    except (DatasetError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    identifier = run_id or f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    client = connect(settings.dsn)
    try:
        apply_migrations(client, settings.database)
        if baseline is not None and load_run(client, settings.database, baseline) is None:
            raise _fail(f"baseline run {baseline!r} is not stored in {settings.database}")
        started = time.time()
        judge_fn = _judge_fn(settings) if options.rubric_metrics else None
        try:
            results = asyncio.run(run_suite(golden, options, judge=judge_fn))
        except (TargetError, ValueError) as exc:
            raise _fail(str(exc)) from exc
        preferences: dict[str, list[float | None]] = {}
        if pairwise and baseline is not None:
            answers = load_answers(client, settings.database, baseline)
            try:
                preferences = asyncio.run(
                    _prefer(settings, pairwise, golden.cases, results, answers)
                )
            except (TargetError, ValueError) as exc:
                raise _fail(str(exc)) from exc
        table = metric_table(results, options.metrics)
        means = {
            m: sum(sum(v) / len(v) for v in by_case.values()) / max(1, len(by_case))
            for m, by_case in table.items()
        }
        comparisons: list[MetricComparison] = []
        if baseline is not None:
            base = load_table(client, settings.database, baseline, options.metrics)
            try:
                comparisons = compare_runs(
                    {m: (base[m], table[m]) for m in options.metrics},
                    alpha=alpha,
                    preferences=preferences,
                )
            except ValueError as exc:
                raise _fail(f"cannot compare with baseline {baseline!r}: {exc}") from exc
        regression = any(c.regression for c in comparisons)
        code = EXIT_REGRESSION if regression else EXIT_OK
        finished = time.time()
        stored = store_run(
            client,
            settings.database,
            EvalRun(
                run_id=identifier,
                started_at_ms=int(started * 1000),
                finished_at_ms=int(finished * 1000),
                dataset=str(dataset),
                dataset_sha256=golden.sha256,
                cases=len(golden.cases),
                target_url=target_url,
                model=model,
                seeds=options.seeds,
                temperature=temperature,
                metrics=options.metrics,
                baseline_run_id=baseline or "",
                exit_code=code,
                summary="regression" if regression else "ok",
            ),
            results,
        )
    finally:
        client.close()
    console.print(_table(identifier, baseline, means, comparisons))
    console.print(
        f"run {identifier}: {len(golden.cases)} cases x {len(options.seeds)} seeds, "
        f"{stored} scores stored in {settings.database}"
    )
    if junit is not None:
        write_junit(
            junit,
            junit_xml(
                identifier,
                comparisons,
                means,
                baseline_run_id=baseline,
                seconds=finished - started,
            ),
        )
    if regression:
        worse = ", ".join(c.metric for c in comparisons if c.regression)
        err_console.print(f"[red]significant regression against {baseline}:[/red] {worse}")
    raise typer.Exit(code)


def _table(
    run_id: str,
    baseline: str | None,
    means: dict[str, float],
    comparisons: Sequence[MetricComparison],
) -> Table:
    if not comparisons:
        table = Table(title=f"eval run {run_id}")
        table.add_column("metric")
        table.add_column("mean", justify="right")
        for metric, mean in means.items():
            table.add_row(metric, f"{mean:.4f}")
        return table
    table = Table(title=f"eval run {run_id} vs baseline {baseline}")
    for name in ("metric", "baseline", "candidate", "diff", "95% CI", "p", "p (Holm)", "verdict"):
        table.add_column(name, justify="left" if name in ("metric", "verdict") else "right")
    for c in comparisons:
        verdict = "[red]REGRESSION[/red]" if c.regression else "[green]ok[/green]"
        table.add_row(
            c.metric,
            f"{c.baseline_mean:.4f}",
            f"{c.candidate_mean:.4f}",
            f"{c.mean_difference:+.4f}",
            f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}]",
            f"{c.p_value:.4g}",
            f"{c.p_adjusted:.4g}",
            verdict,
        )
    return table


def _secret(value: object) -> str:
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if callable(getter) else ""


def _rubric_kinds(settings: Settings) -> dict[str, str]:
    """Rubric name -> kind (pointwise or pairwise)."""
    from llmwatch.evaluation import load_all_rubrics

    return {name: rubric.kind for name, rubric in load_all_rubrics(settings).items()}


async def _prefer(
    settings: Settings,
    names: tuple[str, ...],
    cases: Sequence[GoldenCase],
    results: Sequence[CaseResult],
    answers: dict[tuple[str, int], str],
) -> dict[str, list[float | None]]:
    """Each pairwise rubric's verdict per (case, seed): this run's answer (A) against the baseline's
    (B), judged in both orders; None when the orders disagree. Stored as the result's score."""
    from llmwatch.evaluation import build_rubric_judge
    from streams.evaluation.suite import TargetError

    judge = build_rubric_judge(settings)
    by_id = {case.case_id: case for case in cases}
    gate = asyncio.Semaphore(settings.judge_concurrency)
    out: dict[str, list[float | None]] = {}
    for name in names:
        scorer = judge.pairwise_scorer(name)

        async def one(result: CaseResult, scorer: PairwiseScorer = scorer) -> float | None:
            base = answers.get((result.case_id, result.seed))
            if base is None:
                raise TargetError(
                    f"the baseline has no answer for case {result.case_id!r} seed {result.seed}"
                )
            async with gate:
                return await scorer(by_id[result.case_id], result.output_text, base)

        verdicts = list(await asyncio.gather(*(one(r) for r in results)))
        for result, verdict in zip(results, verdicts, strict=True):
            if verdict is not None:
                result.scores[name] = verdict
        out[name] = verdicts
    return out


def _judge_fn(settings: Settings) -> GoldenScorer:
    from llmwatch.evaluation import build_rubric_judge

    return build_rubric_judge(settings).golden_scorer()


@eval_app.command("agreement")
def agreement(
    days: Annotated[int, typer.Option("--days", min=1, help="Look back this many days.")] = 30,
    dsn: DsnOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Judge-human agreement per rubric (weighted kappa, Spearman, bootstrap CIs); stored."""
    from llmwatch.agreement_job import compute_and_store

    settings = _settings(clickhouse_dsn=dsn, data_dir=data_dir)
    rows = compute_and_store(settings, days)
    if not rows:
        err_console.print("no rubric has items scored by both the judge and a person")
        raise typer.Exit(EXIT_OK)
    table = Table(title=f"judge-human agreement, last {days} days")
    for name in ("rubric", "pairs", "kappa", "95% CI", "spearman", "95% CI", "min kappa", "gate"):
        table.add_column(name)
    for row in rows:
        a = row.agreement
        table.add_row(
            a.rubric,
            str(a.n),
            f"{a.kappa:.3f}",
            f"[{a.kappa_low:.3f}, {a.kappa_high:.3f}]",
            f"{a.spearman:.3f}",
            f"[{a.spearman_low:.3f}, {a.spearman_high:.3f}]",
            f"{row.min_kappa:g}",
            "[green]open[/green]" if row.passes else "[yellow]closed[/yellow]",
        )
    console.print(table)


def judge(bootstrap: BootstrapOpt = None, data_dir: DataDirOpt = None) -> None:
    """Score sampled calls with the LLM judge (rubrics, reference metrics) until Ctrl-C.

    Endpoint, model and key: LLMWATCH_JUDGE_BASE_URL, LLMWATCH_JUDGE_MODEL, LLMWATCH_JUDGE_API_KEY."""
    from llmwatch.evaluation import run_judge

    settings = _settings(bootstrap=bootstrap, data_dir=data_dir)
    _logging(settings)
    raise typer.Exit(run_judge(settings))
