"""The simulator's traffic: validity, determinism, distributions, trace structure and the incident."""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from producers.events import LlmCallEvent
from producers.simulator import (
    ERROR_RATE_LIMIT,
    ERROR_SERVER,
    ERROR_TIMEOUT,
    INCIDENT_NEW_VERSION,
    INCIDENT_OLD_VERSION,
    INCIDENT_SERVICE,
    Simulator,
    default_scenario,
)
from producers.simulator.catalog import DEFAULT_MODELS
from tests.clock import Clock
from tests.unit.producers.simulator.conftest import SAMPLE_END, SAMPLE_START

T0 = Clock.read().ago(hours=1)
_IDS = ("event_id", "trace_id", "span_id", "parent_span_id", "response_id")


def _content(event: LlmCallEvent) -> dict[str, Any]:
    return event.model_dump(exclude=set(_IDS))


def _first(seed: int, n: int = 2_000, **kwargs: Any) -> list[LlmCallEvent]:
    return list(Simulator(seed, **kwargs).events(n, T0, T0 + timedelta(minutes=10)))


def test_same_seed_gives_identical_events() -> None:
    assert [e.to_json() for e in _first(5)] == [e.to_json() for e in _first(5)]


def test_other_seed_gives_other_traffic() -> None:
    assert [_content(e) for e in _first(5)] != [_content(e) for e in _first(6)]


def test_id_seed_changes_ids_but_not_traffic() -> None:
    base, other = _first(5), _first(5, id_seed="run-2")
    assert [_content(e) for e in base] == [_content(e) for e in other]
    assert {e.event_id for e in base}.isdisjoint({e.event_id for e in other})


def test_every_event_round_trips_through_json(sample: list[LlmCallEvent]) -> None:
    assert all(LlmCallEvent.from_json(e.to_json()) == e for e in sample)


def test_event_ids_are_unique(sample: list[LlmCallEvent]) -> None:
    assert len({e.event_id for e in sample}) == len(sample)


@pytest.mark.parametrize("n", [0, 1, 7, 1_000])
def test_events_yields_exactly_n_in_start_order(n: int) -> None:
    events = list(Simulator(3).events(n, T0, T0 + timedelta(minutes=1)))
    assert len(events) == n
    assert all(a.start_time <= b.start_time for a, b in pairwise(events))


def test_events_spread_over_the_window(sample: list[LlmCallEvent]) -> None:
    starts = [e.start_time for e in sample]
    assert min(starts) == SAMPLE_START
    assert SAMPLE_END - timedelta(minutes=1) < max(starts) < SAMPLE_END + timedelta(minutes=3)


def test_trace_ending_at_ends_at_the_given_time() -> None:
    events = Simulator(4).trace_ending_at(T0, 0.5)
    assert abs(max(e.end_time for e in events) - T0) <= timedelta(microseconds=1)


def test_trace_at_starts_at_the_given_time() -> None:
    assert min(e.start_time for e in Simulator(4).trace_at(T0, 0.5)) == T0


@pytest.mark.parametrize("progress", [-0.1, 1.5, math.nan])
def test_trace_at_rejects_bad_progress(progress: float) -> None:
    with pytest.raises(ValueError, match=f"got {progress!r}"):
        Simulator(1).trace_at(T0, progress)


def test_events_rejects_negative_n() -> None:
    with pytest.raises(ValueError, match="got -1"):
        Simulator(1).events(-1, T0, T0)


def test_events_rejects_end_before_start() -> None:
    with pytest.raises(ValueError, match="before start"):
        Simulator(1).events(5, T0, T0 - timedelta(seconds=1))


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


def test_llm_latency_is_heavy_tailed(llm_spans: list[LlmCallEvent]) -> None:
    durations = [e.duration_ms for e in llm_spans]
    assert _quantile(durations, 0.99) / _quantile(durations, 0.5) > 4


