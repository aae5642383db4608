"""The evaluation tap: sampled calls become redacted judge requests, feedback becomes human scores,
negative feedback sends its call to the judge whichever arrives first, RAG context joins by trace."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from producers.events import SpanKind, TextCapture
from producers.feedback import build_feedback
from producers.texts import TextRecord
from streams.evaluation.items import JudgeRequest, ScoreSource, decode_scores
from streams.evaluation.sampling import Sampler
from streams.evaluation.sampling_rules import parse_sampling
from streams.evaluation.tap import EvaluationTap
from streams.text.findings import PiiSpan, PiiType
from streams.text.records import INPUT, OUTPUT, FieldAnalysis, TextAnalysis
from streams.topics import TopicLayout

LAYOUT = TopicLayout("tap")
TRACE = "0af7651916cd43dd8448eb211c80319c"
RULES = """
version: 1
rules:
  - name: checkout
    match: {service: checkout}
    rate: 1.0
    rubrics: [relevance, groundedness]
  - name: thumbs-down
    always: [feedback]
    rubrics: [correctness]
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def _tap(clock: Clock, max_traces: int = 100) -> EvaluationTap:
    config = parse_sampling(RULES, known_rubrics={"relevance", "groundedness", "correctness"})
    sampler = Sampler(config, cost_of=lambda _c, _r: 0.0, clock_ms=clock)
    return EvaluationTap(
        LAYOUT,
        sampler,
        redact=lambda texts: [t.replace("ann@example.com", "<EMAIL>") for t in texts],
        clock_ms=clock,
        max_traces=max_traces,
    )


def _record(**extra: Any) -> TextRecord:
    fields: dict[str, Any] = {
        "capture": TextCapture.ANALYZE,
        "event_id": "e-1",
        "trace_id": TRACE,
        "span_id": "s-1",
        "service": "checkout",
        "request_model": "gpt-4o",
        "provider_name": "openai",
        "prompt_version": "v8",
        "response_id": "chatcmpl-1",
        "start_time": datetime.now(UTC),
        "input_text": "Where is my order? Mail me at ann@example.com",
        "output_text": "It ships tomorrow.",
    }
    fields.update(extra)
    return TextRecord.model_validate(fields)


def _analysis(record: TextRecord, email_in_input: bool = True) -> TextAnalysis:
    spans = ()
    if email_in_input and record.input_text and "ann@example.com" in record.input_text:
        start = record.input_text.index("ann@example.com")
        spans = (PiiSpan(PiiType.EMAIL, start, start + 15, 1.0),)
    return TextAnalysis(record, (FieldAnalysis(INPUT, spans), FieldAnalysis(OUTPUT)))


def _requests(outputs: list[tuple[str, bytes | None, bytes]]) -> list[JudgeRequest]:
    return [JudgeRequest.from_json(v) for t, _k, v in outputs if t == LAYOUT.judge_requests]


def _scores(outputs: list[tuple[str, bytes | None, bytes]]) -> list[dict[str, Any]]:
    return [row for t, _k, v in outputs if t == LAYOUT.scores for row in decode_scores(v)]


def test_a_sampled_call_goes_to_the_judge_redacted_and_keyed_by_trace() -> None:
    tap = _tap(Clock())
    outputs = tap.outputs([_analysis(_record())], [[]], [])
    (request,) = _requests(outputs)
    assert outputs[0][1] == TRACE.encode()
    assert "ann@example.com" not in request.input_text
    assert request.input_text.endswith("<EMAIL>")
    assert request.rubrics == ("relevance",)  # groundedness needs a retrieval context
    assert (request.reason, request.model, request.prompt_version) == ("checkout", "gpt-4o", "v8")


def test_a_retrieval_span_gives_the_trace_its_context() -> None:
    tap = _tap(Clock())
    retrieval = _record(
        event_id="e-0", span_kind=SpanKind.RETRIEVAL, output_text="Orders ship in 2 days."
    )
    assert tap.outputs([_analysis(retrieval)], [[]], []) == []
    (request,) = _requests(tap.outputs([_analysis(_record())], [[]], []))
    assert request.context_text == "Orders ship in 2 days."
    assert request.rubrics == ("relevance", "groundedness")


