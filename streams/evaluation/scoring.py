"""Scoring one sampled call: rubric verdicts from the judge, reference metrics, as ``llm_scores`` rows.

:class:`RubricJudge` is what ``llmwatch judge`` runs per judge request (``score``) and what
``llmwatch eval run`` calls per answer for rubric metrics (``golden_scorer``):

- every rubric the request names that applies to it (groundedness needs a retrieval context,
  correctness a reference) is sent to the judge as the rubric's chat messages (``streams.evaluation
  .rubric``), with temperature 0 and JSON output; a reply that does not parse is asked again up to
  ``parse_attempts`` times, then the item is poison (dead-lettered with the reason);
- a permanent judge error (a 4xx other than 429) is poison too; a transient one (429, 5xx, timeouts
  after the client's retries) propagates, so the service retries the item later and never commits past
  it;
- each verdict becomes one score row with the rubric version, the judge model and its family, and
  ``self_judged`` when the judge's family is the scored model's (logged once per pair, as a warning:
  judges prefer their own family's answers);
- reference metrics (``streams.evaluation.metrics``) run when the request has a reference, in a
  worker thread so that the event loop keeps serving other items.
Cost per score: the judge call's tokens priced with ``streams.analytics.cost`` (0 when the judge model
has no known price); the pipeline prices the same calls again from the SDK events for the cost
dashboard. What can block: the judge's HTTP calls (bounded by its timeout and retries) and metrics' CPU.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Final

from streams.evaluation.families import SELF_JUDGING_WARNING, model_family, self_judging
from streams.evaluation.golden import GoldenCase
from streams.evaluation.items import JudgeRequest, Score, ScoreSource
from streams.evaluation.judge_client import JudgeCallError, JudgeClient, JudgeReply
from streams.evaluation.judge_service import PoisonItem
from streams.evaluation.metrics import score_metrics
from streams.evaluation.rubric import (
    JudgeOutputError,
    Rubric,
    Verdict,
    consistent_preference,
    pairwise_messages,
)

__all__ = ["DEFAULT_PARSE_ATTEMPTS", "RubricJudge"]

log = logging.getLogger(__name__)

DEFAULT_PARSE_ATTEMPTS: Final = 2
EVAL_SERVICE: Final = "llmwatch-eval"

# (judge model, input tokens, output tokens) -> USD.
PriceFn = Callable[[str, int, int], float]
# (rubric name, case, answer) -> value in [0, 1], as ``streams.evaluation.suite.JudgeFn``.
GoldenScorer = Callable[[str, GoldenCase, str], Awaitable[float]]
# (case, candidate answer, baseline answer) -> 1.0 / 0.5 / 0.0, or None when inconsistent.
PairwiseScorer = Callable[[GoldenCase, str, str], Awaitable[float | None]]
PREFERENCE_VALUE: Final = {"A": 1.0, "tie": 0.5, "B": 0.0}


def _no_price(_model: str, _input: int, _output: int) -> float:
    return 0.0


class RubricJudge:
    """Rubric verdicts and reference metrics for judge requests (see the module docstring)."""

    def __init__(
        self,
        client: JudgeClient,
        rubrics: Mapping[str, Rubric],
        *,
        judge_model: str,
        clock_ms: Callable[[], int],
        price: PriceFn = _no_price,
        parse_attempts: int = DEFAULT_PARSE_ATTEMPTS,
    ) -> None:
        if parse_attempts < 1:
            raise ValueError(f"parse_attempts must be >= 1, got {parse_attempts!r}")
        self._client = client
        self.rubrics = dict(rubrics)
        self.judge_model = judge_model
        self.judge_family = model_family(judge_model)
        self._clock = clock_ms
        self._price = price
        self._parse_attempts = parse_attempts
        self._warned: set[tuple[str, str]] = set()
        self.counts: dict[str, int] = {
            "verdicts": 0,
            "unparsed_replies": 0,
            "skipped_unknown_rubric": 0,
            "skipped_not_applicable": 0,
            "self_judged": 0,
            "metric_scores": 0,
        }

    async def verdict(
        self, rubric: Rubric, messages: list[dict[str, str]]
    ) -> tuple[Verdict, float]:
        """The judge's verdict on one rubric's messages and its cost; PoisonItem if it cannot be had."""
        problem = ""
        cost = 0.0
        for _attempt in range(self._parse_attempts):
            try:
                reply: JudgeReply = await self._client.complete(messages, temperature=0.0)
            except JudgeCallError as exc:
                if exc.permanent:
                    raise PoisonItem(f"judge refused rubric {rubric.key}: {exc}") from exc
                raise
            cost += self._price(
                reply.model or self.judge_model, reply.input_tokens, reply.output_tokens
            )
            try:
                return rubric.parse(reply.text), cost
            except JudgeOutputError as exc:
                self.counts["unparsed_replies"] += 1
                problem = str(exc)
        raise PoisonItem(
            f"judge reply for rubric {rubric.key} unusable after {self._parse_attempts} "
            f"attempts: {problem}"
        )

    def _warn_self_judging(self, request: JudgeRequest) -> bool:
        if not self_judging(self.judge_model, request.model, request.provider_name):
            return False
        self.counts["self_judged"] += 1
        pair = (self.judge_model, request.model)
        if pair not in self._warned:
            self._warned.add(pair)
            log.warning(
                SELF_JUDGING_WARNING.format(
                    judge=self.judge_model, model=request.model, family=self.judge_family
                )
            )
        return True

    def _labels(self, request: JudgeRequest) -> dict[str, object]:
        return {
            "event_id": request.event_id,
            "trace_id": request.trace_id or "",
            "span_id": request.span_id or "",
            "response_id": request.response_id or "",
            "service": request.service,
            "environment": request.environment,
            "provider_name": request.provider_name or "",
            "model": request.model,
            "prompt_name": request.prompt_name or "",
            "prompt_version": request.prompt_version or "",
            "variant": request.variant or "",
            "start_time_ms": int(request.start_time.timestamp() * 1000),
        }

    async def score(self, request: JudgeRequest) -> list[Score]:
        """Every applicable rubric's verdict and every reference metric of one request."""
        scores: list[Score] = []
        labels = self._labels(request)
        self_judged = self._warn_self_judging(request) if request.rubrics else False
        for name in request.rubrics:
            rubric = self.rubrics.get(name)
            if rubric is None:
                self.counts["skipped_unknown_rubric"] += 1
                log.warning(
                    "judge request names unknown rubric %r; known: %s", name, sorted(self.rubrics)
                )
                continue
            if rubric.applies_to(request) is not None:
                self.counts["skipped_not_applicable"] += 1
                continue
            verdict, cost = await self.verdict(rubric, rubric.messages(request))
            self.counts["verdicts"] += 1
            scores.append(
                Score.model_validate(
                    {
                        **labels,
                        "name": rubric.name,
                        "source": ScoreSource.JUDGE,
                        "evaluator": self.judge_model,
                        "score_value": verdict.score,
                        "label": verdict.label,
                        "explanation": verdict.explanation[:2000],
                        "rubric_version": rubric.version,
                        "judge_model": self.judge_model,
                        "judge_family": self.judge_family,
                        "self_judged": self_judged,
                        "min_kappa": rubric.min_kappa,
                        "cost_usd": cost,
                        "scored_at_ms": self._clock(),
                    }
                )
            )
        if request.metrics and request.reference_text is not None:
            scores += await self._metrics(request, labels)
        return scores

    async def _metrics(self, request: JudgeRequest, labels: dict[str, object]) -> list[Score]:
        reference = request.reference_text or ""
        values = await asyncio.to_thread(
            score_metrics, request.metrics, [request.output_text], [reference]
        )
        now = self._clock()
        self.counts["metric_scores"] += len(values[0])
        return [
            Score.model_validate(
                {
                    **labels,
                    "name": value.name,
                    "source": ScoreSource.METRIC,
                    "evaluator": value.implementation,
                    "score_value": value.value,
                    "scored_at_ms": now,
                }
            )
            for value in values[0]
        ]

    async def pairwise(
        self, rubric: Rubric, request: JudgeRequest, output_a: str, output_b: str
    ) -> str | None:
        """ "A", "B" or "tie" when the judge gives the same verdict with the outputs in both orders;
        None when the two orders disagree (position bias: the pair is not counted)."""
        first, _ = await self.verdict(
            rubric, pairwise_messages(rubric, request, output_a, output_b)
        )
        swapped, _ = await self.verdict(
            rubric, pairwise_messages(rubric, request, output_b, output_a)
        )
        return consistent_preference(first, swapped)

    def pairwise_scorer(self, name: str) -> PairwiseScorer:
        """For ``llmwatch eval run``: the candidate's answer (A) against the baseline's (B) for one
        case: 1.0 candidate better, 0.5 tie, 0.0 baseline better, None inconsistent."""
        rubric = self.rubrics.get(name)
        if rubric is None or rubric.kind != "pairwise":
            raise ValueError(f"{name!r} is not a pairwise rubric; known: {sorted(self.rubrics)}")

        async def scorer(case: GoldenCase, candidate: str, baseline: str) -> float | None:
            request = JudgeRequest(
                event_id=f"golden-{case.case_id}",
                service=EVAL_SERVICE,
                start_time=datetime.now(UTC),
                input_text=case.input_text,
                reference_text=case.reference,
                rubrics=(name,),
            )
            preference = await self.pairwise(rubric, request, candidate, baseline)
            return None if preference is None else PREFERENCE_VALUE[preference]

        return scorer

    def golden_scorer(self) -> GoldenScorer:
        """For ``llmwatch eval run``: a rubric's value for one answer, in [0, 1] (1/0 with a pass
        label). A rubric that does not apply to the case (no reference for correctness) raises."""

        async def scorer(name: str, case: GoldenCase, answer: str) -> float:
            rubric = self.rubrics.get(name)
            if rubric is None:
                raise ValueError(f"unknown rubric {name!r}; known: {sorted(self.rubrics)}")
            request = JudgeRequest(
                event_id=f"golden-{case.case_id}",
                service=EVAL_SERVICE,
                start_time=datetime.now(UTC),
                input_text=case.input_text,
                output_text=answer,
                reference_text=case.reference,
                rubrics=(name,),
            )
            missing = rubric.applies_to(request)
            if missing is not None:
                raise ValueError(f"rubric {name!r} cannot score case {case.case_id!r}: {missing}")
            verdict, _cost = await self.verdict(rubric, rubric.messages(request))
            if rubric.pass_label is not None:
                return 1.0 if verdict.label == rubric.pass_label else 0.0
            return rubric.normalized(verdict.score)

        return scorer