@pytest.mark.parametrize(
    ("error_type", "low", "high"),
    [(ERROR_RATE_LIMIT, 0.005, 0.05), (ERROR_SERVER, 0.002, 0.03), (ERROR_TIMEOUT, 0.001, 0.03)],
)
def test_failures_occur_at_plausible_rates(
    llm_spans: list[LlmCallEvent], error_type: str, low: float, high: float
) -> None:
    share = sum(e.error_type == error_type for e in llm_spans) / len(llm_spans)
    assert low < share < high


def test_rate_limits_are_http_429(llm_spans: list[LlmCallEvent]) -> None:
    statuses = {e.http_status for e in llm_spans if e.error_type == ERROR_RATE_LIMIT}
    assert statuses == {429}


def test_overall_error_rate_is_plausible(llm_spans: list[LlmCallEvent]) -> None:
    share = sum(e.status == "error" for e in llm_spans) / len(llm_spans)
    assert 0.01 < share < 0.08


def test_streaming_calls_report_first_token_inside_the_call(
    llm_spans: list[LlmCallEvent],
) -> None:
    streamed = [e for e in llm_spans if e.stream and e.status == "ok"]
    assert streamed
    assert all(e.time_to_first_token_ms is not None for e in streamed)
    assert all(e.time_to_first_token_ms < e.duration_ms for e in streamed)  # type: ignore[operator]
    assert all(e.time_to_first_token_ms is None for e in llm_spans if not e.stream)


_STREAMED_MODELS = [
    m for m in DEFAULT_MODELS if m.operation != "embeddings" and m.provider != "vllm"
]


@pytest.mark.parametrize("profile", _STREAMED_MODELS, ids=lambda m: m.model)
def test_output_speed_is_plausible_per_model(llm_spans: list[LlmCallEvent], profile: Any) -> None:
    speeds = [
        (e.output_tokens - e.reasoning_output_tokens)
        / ((e.duration_ms - e.time_to_first_token_ms) / 1000.0)
        for e in llm_spans
        if e.request_model == profile.model
        and e.stream
        and e.status == "ok"
        and e.time_to_first_token_ms is not None
        and e.prompt_version != INCIDENT_NEW_VERSION
    ]
    assert len(speeds) > 20
    assert 0.5 * profile.tokens_per_s < statistics.median(speeds) < 2 * profile.tokens_per_s


def test_some_calls_read_from_the_prompt_cache(llm_spans: list[LlmCallEvent]) -> None:
    ok = [e for e in llm_spans if e.status == "ok"]
    share = sum(e.cache_read_input_tokens > 0 for e in ok) / len(ok)
    assert 0.05 < share < 0.6


def test_reasoning_tokens_only_on_reasoning_models(llm_spans: list[LlmCallEvent]) -> None:
    reasoning_models = {m.model for m in DEFAULT_MODELS if m.reasoning}
    by_model: dict[bool, list[int]] = defaultdict(list)
    for e in llm_spans:
        if e.status == "ok":
            by_model[e.request_model in reasoning_models].append(e.reasoning_output_tokens)
    assert all(tokens > 0 for tokens in by_model[True])
    assert not any(by_model[False])


def test_ratelimit_headers_only_on_some_providers(llm_spans: list[LlmCallEvent]) -> None:
    with_headers = {
        e.provider_name for e in llm_spans if e.ratelimit_remaining_requests is not None
    }
    assert with_headers == {"openai", "anthropic"}


def test_catalog_is_fully_used(sample: list[LlmCallEvent]) -> None:
    scenario = default_scenario()
    assert {e.service for e in sample} == {s.name for s in scenario.services}
    assert {e.request_model for e in sample} - {None} == {m.model for m in scenario.models}
    assert {e.environment for e in sample} == {name for name, _ in scenario.environments}
    assert len({e.tenant_id for e in sample}) == len(scenario.tenants)
    assert len({e.variant for e in sample} - {None}) >= 5
    assert {e.span_kind for e in sample} == {
        "llm",
        "chain",
        "agent",
        "retrieval",
        "tool",
        "embedding",
    }