def test_calls_the_rules_do_not_pick_are_not_sent() -> None:
    tap = _tap(Clock())
    assert tap.outputs([_analysis(_record(service="search"))], [[]], []) == []


def _feedback(value: object, target: str = TRACE, comment: str | None = None) -> Any:
    return build_feedback(
        target,
        "thumbs",
        value,
        comment=comment,
        user_id="u-7",
        service="checkout",
        environment="production",
        now_ms=5,
        keep_comment=True,
    )


def test_feedback_becomes_a_human_score_with_the_call_labels_and_a_redacted_comment() -> None:
    tap = _tap(Clock())
    tap.outputs([_analysis(_record(service="search"))], [[]], [])
    outputs = tap.outputs([], [], [_feedback(True, comment="thanks ann@example.com")])
    (row,) = _scores(outputs)
    assert row["source"] == ScoreSource.HUMAN
    assert (row["score_value"], row["label"], row["evaluator"]) == (1.0, "positive", "u-7")
    assert (row["service"], row["model"], row["target"]) == ("search", "gpt-4o", TRACE)
    assert row["comment"] == "thanks <EMAIL>"
    assert _requests(outputs) == []  # positive feedback triggers nothing


def test_negative_feedback_after_the_call_sends_it_to_the_judge_once() -> None:
    tap = _tap(Clock())
    tap.outputs([_analysis(_record(service="search", reference_text="Tomorrow."))], [[]], [])
    (request,) = _requests(tap.outputs([], [], [_feedback(False, target="chatcmpl-1")]))
    assert (request.reason, request.rubrics) == ("always:feedback", ("correctness",))
    assert request.reference_text == "Tomorrow."
    assert _requests(tap.outputs([], [], [_feedback(False, target="chatcmpl-1")])) == []


def test_without_a_reference_the_feedback_rule_has_nothing_to_apply() -> None:
    tap = _tap(Clock())
    tap.outputs([_analysis(_record(service="search"))], [[]], [])
    assert _requests(tap.outputs([], [], [_feedback(False)])) == []


def test_negative_feedback_before_the_call_applies_when_its_text_arrives() -> None:
    tap = _tap(Clock())
    assert _requests(tap.outputs([], [], [_feedback("thumbs_down")])) == []
    assert tap.counts["unjoined_feedback"] == 1
    record = _record(service="search", reference_text="Tomorrow.")
    (request,) = _requests(tap.outputs([_analysis(record)], [[]], []))
    assert request.reason == "always:feedback"


def test_memory_is_bounded_and_old_feedback_is_forgotten() -> None:
    clock = Clock()
    tap = _tap(clock, max_traces=3)
    tap.outputs([], [], [_feedback(False, target=f"chatcmpl-{n}") for n in range(10)])
    assert len(tap._negative) == 3  # the oldest were forgotten beyond max_traces
    clock.now += 16 * 60_000  # past the join TTL
    record = _record(service="search", reference_text="Tomorrow.", response_id="chatcmpl-9")
    assert _requests(tap.outputs([_analysis(record)], [[]], [])) == []


def test_metrics_name_rules_and_budgets_that_bite() -> None:
    clock = Clock()
    config = parse_sampling(
        "version: 1\nbudget: {calls_per_minute: 1}\n"
        "rules:\n  - name: all\n    rate: 1.0\n    rubrics: [relevance]\n",
        known_rubrics={"relevance"},
    )
    tap = EvaluationTap(
        LAYOUT,
        Sampler(config, cost_of=lambda _c, _r: 0.0, clock_ms=clock),
        redact=list,
        clock_ms=clock,
    )
    for n in range(3):
        tap.outputs([_analysis(_record(event_id=f"e-{n}", trace_id=f"{n:032x}"))], [[]], [])
    metrics = tap.metrics()
    assert metrics[("judge_requests", ())] == 1.0
    assert metrics[("sampling_sampled", (("rule", "all"),))] == 1.0
    assert metrics[("sampling_capped", (("rule", "overall"),))] == 2.0
    assert metrics[("sampling_budget_biting", (("budget", "overall.calls_per_minute"),))] == 1.0
