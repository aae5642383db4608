"""The evaluation tap of the text-analysis consumer: sampled calls to the judge, feedback to scores.

``llmwatch analyze`` already reads every captured text and its findings, so it is where sampling runs
(``streams.evaluation.sampling``): for each analysed LLM call the tap builds a sampling candidate (its
labels, status, whether a guardrail fired, whether negative feedback named it, whether a reference or a
retrieved context exists) and, when a rule picks it, publishes a :class:`JudgeRequest` with the text
the judge needs to the ``judge_requests`` topic. Feedback records (``producers.feedback``) on the same
topic become ``llm_scores`` rows (source ``human``) on the ``scores`` topic.

Text sent on is redacted: the judge sees the input, output, reference and context with every PII span
replaced by ``<TYPE>`` (the same redaction as stored text), never the raw text, and feedback comments
are stored the same way.

Joins, bounded and best-effort (one trace's records share a partition, keyed by the trace bucket):
- RAG context: a retrieval span's output is kept per trace for ``ttl_ms`` and given to the trace's
  later LLM calls as ``context_text`` (retrieval ends before generation, so it comes first).
- Negative feedback: the tap keeps the last ``max_traces`` LLM calls; feedback that names one of them
  (by trace or response id) sends it to the judge at once (``always: feedback`` rules). Feedback that
  comes first is remembered for ``ttl_ms`` and applies when the call's text arrives.
Beyond these bounds a join is missed (counted in ``unjoined_feedback``), never blocked on.

Delivery: the tap returns outputs; the consumer publishes them with the poll's other outputs and
commits only after all are acknowledged (at-least-once). A replay may judge a call again; the score
table keeps one row per (target, rubric, judge), so it counts once. Pure apart from its bounded state.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from producers.events import SpanKind
from producers.feedback import FeedbackRecord
from producers.texts import TextRecord
from streams.evaluation.items import JudgeRequest, Score, ScoreSource, encode_scores
from streams.evaluation.sampling import Candidate, Sampler
from streams.text.records import Finding, TextAnalysis, redacted_texts
from streams.topics import TopicLayout

__all__ = ["DEFAULT_MAX_TRACES", "DEFAULT_TTL_MS", "EvaluationTap"]

DEFAULT_MAX_TRACES: Final = 20_000
DEFAULT_TTL_MS: Final = 15 * 60_000
MAX_CONTEXT_CHARS: Final = 20_000
FEEDBACK_EVALUATOR: Final = "human"

K = TypeVar("K")
V = TypeVar("V")
# (topic, key, value), as the consumer publishes them.
Output = tuple[str, bytes | None, bytes]
Redact = Callable[[Sequence[str]], list[str]]


@dataclass(slots=True)
class _Call:
    record: TextRecord
    input_text: str
    output_text: str
    seen_ms: int
    judged_for_feedback: bool = False


class _Bounded(Generic[K, V]):
    """An insertion-ordered map that forgets its oldest entries beyond ``size`` or ``ttl_ms``."""

    def __init__(self, size: int, ttl_ms: int) -> None:
        self._items: OrderedDict[K, tuple[int, V]] = OrderedDict()
        self._size = size
        self._ttl_ms = ttl_ms

    def put(self, key: K, value: V, now_ms: int) -> None:
        self._items[key] = (now_ms, value)
        self._items.move_to_end(key)
        self.prune(now_ms)

    def get(self, key: K, now_ms: int) -> V | None:
        item = self._items.get(key)
        if item is None or now_ms - item[0] > self._ttl_ms:
            return None
        return item[1]

    def pop(self, key: K, now_ms: int) -> V | None:
        item = self._items.pop(key, None)
        if item is None or now_ms - item[0] > self._ttl_ms:
            return None
        return item[1]

    def prune(self, now_ms: int) -> None:
        while self._items:
            key, (at, _value) = next(iter(self._items.items()))
            if len(self._items) <= self._size and now_ms - at <= self._ttl_ms:
                return
            del self._items[key]

    def __len__(self) -> int:
        return len(self._items)


class EvaluationTap:
    """Sampling and feedback for one text-analysis consumer (not thread-safe: the consumer's loop)."""

    def __init__(
        self,
        layout: TopicLayout,
        sampler: Sampler | None,
        *,
        redact: Redact,
        clock_ms: Callable[[], int],
        max_traces: int = DEFAULT_MAX_TRACES,
        ttl_ms: int = DEFAULT_TTL_MS,
    ) -> None:
        self._layout = layout
        self.sampler = sampler
        self._redact = redact
        self._clock = clock_ms
        self._calls: _Bounded[str, _Call] = _Bounded(max_traces, ttl_ms)
        self._contexts: _Bounded[str, str] = _Bounded(max_traces, ttl_ms)
        self._negative: _Bounded[str, bool] = _Bounded(max_traces, ttl_ms)
        self.counts: dict[str, int] = {
            "judge_requests": 0,
            "human_scores": 0,
            "unjoined_feedback": 0,
        }

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Counters for ``llm_pipeline_metrics`` (process ``analyze``): ``judge_requests``,
        ``human_scores``, ``unjoined_feedback``, and the sampler's ``sampling_sampled`` /
        ``sampling_capped`` per rule (label ``rule``; ``overall`` for the overall budget) and
        ``sampling_considered``; plus ``sampling_budget_biting`` = 1 per budget that refused a call in
        the last minute (label ``budget``, e.g. ``overall.calls_per_minute``)."""
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
            (name, ()): float(n) for name, n in self.counts.items()
        }
        if self.sampler is None:
            return out
        for name, n in self.sampler.counters().items():
            kind, _, rule = name.partition(".")
            if rule:
                out[(f"sampling_{kind}", (("rule", rule),))] = float(n)
            else:
                out[(f"sampling_{kind}", ())] = float(n)
        for budget in self.sampler.biting():
            out[("sampling_budget_biting", (("budget", budget),))] = 1.0
        return out

    def outputs(
        self,
        analyses: Sequence[TextAnalysis],
        found: Sequence[Sequence[Finding]],
        feedback: Sequence[FeedbackRecord],
    ) -> list[Output]:
        """The judge requests and score records of one source record's analyses and feedback."""
        now = self._clock()
        out: list[Output] = []
        for analysis, findings in zip(analyses, found, strict=True):
            request = self._observe(analysis, bool(findings), now)
            if request is not None:
                out.append(self._request_output(request))
        if feedback:
            out += self._feedback(feedback, now)
        return out

    def _observe(self, analysis: TextAnalysis, flagged: bool, now: int) -> JudgeRequest | None:
        record = analysis.record
        input_text, output_text = redacted_texts(analysis)
        trace = record.trace_id or ""
        if record.span_kind is SpanKind.RETRIEVAL:
            if trace and output_text:
                before = self._contexts.get(trace, now) or ""
                joined = f"{before}\n\n{output_text}" if before else output_text
                self._contexts.put(trace, joined[:MAX_CONTEXT_CHARS], now)
            return None
        if record.span_kind is not SpanKind.LLM:
            return None
        call = _Call(record, input_text, output_text, now)
        for key in _keys(record):
            self._calls.put(key, call, now)
        negative = any([self._negative.pop(key, now) for key in _keys(record)])
        if negative:
            call.judged_for_feedback = True
        return self._decide(call, flagged=flagged, negative=negative, now=now)

    def _decide(
        self, call: _Call, *, flagged: bool, negative: bool, now: int, late: bool = False
    ) -> JudgeRequest | None:
        """The judge request for ``call`` if a rule picks it. ``late``: the call was already offered
        to the rules when its text came; only a trigger (negative feedback) may pick it now, never the
        rate again (no second judging, no second charge to the budgets)."""
        if self.sampler is None:
            return None
        record = call.record
        context = self._contexts.get(record.trace_id or "", now)
        reference_chars = len(record.reference_text or "")
        candidate = Candidate(
            trace_id=record.trace_id or record.event_id,
            service=record.service,
            environment=record.environment,
            model=record.model,
            prompt_name=record.prompt_name,
            prompt_version=record.prompt_version,
            span_kind=str(record.span_kind),
            status="error" if record.status == "error" else "ok",
            guardrail_hit=flagged,
            negative_feedback=negative,
            has_reference=bool(record.reference_text),
            has_context=bool(context),
            text_chars=len(call.input_text)
            + len(call.output_text)
            + reference_chars
            + len(context or ""),
        )
        decision = self.sampler.decide(candidate, triggers_only=late)
        if decision is None:
            return None
        reference = None
        if record.reference_text:
            reference = self._redact([record.reference_text])[0]
        return JudgeRequest(
            event_id=record.event_id,
            trace_id=record.trace_id,
            span_id=record.span_id,
            response_id=record.response_id,
            service=record.service,
            environment=record.environment,
            provider_name=record.provider_name,
            model=record.model,
            prompt_name=record.prompt_name,
            prompt_version=record.prompt_version,
            variant=record.variant,
            start_time=record.start_time,
            input_text=call.input_text,
            output_text=call.output_text,
            reference_text=reference,
            context_text=context,
            rubrics=decision.rubrics,
            metrics=decision.metrics,
            reason=decision.reason,
            sampled_at_ms=now,
        )

    def _request_output(self, request: JudgeRequest) -> Output:
        self.counts["judge_requests"] += 1
        key = (request.trace_id or request.event_id).encode()
        return (self._layout.judge_requests, key, request.to_json())

    def _feedback(self, feedback: Sequence[FeedbackRecord], now: int) -> list[Output]:
        comments = [f.comment for f in feedback if f.comment]
        redacted = iter(self._redact(comments)) if comments else iter(())
        scores: list[Score] = []
        out: list[Output] = []
        for item in feedback:
            comment = next(redacted) if item.comment else ""
            call = self._calls.get(item.target, now)
            scores.append(_human_score(item, comment, call))
            if not item.negative:
                continue
            if call is None:
                self._negative.put(item.target, True, now)
                self.counts["unjoined_feedback"] += 1
            elif not call.judged_for_feedback:
                call.judged_for_feedback = True
                request = self._decide(call, flagged=False, negative=True, now=now, late=True)
                if request is not None:
                    out.append(self._request_output(request))
        self.counts["human_scores"] += len(scores)
        out.append((self._layout.scores, None, encode_scores(scores)))
        return out


def _keys(record: TextRecord) -> list[str]:
    return [k for k in (record.response_id, record.trace_id) if k]


def _human_score(item: FeedbackRecord, comment: str, call: _Call | None) -> Score:
    record = call.record if call is not None else None
    return Score(
        name=item.name,
        source=ScoreSource.HUMAN,
        evaluator=item.user_id or FEEDBACK_EVALUATOR,
        score_value=item.score_value,
        label=item.label,
        trace_id=item.trace_id or (record.trace_id or "" if record else ""),
        span_id=(record.span_id or "") if record else "",
        response_id=item.response_id or (record.response_id or "" if record else ""),
        event_id=record.event_id if record else "",
        service=record.service if record else item.service,
        environment=record.environment if record else item.environment,
        provider_name=(record.provider_name or "") if record else "",
        model=record.model if record else "",
        prompt_name=(record.prompt_name or "") if record else "",
        prompt_version=(record.prompt_version or "") if record else "",
        variant=(record.variant or "") if record else "",
        start_time_ms=record.start_ms if record else 0,
        scored_at_ms=item.created_at_ms,
        comment=comment,
        target_id=item.target,  # the id the feedback named: the same key before and after a join
    )