def test_users_follow_a_zipf_like_popularity(sample: list[LlmCallEvent]) -> None:
    traces_per_user = Counter(e.user_id for e in sample if e.parent_span_id is None)
    total = sum(traces_per_user.values())
    ranked = [count for _, count in traces_per_user.most_common()]
    assert len(ranked) > 1_000
    assert 0.02 < ranked[0] / total < 0.2
    assert sum(ranked[:50]) / total > 0.2


def _by_trace(sample: list[LlmCallEvent]) -> dict[str, list[LlmCallEvent]]:
    traces: dict[str, list[LlmCallEvent]] = defaultdict(list)
    for event in sample:
        traces[event.trace_id].append(event)
    return traces


def test_parents_exist_in_the_same_trace(sample: list[LlmCallEvent]) -> None:
    for spans in _by_trace(sample).values():
        ids = {e.span_id for e in spans}
        assert len(ids) == len(spans)
        assert all(e.parent_span_id in ids for e in spans if e.parent_span_id is not None)
        assert sum(e.parent_span_id is None for e in spans) == 1


def test_children_lie_inside_their_parent(sample: list[LlmCallEvent]) -> None:
    by_span = {(e.trace_id, e.span_id): e for e in sample}
    children = [e for e in sample if e.parent_span_id is not None]
    assert len(children) > len(sample) / 2
    for child in children:
        parent = by_span[(child.trace_id, str(child.parent_span_id))]
        assert parent.start_time <= child.start_time <= child.end_time <= parent.end_time


def test_agent_traces_chain_retrieval_tools_and_llm(sample: list[LlmCallEvent]) -> None:
    traces = _by_trace(sample)
    agent_traces = [spans for spans in traces.values() if spans[0].span_kind == "agent"]
    kinds = {e.span_kind for spans in agent_traces for e in spans}
    assert kinds == {"agent", "retrieval", "tool", "llm"}
    assert all(e.tool_name for spans in agent_traces for e in spans if e.span_kind == "tool")


def test_a_failed_step_marks_its_root_failed(sample: list[LlmCallEvent]) -> None:
    roots = [spans for spans in _by_trace(sample).values() if len(spans) > 1]
    failed = [s for s in roots if s[0].status == "error"]
    assert failed
    for spans in failed:
        assert spans[0].error_type in {e.error_type for e in spans[1:]}


def _incident_split(
    sample: list[LlmCallEvent],
) -> tuple[list[LlmCallEvent], list[LlmCallEvent]]:
    switch = SAMPLE_START + (SAMPLE_END - SAMPLE_START) * default_scenario().incidents[0].start
    trace_start = {e.trace_id: e.start_time for e in sample if e.parent_span_id is None}
    spans = [e for e in sample if e.service == INCIDENT_SERVICE and e.span_kind == "llm"]
    before = [e for e in spans if trace_start[e.trace_id] < switch]
    after = [e for e in spans if trace_start[e.trace_id] >= switch]
    return before, after


def test_incident_switches_the_prompt_version(sample: list[LlmCallEvent]) -> None:
    before, after = _incident_split(sample)
    assert {e.prompt_version for e in before} == {INCIDENT_OLD_VERSION}
    assert {e.prompt_version for e in after} == {INCIDENT_NEW_VERSION}


@pytest.mark.parametrize("measure", ["duration_ms", "output_tokens"])
def test_incident_doubles_latency_and_output(sample: list[LlmCallEvent], measure: str) -> None:
    before, after = _incident_split(sample)
    assert len(before) > 500 and len(after) > 500
    mean_before = statistics.mean(getattr(e, measure) for e in before)
    mean_after = statistics.mean(getattr(e, measure) for e in after)
    assert mean_after > 2 * mean_before


def test_other_services_keep_their_prompt_versions(sample: list[LlmCallEvent]) -> None:
    seen = {
        (e.service, e.prompt_version)
        for e in sample
        if e.span_kind == "llm" and e.service != INCIDENT_SERVICE
    }
    services = default_scenario().services
    assert seen == {(s.name, s.prompt.version) for s in services if s.name != INCIDENT_SERVICE}
