"""A golden regression suite run: every case, once per seed, against an OpenAI-compatible target.

``run_suite`` sends each (case, seed) as one chat completion (the seed as the request's ``seed``, the
temperature as given), at most ``concurrency`` at a time, and scores every answer with the requested
metrics: the reference metrics of ``streams.evaluation.metrics`` (``exact``, ``bleu``, ``chrf``,
``rouge_l``, ``bertscore``, ``cosine``; they need the case's reference) and rubric names, scored by the
judge (``streams.evaluation.scoring``) as the rubric's normalized score in [0, 1], or 1/0 for a rubric
with a pass label. :func:`metric_table` turns results into the per-metric ``case -> [value per seed]``
shape that ``streams.evaluation.compare.compare_runs`` pairs with a baseline.

Errors: a target that fails (after the client's retries) or answers nothing is a :class:`TargetError`
naming the case, the seed and the cause, raised after the run, since a comparison with holes is not one.
What can block: the target's and the judge's HTTP calls (each bounded by ``timeout_s``) and the
metrics' CPU time (BERTScore: tens of ms per answer).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from streams.evaluation.golden import GoldenCase, GoldenDataset
from streams.evaluation.metrics import METRIC_NAMES, score_metrics

__all__ = [
    "CaseResult",
    "SuiteOptions",
    "TargetError",
    "metric_table",
    "run_suite",
]

DEFAULT_CONCURRENCY: Final = 4
DEFAULT_TIMEOUT_S: Final = 60.0
TARGET_RETRIES: Final = 2

# (rubric name, case, the target's answer) -> the rubric's value in [0, 1].
JudgeFn = Callable[[str, GoldenCase, str], Awaitable[float]]


class TargetError(RuntimeError):
    """The target could not answer every case: the run cannot be compared."""


@dataclass(frozen=True, slots=True)
class SuiteOptions:
    target_url: str
    model: str
    seeds: tuple[int, ...]
    # Reference metrics and pointwise rubrics (none: only answer, e.g. for pairwise judging).
    metrics: tuple[str, ...]
    api_key: str = ""
    temperature: float = 0.7
    max_tokens: int | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if not self.target_url.startswith(("http://", "https://")):
            raise ValueError(f"target URL must be http(s)://..., got {self.target_url!r}")
        if not self.model:
            raise ValueError(f"model must be non-empty, got {self.model!r}")
        if not self.seeds:
            raise ValueError("at least one seed is needed, got none")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must differ, got {list(self.seeds)!r}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency!r}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be in [0, 2], got {self.temperature!r}")

    @property
    def reference_metrics(self) -> tuple[str, ...]:
        return tuple(m for m in self.metrics if m in METRIC_NAMES)

    @property
    def rubric_metrics(self) -> tuple[str, ...]:
        return tuple(m for m in self.metrics if m not in METRIC_NAMES)


@dataclass(slots=True)
class CaseResult:
    case_id: str
    seed: int
    output_text: str = ""
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    error: str = ""
    scores: dict[str, float] = field(default_factory=dict)


async def _answer(client: Any, case: GoldenCase, seed: int, options: SuiteOptions) -> CaseResult:
    result = CaseResult(case.case_id, seed)
    started = time.perf_counter()
    try:
        kwargs: dict[str, Any] = {
            "model": options.model,
            "messages": list(case.messages),
            "seed": seed,
            "temperature": options.temperature,
        }
        if options.max_tokens is not None:
            kwargs["max_tokens"] = options.max_tokens
        response = await client.chat.completions.create(**kwargs)
    except Exception as exc:  # openai.APIError and transport errors: reported as target errors
        result.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        return result
    result.latency_ms = (time.perf_counter() - started) * 1000
    choices = getattr(response, "choices", None) or []
    content = choices[0].message.content if choices else None
    if not isinstance(content, str):
        result.error = "the target answered without text content"
        return result
    result.output_text = content
    usage = getattr(response, "usage", None)
    if usage is not None:
        result.input_tokens = int(usage.prompt_tokens or 0)
        result.output_tokens = int(usage.completion_tokens or 0)
    return result


async def run_suite(
    dataset: GoldenDataset, options: SuiteOptions, *, judge: JudgeFn | None = None
) -> list[CaseResult]:
    """Answer and score every (case, seed); raises TargetError if any answer failed."""
    if options.reference_metrics and not dataset.has_references:
        missing = [c.case_id for c in dataset.cases if c.reference is None][:5]
        raise ValueError(
            f"metrics {list(options.reference_metrics)} need a reference on every case; "
            f"cases without one: {missing}"
        )
    if options.rubric_metrics and judge is None:
        raise ValueError(f"rubrics {list(options.rubric_metrics)} need a judge endpoint")
    import openai

    client = openai.AsyncOpenAI(
        base_url=options.target_url,
        api_key=options.api_key or "unused",
        max_retries=TARGET_RETRIES,
        timeout=options.timeout_s,
    )
    gate = asyncio.Semaphore(options.concurrency)
    cases = {c.case_id: c for c in dataset.cases}

    async def one(case: GoldenCase, seed: int) -> CaseResult:
        async with gate:
            result = await _answer(client, case, seed, options)
            if not result.error and judge is not None:
                for rubric in options.rubric_metrics:
                    result.scores[rubric] = await judge(rubric, case, result.output_text)
            return result

    try:
        jobs = [one(case, seed) for case in dataset.cases for seed in options.seeds]
        results = list(await asyncio.gather(*jobs))
    finally:
        await client.close()
    failed = [r for r in results if r.error]
    if failed:
        first = failed[0]
        raise TargetError(
            f"{len(failed)} of {len(results)} answers failed; first: case {first.case_id!r} "
            f"seed {first.seed}: {first.error}"
        )
    if options.reference_metrics:
        refs = [cases[r.case_id].reference or "" for r in results]
        scored = score_metrics(options.reference_metrics, [r.output_text for r in results], refs)
        for result, values in zip(results, scored, strict=True):
            for value in values:
                result.scores[value.name] = value.value
    return results


def metric_table(
    results: Sequence[CaseResult], metrics: Sequence[str]
) -> dict[str, dict[str, list[float]]]:
    """metric -> case id -> values in seed order (the shape ``compare_runs`` pairs)."""
    table: dict[str, dict[str, list[tuple[int, float]]]] = {m: {} for m in metrics}
    for result in results:
        for metric in metrics:
            if metric in result.scores:
                table[metric].setdefault(result.case_id, []).append(
                    (result.seed, result.scores[metric])
                )
    return {
        metric: {case: [v for _, v in sorted(pairs)] for case, pairs in by_case.items()}
        for metric, by_case in table.items()
    }


def seeds_of(table: Mapping[str, Mapping[str, Sequence[float]]]) -> int:
    """The smallest number of seeds any case has (0 for an empty table)."""
    counts = [len(v) for by_case in table.values() for v in by_case.values()]
    return min(counts) if counts else 0
