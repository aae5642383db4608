"""The quality path end to end on the real broker and chdb: the SDK sends text and feedback, the text
analysis samples calls for the judge and turns feedback into human scores, ``llmwatch judge``'s
service scores the calls with the real rubrics through a real ``openai`` client against a fake judge
model on 127.0.0.1 (the only stand-in), its own calls are emitted as ``llmwatch-judge`` events, and the
sink's route stores the scores in ``llm_scores``, where prompt v8's evasive answers score lower."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, Final

import pytest

from producers.events import LlmCallEvent, SpanKind
from producers.sdk import Publisher
from producers.simulator.fake_openai import FakeOpenAI
from producers.simulator.fake_quality import judge_responder
from producers.simulator.texts import WEAK_ANSWER_MARK
from sinks.routes import default_routes
from sinks.rows import insert_rows
from streams.evaluation.items import SCORE_FIELDS, JudgeRequest
from streams.evaluation.judge_client import JudgeClient, JudgeEndpoint
from streams.evaluation.judge_service import JudgeService, JudgeServiceConfig
from streams.evaluation.rubric import load_rubrics
from streams.evaluation.sampling import Sampler
from streams.evaluation.sampling_rules import parse_sampling
from streams.evaluation.scoring import RubricJudge
from streams.evaluation.tap import EvaluationTap
from streams.periodic import PIPELINE_METRICS_TABLE, decode_snapshot
from streams.storage import SCORES_TABLE
from streams.text.analyzer import TextAnalyzer
from streams.text.consumer import AnalyzerConfig, TextConsumer
from streams.text.pii import PiiDetector
from streams.topics import TopicLayout
from tests.clock import Clock
from tests.integration.conftest import SINK_DB
from tests.integration.kafka_io import QUIET, read_until
from tests.integration.test_text_consumer import run_until

CALLS: Final = 24  # support-bot calls: the first half on prompt v7, the second on v8
EMAIL: Final = "ines.haddad@example.org"
JUDGE_MODEL: Final = "mistral-small-latest"
RULES: Final = """
version: 1
rules:
  - name: support
    match: {service: support-bot, span_kind: llm}
    rate: 1.0
    rubrics: [relevance, groundedness]
  - name: thumbs-down
    always: [feedback]
    rubrics: [correctness]
"""


def _trace(i: int) -> str:
    return f"{i + 1:032x}"


def _events(clock: Clock) -> list[LlmCallEvent]:
    start = clock.ago(minutes=2)
    events = []
    for i in range(CALLS):
        v8 = i >= CALLS // 2
        events.append(
            LlmCallEvent(
                event_id=f"call-{i}",
                trace_id=_trace(i),
                response_id=f"chatcmpl-{i}",
                start_time=start,
                end_time=start,
                service="support-bot",
                provider_name="openai",
                request_model="gpt-4o-mini",
                prompt_name="support-answer",
                prompt_version="v8" if v8 else "v7",
                input_text=f"My refund has not arrived, mail me at {EMAIL}.",
                output_text=f"Some {WEAK_ANSWER_MARK} about refunds."
                if v8
                else "Your refund was sent today and arrives within 5 days.",
                reference_text="The refund arrives within 5 business days." if i == 0 else None,
                text_capture="analyze",
            )
        )
    # A RAG trace: the retrieval span's passages are the context of the LLM call of trace 1.
    events.insert(
        1,
        LlmCallEvent(
            event_id="retrieval-1",
            trace_id=_trace(1),
            span_kind=SpanKind.RETRIEVAL,
            start_time=start,
            end_time=start,
            service="support-bot",
            output_text="Refunds are paid within 5 business days.",
            text_capture="analyze",
        ),
    )
    return events


@pytest.fixture()
def judge_url() -> Iterator[str]:
    with FakeOpenAI() as server:
        server.set_responder("/v1/chat/completions", judge_responder(JUDGE_MODEL))
        yield server.base_url


def _analyze(bootstrap: str, layout: TopicLayout) -> TextConsumer:
    analyzer = TextAnalyzer(pii=PiiDetector())
    rubrics = load_rubrics()
    sampler = Sampler(
        parse_sampling(RULES, known_rubrics=set(rubrics)),
        cost_of=lambda _c, _r: 0.0,
        clock_ms=lambda: time.time_ns() // 1_000_000,
    )
    tap = EvaluationTap(
        layout,
        sampler,
        redact=analyzer.redact,
        clock_ms=lambda: time.time_ns() // 1_000_000,
    )
    config = AnalyzerConfig(bootstrap=bootstrap, layout=layout, group_id="analyze-q")
    consumer = TextConsumer(config, analyzer.analyze, evaluation=tap)
    # Every call's text and the feedback record analysed (they may span several records and polls).
    return run_until(
        consumer, lambda c: tap.counts["judge_requests"] >= CALLS and tap.counts["human_scores"]
    )


def _analyze_metrics(bootstrap: str, layout: TopicLayout) -> dict[tuple[str, str], float]:
    """The analyzer's last published counters: (metric, rule label) -> value."""

    def rows(values: list[bytes]) -> list[dict[str, Any]]:
        return [r for v in values for r in decode_snapshot(v).get(PIPELINE_METRICS_TABLE, [])]

    values = read_until(
        bootstrap,
        layout.metrics,
        1,
        lambda v: any(r["metric"] == "sampling_sampled" and r["value"] for r in rows(v)),
    )
    latest: dict[tuple[str, str], float] = {}
    for row in sorted(rows(values), key=lambda r: r["ts"]):
        if row["process"] == "analyze":
            latest[(row["metric"], row["labels"].get("rule", ""))] = row["value"]
    return latest


