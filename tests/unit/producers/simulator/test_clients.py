"""ClientTraffic: simulated calls made through the real openai / anthropic clients against the local fakes
come back, measured by the instrumentation, with the simulated model, tokens, finish reason, error status
and (streams) a time to first token; run_simulation routes exactly ``client_calls`` events that way."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any

import pytest

from producers.events import LlmCallEvent, SpanKind, Status, TextCapture
from producers.sdk.config import PublisherConfig
from producers.simulator import ClientTraffic, default_scenario, run_simulation
from producers.simulator.clients import VIA_METADATA_KEY
from tests.clock import Clock

FIRST_TOKEN_MS = 30.0


class RecordingSink:
    """Stands where a Publisher would: service, environment, config and a recording ``emit``."""

    def __init__(self, text_capture: TextCapture = TextCapture.OFF, accept: bool = True) -> None:
        self.service = "sink-default-service"
        self.environment = "sink-default-env"
        self.config = PublisherConfig(
            bootstrap="127.0.0.1:9", topic="llm-events", text_capture=text_capture
        )
        self.accept = accept
        self.events: list[dict[str, Any]] = []

    def emit(self, event: Mapping[str, Any]) -> bool:
        self.events.append(dict(event))
        return self.accept

    def validated(self) -> list[LlmCallEvent]:
        return [LlmCallEvent.model_validate(event) for event in self.events]


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def traffic(sink: RecordingSink) -> Iterator[ClientTraffic]:
    with ClientTraffic(sink, max_first_token_ms=FIRST_TOKEN_MS) as running:
        yield running


def _collector(into: list[LlmCallEvent]) -> Callable[[LlmCallEvent], bool]:
    def emit(event: LlmCallEvent) -> bool:
        into.append(event)
        return True

    return emit


def _simulated(provider: str, model: str, **fields: Any) -> LlmCallEvent:
    end = Clock.read().now
    base: dict[str, Any] = {
        "start_time": end - timedelta(seconds=2),
        "end_time": end,
        "service": "support-bot",
        "environment": "staging",
        "user_id": "user-0042",
        "tenant_id": "acme",
        "session_id": "support-bot-user-0042-3",
        "trace_id": "a" * 32,
        "span_id": "b" * 16,
        "parent_span_id": "c" * 16,
        "span_kind": "llm",
        "operation_name": "chat",
        "provider_name": provider,
        "request_model": model,
        "server_address": f"api.{provider}.com",
        "prompt_name": "support-answer",
        "prompt_version": "v7",
        "variant": "B",
        "temperature": 0.3,
        "max_tokens": 4_096,
    }
    base.update(fields)
    return LlmCallEvent.model_validate(base)


def _only(sink: RecordingSink) -> LlmCallEvent:
    events = sink.validated()
    assert len(events) == 1, events
    return events[0]


def _assert_identity(measured: LlmCallEvent, simulated: LlmCallEvent) -> None:
    for name in (
        "event_id",
        "service",
        "environment",
        "user_id",
        "tenant_id",
        "session_id",
        "trace_id",
        "span_id",
        "parent_span_id",
        "prompt_name",
        "prompt_version",
        "variant",
    ):
        assert getattr(measured, name) == getattr(simulated, name), name
    assert measured.metadata.get(VIA_METADATA_KEY) == "client"
    # Measured by the real client against the fake, not copied from the simulation.
    assert measured.server_address is not None
    assert measured.server_address.startswith("127.0.0.1:")
    assert measured.end_time - measured.start_time < timedelta(seconds=2)


def test_an_openai_call_comes_back_with_the_simulated_usage(
    traffic: ClientTraffic, sink: RecordingSink
) -> None:
    simulated = _simulated(
        "openai",
        "o4-mini",
        response_model="o4-mini-2025-04-16",
        response_id="chatcmpl-sim123",
        input_tokens=2_400,
        output_tokens=700,
        cache_read_input_tokens=1_280,
        reasoning_output_tokens=500,
        finish_reasons=["length"],
        ratelimit_remaining_requests=4_321,
        ratelimit_remaining_tokens=1_234_567,
    )
    assert traffic.call(simulated) is True
    measured = _only(sink)
    _assert_identity(measured, simulated)
    assert measured.provider_name == "openai"
    assert (measured.request_model, measured.response_model) == ("o4-mini", "o4-mini-2025-04-16")
    assert measured.response_id == "chatcmpl-sim123"
    assert (measured.input_tokens, measured.output_tokens) == (2_400, 700)
    assert measured.cache_read_input_tokens == 1_280
    assert measured.reasoning_output_tokens == 500
    assert measured.finish_reasons == ["length"]
    assert measured.ratelimit_remaining_requests == 4_321
    assert measured.ratelimit_remaining_tokens == 1_234_567
    assert (measured.temperature, measured.max_tokens) == (0.3, 4_096)
    assert measured.status == Status.OK and measured.stream is False
    assert measured.time_to_first_token_ms is None
    assert traffic.calls == Counter({"openai": 1})


def test_an_anthropic_call_reports_input_tokens_including_the_cache(
    traffic: ClientTraffic, sink: RecordingSink
) -> None:
    simulated = _simulated(
        "anthropic",
        "claude-sonnet-4-5",
        response_model="claude-sonnet-4-5-20250929",
        response_id="msg_sim456",
        input_tokens=6_000,
        output_tokens=420,
        cache_read_input_tokens=2_560,
        cache_creation_input_tokens=1_024,
        finish_reasons=["tool_use"],
        ratelimit_remaining_requests=3_900,
        ratelimit_remaining_tokens=350_000,
    )
    assert traffic.call(simulated) is True
    measured = _only(sink)
    _assert_identity(measured, simulated)
    assert measured.provider_name == "anthropic"
    assert measured.response_model == "claude-sonnet-4-5-20250929"
    assert measured.response_id == "msg_sim456"
    assert (measured.input_tokens, measured.output_tokens) == (6_000, 420)
    assert measured.cache_read_input_tokens == 2_560
    assert measured.cache_creation_input_tokens == 1_024
    assert measured.finish_reasons == ["tool_use"]
    assert measured.ratelimit_remaining_requests == 3_900
    assert measured.ratelimit_remaining_tokens == 350_000
    assert measured.temperature == 0.3
    assert measured.status == Status.OK


@pytest.mark.parametrize(
    ("provider", "model", "finish"),
    [("openai", "gpt-4o-mini", "stop"), ("anthropic", "claude-haiku-4-5", "end_turn")],
)
def test_a_stream_waits_for_its_first_token_and_carries_usage(
    traffic: ClientTraffic, sink: RecordingSink, provider: str, model: str, finish: str
) -> None:
    simulated = _simulated(
        provider,
        model,
        stream=True,
        input_tokens=1_500,
        output_tokens=230,
        finish_reasons=[finish],
        time_to_first_token_ms=900.0,  # capped to FIRST_TOKEN_MS
    )
    assert traffic.call(simulated) is True
    measured = _only(sink)
    _assert_identity(measured, simulated)
    assert measured.stream is True
    assert measured.time_to_first_token_ms is not None
    assert FIRST_TOKEN_MS <= measured.time_to_first_token_ms < 900.0
    assert (measured.input_tokens, measured.output_tokens) == (1_500, 230)
    assert measured.finish_reasons == [finish]
    assert measured.status == Status.OK


@pytest.mark.parametrize(
    ("provider", "model", "status", "error_class"),
    [
        ("openai", "gpt-4o", 429, "RateLimitError"),
        ("openai", "gpt-4o", 500, "InternalServerError"),
        ("anthropic", "claude-sonnet-4-5", 429, "RateLimitError"),
        ("anthropic", "claude-sonnet-4-5", 529, "OverloadedError"),
    ],
)
def test_a_simulated_error_is_the_real_clients_error(
    traffic: ClientTraffic,
    sink: RecordingSink,
    provider: str,
    model: str,
    status: int,
    error_class: str,
) -> None:
    simulated = _simulated(
        provider, model, http_status=status, error_type="rate_limit", stream=status == 429
    )
    assert traffic.call(simulated) is True  # the SDK's exception is caught, not raised
    measured = _only(sink)
    _assert_identity(measured, simulated)
    assert measured.status == Status.ERROR
    assert measured.http_status == status
    assert measured.error_type == error_class
    assert (measured.input_tokens, measured.output_tokens) == (0, 0)


def test_texts_go_through_the_client_when_the_sink_captures_them() -> None:
    sink = RecordingSink(text_capture=TextCapture.ANALYZE)
    simulated = _simulated(
        "openai",
        "gpt-4o-mini",
        input_tokens=40,
        output_tokens=12,
        input_text="My order 4411 never arrived, can you check?",
        output_text="I have checked order 4411: it ships tomorrow.",
    )
    with ClientTraffic(sink) as traffic:
        assert traffic.call(simulated)
    measured = _only(sink)
    assert measured.input_text is not None and "order 4411 never arrived" in measured.input_text
    assert measured.output_text == "I have checked order 4411: it ships tomorrow."


@pytest.mark.parametrize(
    "fields",
    [
        {"provider_name": "gcp.gemini", "request_model": "gemini-2.5-flash"},
        {"provider_name": "vllm", "request_model": "meta-llama/Llama-3.1-8B-Instruct"},
        {"span_kind": "embedding", "operation_name": "embeddings"},
        {"error_type": "timeout"},  # no HTTP status: not something a fake reply can make
    ],
)
def test_events_it_does_not_handle_make_no_call(
    traffic: ClientTraffic, sink: RecordingSink, fields: dict[str, Any]
) -> None:
    simulated = _simulated("openai", "gpt-4o", **fields)
    assert traffic.call(simulated) is False
    assert sink.events == []
    assert sum(traffic.calls.values()) == 0


def test_call_outside_with_is_an_error(sink: RecordingSink) -> None:
    traffic = ClientTraffic(sink)
    with pytest.raises(RuntimeError, match="not running"):
        traffic.call(_simulated("openai", "gpt-4o", input_tokens=10, output_tokens=2))


def test_run_simulation_routes_exactly_the_first_client_calls_through_the_clients(
    traffic: ClientTraffic, sink: RecordingSink
) -> None:
    now = Clock.read().now

    def run(emit: Any, **extra: Any) -> Any:
        return run_simulation(
            emit, events=600, rate=0, seed=5, scenario=default_scenario(), now=lambda: now, **extra
        )

    plain: list[LlmCallEvent] = []
    run(_collector(plain))
    emitted: list[LlmCallEvent] = []
    report = run(_collector(emitted), via_clients=traffic, client_calls=40)

    expected = [event for event in plain if ClientTraffic.handles(event)][:40]
    measured = sink.validated()
    assert [event.event_id for event in measured] == [event.event_id for event in expected]
    routed = {event.event_id for event in expected}
    assert [e.event_id for e in emitted] == [e.event_id for e in plain if e.event_id not in routed]
    assert report.client_calls == 40 and len(emitted) == 600 - 40
    assert report.emitted == 600 and report.accepted == 600
    by_provider = Counter(str(event.provider_name) for event in expected)
    assert set(by_provider) == {"openai", "anthropic"}
    assert dict(report.client_calls_by_provider) == dict(by_provider) == dict(traffic.calls)
    assert all(event.metadata[VIA_METADATA_KEY] == "client" for event in measured)
    for got, want in zip(measured, expected, strict=True):
        assert (got.service, got.request_model, got.input_tokens, got.http_status) == (
            want.service,
            want.request_model,
            want.input_tokens,
            want.http_status,
        )


def test_client_calls_are_counted_as_accepted_only_when_the_sink_accepts() -> None:
    sink = RecordingSink(accept=False)
    with ClientTraffic(sink) as traffic:
        report = run_simulation(
            lambda event: True,
            events=200,
            rate=0,
            seed=5,
            via_clients=traffic,
            client_calls=10,
        )
    assert report.client_calls == 10 and len(sink.events) == 10
    assert report.accepted == 190 and report.rejected == 10


def test_without_clients_the_run_is_unchanged() -> None:
    now = Clock.read().now

    def run(**extra: Any) -> list[LlmCallEvent]:
        seen: list[LlmCallEvent] = []
        run_simulation(
            _collector(seen),
            events=300,
            rate=0,
            seed=9,
            now=lambda: now,
            **extra,
        )
        return seen

    plain, with_zero = run(), run(client_calls=0)
    assert [e.model_dump() for e in plain] == [e.model_dump() for e in with_zero]
    assert any(e.span_kind == SpanKind.LLM and e.provider_name == "openai" for e in plain)


def test_client_calls_need_a_client_traffic() -> None:
    with pytest.raises(ValueError, match="client_calls=5 needs via_clients"):
        run_simulation(lambda event: True, events=10, rate=0, client_calls=5)
    with pytest.raises(ValueError, match="client_calls must be an integer >= 0, got -1"):
        run_simulation(lambda event: True, events=10, rate=0, client_calls=-1)


def test_without_the_client_packages_it_names_the_extra(
    sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)  # as if not installed
    with pytest.raises(ImportError, match=r"'anthropic' is missing.*llmwatch\[clients\]"):
        ClientTraffic(sink)