def _judge(bootstrap: str, layout: TopicLayout, judge_url: str, expected: int) -> Publisher:
    publisher = Publisher(bootstrap, layout.events, service="llmwatch-judge", producer_config=QUIET)
    judge = RubricJudge(
        JudgeClient(JudgeEndpoint(judge_url, JUDGE_MODEL), publisher=publisher),
        load_rubrics(),
        judge_model=JUDGE_MODEL,
        clock_ms=lambda: time.time_ns() // 1_000_000,
    )
    service = JudgeService(
        JudgeServiceConfig(
            bootstrap=bootstrap,
            layout=layout,
            group_id="judge-q",
            session_timeout_ms=3_000,
            consumer_overrides=QUIET,
        ),
        judge.score,
    )
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 90
    while service.counts["requests"] < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # the last items' scores reach the broker before the stop
    stop.set()
    thread.join(30)
    assert service.counts["dead_letters"] == 0
    return publisher


def test_sampled_calls_are_judged_and_stored_with_human_feedback(
    broker: Any, layout: TopicLayout, clock: Clock, judge_url: str, client: Any
) -> None:
    with Publisher(
        broker.bootstrap,
        layout.events,
        service="app",
        text_capture="analyze",
        producer_config=QUIET,
    ) as sdk:
        assert all(sdk.emit(event) for event in _events(clock))
        assert sdk.feedback(
            _trace(3), "thumbs", False, comment=f"wrong, write {EMAIL}", user_id="u1"
        )
        assert sdk.feedback("chatcmpl-4", "thumbs", True, user_id="u1")
        assert sdk.flush(30)

    analyzed = _analyze(broker.bootstrap, layout)
    assert analyzed.evaluation is not None and analyzed.evaluation.counts["judge_requests"] >= CALLS
    requests = [
        JudgeRequest.from_json(v)
        for v in read_until(
            broker.bootstrap, layout.judge_requests, layout.partitions, lambda v: len(v) >= CALLS
        )
    ]
    assert all(EMAIL not in r.input_text and "<EMAIL>" in r.input_text for r in requests)
    published = _analyze_metrics(broker.bootstrap, layout)
    assert published[("sampling_sampled", "support")] == CALLS
    assert published[("judge_requests", "")] == len(requests)
    rag = [r for r in requests if r.trace_id == _trace(1)]
    assert rag and rag[0].rubrics == ("relevance", "groundedness")
    assert rag[0].context_text == "Refunds are paid within 5 business days."

    judge_publisher = _judge(broker.bootstrap, layout, judge_url, len(requests))
    judge_calls = judge_publisher.stats.emitted
    judge_publisher.close(10)
    assert judge_calls >= CALLS + 1  # one call per rubric applied: relevance x 24, groundedness x 1

    route = default_routes(layout)[layout.scores]

    def stored(values: list[bytes]) -> list[dict[str, Any]]:
        return [row for value in values for row in route.split(value)[SCORES_TABLE]]

    def complete(values: list[bytes]) -> bool:
        rows = stored(values)
        judged = {r["event_id"] for r in rows if r["source"] == "judge"}
        return len(judged) == len(requests) and sum(r["source"] == "human" for r in rows) == 2

    rows = stored(read_until(broker.bootstrap, layout.scores, layout.partitions, complete))
    insert_rows(client, SINK_DB, SCORES_TABLE, rows, SCORE_FIELDS)
    insert_rows(client, SINK_DB, SCORES_TABLE, rows, SCORE_FIELDS)  # a replay: FINAL keeps one

    means = dict(
        client.query(
            f"SELECT prompt_version, avg(score_value) FROM {SINK_DB}.{SCORES_TABLE} FINAL "
            "WHERE source = 'judge' AND name = 'relevance' GROUP BY prompt_version"
        ).result_rows
    )
    assert means["v7"] >= 4.0 > 2.5 >= means["v8"]
    judged = client.query(
        f"SELECT count(), uniqExact(event_id), any(judge_family), max(self_judged) "
        f"FROM {SINK_DB}.{SCORES_TABLE} FINAL WHERE source = 'judge' AND name = 'relevance'"
    ).result_rows[0]
    assert judged == (CALLS, CALLS, "mistral", False)
    human = client.query(
        f"SELECT target, score_value, label, comment, model FROM {SINK_DB}.{SCORES_TABLE} FINAL "
        "WHERE source = 'human' ORDER BY target"
    ).result_rows
    assert [(t, v, label) for t, v, label, _c, _m in human] == [
        (_trace(3), 0.0, "negative"),
        ("chatcmpl-4", 1.0, "positive"),
    ]
    comment = human[0][3]
    assert EMAIL not in comment and "<EMAIL>" in comment
    assert {m for *_rest, m in human} == {"gpt-4o-mini"}  # joined to the call's labels
