"""OTLP spans -> llmwatch events (``producers.otlp.mapping``), on requests built with the real protobuf
classes; plus the OTLP/HTTP body decoding (JSON hex ids, gzip cap) of ``producers.otlp.http_receiver``."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from google.protobuf import json_format  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from producers.events import LlmCallEvent
from producers.otlp.http_receiver import RequestError, decode_body, parse_json_request
from producers.otlp.mapping import MAX_INVALID_REASONS, MappedBatch, spans_to_events
from tests.clock import Clock, to_ms

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
ROOT = bytes.fromhex("b7ad6b7169203331")
CHILD = bytes.fromhex("00f067aa0ba902b7")


def _value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[_value(v) for v in value]))
    raise TypeError(f"no AnyValue for {value!r}")


def _attrs(values: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in values.items()]


def _span(
    start: datetime,
    attrs: Mapping[str, Any],
    *,
    trace_id: bytes = TRACE,
    span_id: bytes = CHILD,
    parent: bytes = b"",
    name: str = "span",
    duration_ms: int = 800,
    status: int = Status.STATUS_CODE_UNSET,
    events: Sequence[Span.Event] = (),
) -> Span:
    start_ns = to_ms(start) * 1_000_000 + 123_456
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + duration_ms * 1_000_000,
        attributes=_attrs(attrs),
        status=Status(code=status),  # type: ignore[arg-type]
        events=list(events),
    )


def _request(
    spans: Sequence[Span], resource: Mapping[str, Any] | None = None, scope: str = "tests.scope"
) -> ExportTraceServiceRequest:
    resource = {"service.name": "support-bot"} if resource is None else resource
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=_attrs(resource)),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name=scope), spans=list(spans))],
            )
        ]
    )


def _map(spans: Sequence[Span], **kwargs: Any) -> MappedBatch:
    batch = spans_to_events(_request(spans, **kwargs))
    for event in batch.events:  # every event must pass the contract as the worker checks it
        LlmCallEvent.model_validate(orjson.loads(orjson.dumps(event)))
    return batch


def _one(attrs: Mapping[str, Any], clock: Clock, **kwargs: Any) -> dict[str, Any]:
    batch = _map([_span(clock.ago(minutes=2), attrs, **kwargs)])
    assert len(batch.events) == 1, batch
    return batch.events[0]


CHAT = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}


def test_ids_times_and_resource(clock: Clock) -> None:
    start = clock.ago(minutes=2)
    span = _span(start, CHAT, parent=ROOT, duration_ms=1500)
    batch = _map(
        [span],
        resource={"service.name": "support-bot", "deployment.environment.name": "staging"},
    )
    (event,) = batch.events
    assert event["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert event["span_id"] == "00f067aa0ba902b7"
    assert event["parent_span_id"] == "b7ad6b7169203331"
    assert event["event_id"] == event["trace_id"] + event["span_id"]
    assert event["start_time"] == start + timedelta(microseconds=123)
    assert event["end_time"] - event["start_time"] == timedelta(milliseconds=1500)
    assert event["start_time"].tzinfo is not None
    assert (event["service"], event["environment"]) == ("support-bot", "staging")
    assert event["metadata"] == {"otel.span.name": "span", "otel.scope.name": "tests.scope"}
    parsed = LlmCallEvent.model_validate(event)
    assert parsed.duration_ms == pytest.approx(1500.0)
    assert (batch.genai_spans, batch.chain_steps, batch.invalid, batch.dropped_non_genai) == (
        1,
        0,
        0,
        0,
    )


def test_root_span_and_all_zero_parent_have_no_parent(clock: Clock) -> None:
    assert "parent_span_id" not in _one(CHAT, clock)
    assert "parent_span_id" not in _one(CHAT, clock, parent=b"\x00" * 8)


def test_deprecated_environment_and_service_defaults(clock: Clock) -> None:
    start = clock.ago(minutes=2)
    old_env = spans_to_events(
        _request(
            [_span(start, CHAT)],
            resource={"service.name": "bot", "deployment.environment": "dev"},
        )
    )
    assert old_env.events[0]["environment"] == "dev"
    placeholder = spans_to_events(
        _request([_span(start, CHAT)], resource={"service.name": "unknown_service:python"}),
        service_default="from-cli",
    )
    assert placeholder.events[0]["service"] == "from-cli"
    missing = spans_to_events(_request([_span(start, CHAT)], resource={}))
    assert missing.events[0]["service"] == "otlp"
    assert "environment" not in missing.events[0]  # the Publisher's default applies


def test_gen_ai_current_attribute_names(clock: Clock) -> None:
    event = _one(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4",
            "gen_ai.response.model": "claude-sonnet-4-20250514",
            "gen_ai.response.id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "gen_ai.response.finish_reasons": ["end_turn", "tool_use"],
            "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 300,
            "gen_ai.usage.cache_read.input_tokens": 800,
            "gen_ai.usage.cache_creation.input_tokens": 100,
            "gen_ai.usage.reasoning.output_tokens": 120,
            "gen_ai.request.temperature": 0.3,
            "gen_ai.request.top_p": 0.9,
            "gen_ai.request.max_tokens": 1024,
            "gen_ai.request.seed": 42,
            "gen_ai.request.stream": True,
            "gen_ai.response.time_to_first_chunk": 0.25,
            "gen_ai.agent.name": "triage",
            "gen_ai.conversation.id": "conv-77",
            "server.address": "api.anthropic.com",
            "user.id": "u-19",
        },
        clock,
    )
    expected = {
        "span_kind": "llm",
        "operation_name": "chat",
        "provider_name": "anthropic",
        "request_model": "claude-sonnet-4",
        "response_model": "claude-sonnet-4-20250514",
        "response_id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "finish_reasons": ["end_turn", "tool_use"],
        "input_tokens": 1200,
        "output_tokens": 300,
        "cache_read_input_tokens": 800,
        "cache_creation_input_tokens": 100,
        "reasoning_output_tokens": 120,
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 1024,
        "seed": 42,
        "stream": True,
        "time_to_first_token_ms": 250.0,
        "agent_name": "triage",
        "session_id": "conv-77",
        "server_address": "api.anthropic.com",
        "user_id": "u-19",
        "status": "ok",
    }
    assert {k: event.get(k) for k in expected} == expected


def test_gen_ai_deprecated_attribute_names(clock: Clock) -> None:
    event = _one(
        {
            "gen_ai.system": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.prompt_tokens": 52,
            "gen_ai.usage.completion_tokens": 9,
            "gen_ai.usage.cache_read_input_tokens": 20,
            "gen_ai.usage.reasoning_tokens": 4,
            "gen_ai.response.finish_reasons": "stop",
            "enduser.id": "u-1",
        },
        clock,
    )
    assert event["provider_name"] == "openai"
    assert (event["input_tokens"], event["output_tokens"]) == (52, 9)
    assert (event["cache_read_input_tokens"], event["reasoning_output_tokens"]) == (20, 4)
    assert event["finish_reasons"] == ["stop"]
    assert event["user_id"] == "u-1"


def test_current_names_win_over_deprecated(clock: Clock) -> None:
    event = _one(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "azure.ai.openai",
            "gen_ai.system": "openai",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.prompt_tokens": 99,
        },
        clock,
    )
    assert (event["provider_name"], event["input_tokens"]) == ("azure.ai.openai", 10)


@pytest.mark.parametrize(
    ("operation", "kind"),
    [
        ("chat", "llm"),
        ("text_completion", "llm"),
        ("generate_content", "llm"),
        ("embeddings", "embedding"),
        ("execute_tool", "tool"),
        ("invoke_agent", "agent"),
        ("create_agent", "agent"),
        ("retrieval", "retrieval"),
        ("invoke_workflow", "chain"),
    ],
)
def test_operation_name_sets_span_kind(operation: str, kind: str, clock: Clock) -> None:
    event = _one({"gen_ai.operation.name": operation}, clock)
    assert (event["span_kind"], event["operation_name"]) == (kind, operation)


@pytest.mark.parametrize(
    ("attrs", "kind", "operation"),
    [
        ({"gen_ai.tool.name": "search"}, "tool", "execute_tool"),
        ({"gen_ai.request.model": "gpt-4o"}, "llm", "chat"),
        ({"gen_ai.agent.name": "planner"}, "agent", "invoke_agent"),
        ({"gen_ai.usage.input_tokens": 5}, "llm", "chat"),
        ({"gen_ai.operation.name": "Custom Step"}, "chain", "custom_step"),
        ({"gen_ai.operation.name": "rerank", "gen_ai.request.model": "r1"}, "llm", "rerank"),
    ],
)
def test_kind_without_a_known_operation(
    attrs: dict[str, Any], kind: str, operation: str, clock: Clock
) -> None:
    event = _one(attrs, clock)
    assert (event["span_kind"], event["operation_name"]) == (kind, operation)


@pytest.mark.parametrize(
    ("oi_kind", "kind", "operation"),
    [
        ("LLM", "llm", "chat"),
        ("EMBEDDING", "embedding", "embeddings"),
        ("CHAIN", "chain", "chain"),
        ("TOOL", "tool", "execute_tool"),
        ("AGENT", "agent", "invoke_agent"),
        ("RETRIEVER", "retrieval", "retrieval"),
        ("RERANKER", "retrieval", "rerank"),
        ("GUARDRAIL", "chain", "guardrail"),
        ("EVALUATOR", "chain", "evaluator"),
        ("llm", "llm", "chat"),
        ("SOMETHING_NEW", "chain", "chain"),
    ],
)
def test_openinference_span_kinds(oi_kind: str, kind: str, operation: str, clock: Clock) -> None:
    event = _one({"openinference.span.kind": oi_kind}, clock)
    assert (event["span_kind"], event["operation_name"]) == (kind, operation)
    assert event["metadata"]["openinference.span.kind"] == oi_kind


def test_openinference_llm_attributes(clock: Clock) -> None:
    params = {
        "temperature": 0.7,
        "max_completion_tokens": 256,
        "seed": 7,
        "top_p": 1,
        "stream": False,
    }
    event = _one(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4.1-mini",
            "llm.provider": "openai",
            "llm.system": "ignored-when-provider-set",
            "llm.token_count.prompt": 400,
            "llm.token_count.completion": 60,
            "llm.token_count.prompt_details.cache_read": 128,
            "llm.token_count.prompt_details.cache_write": 32,
            "llm.token_count.completion_details.reasoning": 16,
            "llm.invocation_parameters": orjson.dumps(params).decode(),
            "session.id": "sess-4",
            "user.id": "user-9",
        },
        clock,
    )
    expected = {
        "span_kind": "llm",
        "request_model": "gpt-4.1-mini",
        "provider_name": "openai",
        "input_tokens": 400,
        "output_tokens": 60,
        "cache_read_input_tokens": 128,
        "cache_creation_input_tokens": 32,
        "reasoning_output_tokens": 16,
        "temperature": 0.7,
        "top_p": 1.0,
        "max_tokens": 256,
        "seed": 7,
        "stream": False,
        "session_id": "sess-4",
        "user_id": "user-9",
    }
    assert {k: event.get(k) for k in expected} == expected


def test_openinference_system_tool_and_bad_invocation_parameters(clock: Clock) -> None:
    llm = _one(
        {
            "openinference.span.kind": "LLM",
            "llm.system": "Anthropic",
            "llm.invocation_parameters": "{not json",
        },
        clock,
    )
    assert llm["provider_name"] == "anthropic"
    assert "temperature" not in llm
    tool = _one({"openinference.span.kind": "TOOL", "tool.name": "get_weather"}, clock)
    assert (tool["span_kind"], tool["tool_name"]) == ("tool", "get_weather")
    # gen_ai.* request parameters win over the invocation parameters
    both = _one(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.temperature": 0.1,
            "llm.invocation_parameters": '{"temperature": 0.9, "max_tokens": 50}',
        },
        clock,
    )
    assert (both["temperature"], both["max_tokens"]) == (0.1, 50)


def test_non_genai_spans_dropped_chain_steps_kept(clock: Clock) -> None:
    start = clock.ago(minutes=2)
    ids = [bytes([0, 0, 0, 0, 0, 0, 0, n]) for n in range(1, 7)]
    spans = [
        _span(
            start,
            {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a"},
            span_id=ids[0],
        ),
        _span(
            start,
            {"http.request.method": "POST", "url.full": "http://x"},
            span_id=ids[1],
            parent=ids[0],
        ),
        _span(start, {"openinference.span.kind": "CHAIN"}, span_id=ids[2], parent=ids[0]),
        _span(start, {"db.system": "postgresql"}, span_id=ids[3], parent=ids[2]),
        _span(
            start,
            {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "t"},
            span_id=ids[4],
            parent=ids[2],
        ),
        _span(start, CHAT, span_id=ids[5], parent=ids[4]),
    ]
    batch = _map(spans)
    assert (batch.genai_spans, batch.chain_steps, batch.dropped_non_genai, batch.invalid) == (
        1,
        3,
        2,
        0,
    )
    assert batch.spans == 6
    kinds = {e["span_id"]: (e["span_kind"], e.get("parent_span_id")) for e in batch.events}
    assert kinds == {
        ids[0].hex(): ("agent", None),
        ids[2].hex(): ("chain", ids[0].hex()),
        ids[4].hex(): ("tool", ids[2].hex()),
        ids[5].hex(): ("llm", ids[4].hex()),
    }


def test_error_status_and_error_type(clock: Clock) -> None:
    typed = _one(
        {**CHAT, "error.type": "RateLimitError", "http.response.status_code": 429},
        clock,
        status=Status.STATUS_CODE_ERROR,
    )
    assert (typed["status"], typed["error_type"], typed["http_status"]) == (
        "error",
        "RateLimitError",
        429,
    )
    exception = Span.Event(
        name="exception",
        time_unix_nano=1,
        attributes=_attrs({"exception.type": "openai.APITimeoutError", "exception.message": "x"}),
    )
    from_event = _one(CHAT, clock, status=Status.STATUS_CODE_ERROR, events=[exception])
    assert (from_event["status"], from_event["error_type"]) == ("error", "openai.APITimeoutError")
    classy = _one({**CHAT, "error.type": "<class 'openai.NotFoundError'>"}, clock)
    assert (classy["status"], classy["error_type"]) == ("error", "openai.NotFoundError")
    bare = _one(CHAT, clock, status=Status.STATUS_CODE_ERROR)
    assert (bare["status"], bare["error_type"]) == ("error", "_OTHER")
    http_only = _one({**CHAT, "http.status_code": 503}, clock)  # deprecated name, status unset
    assert (http_only["status"], http_only["error_type"], http_only["http_status"]) == (
        "error",
        "503",
        503,
    )
    ok = _one({**CHAT, "http.response.status_code": 200}, clock, status=Status.STATUS_CODE_OK)
    assert (ok["status"], ok["http_status"]) == ("ok", 200)
    assert "error_type" not in ok


def test_no_text_is_ever_copied(clock: Clock) -> None:
    marker = "zqx-secret-prompt-text"
    text_attrs = {
        "gen_ai.prompt.0.content": marker,
        "gen_ai.prompt": marker,
        "gen_ai.completion.0.content": marker,
        "gen_ai.input.messages": marker,
        "gen_ai.output.messages": marker,
        "gen_ai.system_instructions": marker,
        "gen_ai.tool.call.arguments": marker,
        "gen_ai.tool.call.result": marker,
        "input.value": marker,
        "output.value": marker,
        "llm.input_messages.0.message.content": marker,
        "llm.output_messages.0.message.content": marker,
        "llm.prompts": marker,
        "retrieval.documents.0.document.content": marker,
    }
    event_with_text = Span.Event(
        name="gen_ai.user.message", time_unix_nano=1, attributes=_attrs({"content": marker})
    )
    start = clock.ago(minutes=2)
    batch = _map(
        [
            _span(start, {**CHAT, **text_attrs}, events=[event_with_text]),
            _span(start, {"openinference.span.kind": "LLM", **text_attrs}, span_id=ROOT),
        ]
    )
    assert len(batch.events) == 2
    assert marker.encode() not in orjson.dumps(batch.events)
    assert all("input_text" not in e and "output_text" not in e for e in batch.events)


def test_values_outside_the_contract_are_repaired_or_left_out(clock: Clock) -> None:
    event = _one(
        {
            "gen_ai.operation.name": "Chat",
            "gen_ai.provider.name": "Azure OpenAI",
            "gen_ai.request.temperature": 25.0,
            "gen_ai.request.top_p": 1.5,
            "gen_ai.request.max_tokens": -1,
            "gen_ai.usage.input_tokens": -5,
            "gen_ai.usage.output_tokens": 10**12,
            "http.response.status_code": 999,
            "gen_ai.response.time_to_first_chunk": 30.0,  # the span lasts 0.8 s
            "gen_ai.request.model": "m" * 400,
        },
        clock,
    )
    assert (event["operation_name"], event["provider_name"]) == ("chat", "azure_openai")
    for name in ("temperature", "top_p", "max_tokens", "input_tokens", "output_tokens"):
        assert name not in event, name
    assert "http_status" not in event and "time_to_first_token_ms" not in event
    assert len(event["request_model"]) == 256


def test_cache_and_reasoning_counted_outside_the_totals_are_added(clock: Clock) -> None:
    event = _one(
        {
            **CHAT,
            "gen_ai.usage.input_tokens": 50,
            "gen_ai.usage.cache_read.input_tokens": 900,
            "gen_ai.usage.cache_creation.input_tokens": 100,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.usage.reasoning.output_tokens": 200,
        },
        clock,
    )
    assert (event["input_tokens"], event["cache_read_input_tokens"]) == (1050, 900)
    assert (event["output_tokens"], event["reasoning_output_tokens"]) == (220, 200)


def test_numbers_sent_as_strings_or_doubles(clock: Clock) -> None:
    event = _one(
        {
            **CHAT,
            "gen_ai.usage.input_tokens": "77",
            "gen_ai.usage.output_tokens": 12.0,
            "gen_ai.request.temperature": "0.5",
            "gen_ai.usage.cache_read.input_tokens": 3.5,  # not a whole number: left out
        },
        clock,
    )
    assert (event["input_tokens"], event["output_tokens"], event["temperature"]) == (77, 12, 0.5)
    assert "cache_read_input_tokens" not in event


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"trace_id": TRACE[:15]}, "trace_id must be 16 non-zero bytes, got 15"),
        ({"trace_id": b"\x00" * 16}, "trace_id must be 16 non-zero bytes, got 16"),
        ({"trace_id": b""}, "trace_id must be 16 non-zero bytes, got 0"),
        ({"span_id": CHILD[:4]}, "span_id must be 8 non-zero bytes, got 4: '00f067aa'"),
        ({"span_id": b"\x00" * 8}, "span_id must be 8 non-zero bytes, got 8"),
        ({"parent": b"\x01\x02\x03"}, "parent_span_id must be empty or 8 bytes, got 3: '010203'"),
    ],
)
def test_malformed_ids_are_counted_invalid_and_skipped(
    overrides: dict[str, bytes], reason: str, clock: Clock
) -> None:
    start = clock.ago(minutes=2)
    bad = _span(start, CHAT, name="bad-one", **overrides)  # type: ignore[arg-type]
    good = _span(start, CHAT, span_id=ROOT)
    batch = _map([bad, good])
    assert (batch.invalid, len(batch.events)) == (1, 1)
    assert batch.events[0]["span_id"] == ROOT.hex()
    (message,) = batch.invalid_reasons
    assert "bad-one" in message and reason in message, message


def test_missing_and_reversed_times_are_invalid(clock: Clock) -> None:
    start = clock.ago(minutes=2)
    no_end = _span(start, CHAT)
    no_end.end_time_unix_nano = 0
    reversed_span = _span(start, CHAT, span_id=ROOT)
    reversed_span.end_time_unix_nano = reversed_span.start_time_unix_nano - 1
    batch = _map([no_end, reversed_span])
    assert (batch.invalid, batch.events) == (2, [])
    assert "end_time_unix_nano=0" in batch.invalid_reasons[0]
    assert "is before start_time_unix_nano" in batch.invalid_reasons[1]


def test_invalid_reasons_are_bounded(clock: Clock) -> None:
    start = clock.ago(minutes=2)
    batch = _map([_span(start, CHAT, trace_id=b"\x01") for _ in range(MAX_INVALID_REASONS + 5)])
    assert batch.invalid == MAX_INVALID_REASONS + 5
    assert len(batch.invalid_reasons) == MAX_INVALID_REASONS


def test_empty_request() -> None:
    batch = spans_to_events(ExportTraceServiceRequest())
    assert (batch.events, batch.spans) == ([], 0)


# --- OTLP/HTTP body decoding ------------------------------------------------------------------------


def _otlp_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP JSON as exporters write it: protobuf's JSON mapping, but ids as hex."""
    doc: dict[str, Any] = json_format.MessageToDict(request)
    for resource_spans in doc["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return doc


def test_json_ids_are_hex(clock: Clock) -> None:
    request = _request([_span(clock.ago(minutes=2), CHAT, parent=ROOT)])
    doc = _otlp_json(request)
    assert doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] == TRACE.hex()
    doc["unknownTopLevelField"] = 1  # OTLP receivers ignore unknown fields
    parsed = parse_json_request(orjson.dumps(doc))
    assert parsed == request
    assert spans_to_events(parsed).events == spans_to_events(request).events


def test_json_enums_as_integers_and_int64_as_strings(clock: Clock) -> None:
    doc = _otlp_json(_request([_span(clock.ago(minutes=2), CHAT)]))
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["kind"] = 3
    span["status"] = {"code": 2}
    span["attributes"].append({"key": "gen_ai.usage.input_tokens", "value": {"intValue": "31"}})
    parsed = parse_json_request(orjson.dumps(doc))
    (event,) = spans_to_events(parsed).events
    assert (event["status"], event["input_tokens"]) == ("error", 31)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be an object, got list"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "traceId 'zz' is not hex",
        ),
        (b'{"resourceSpans": "nope"}', "does not parse"),
    ],
)
def test_bad_json_bodies_name_the_reason(body: bytes, needle: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_json_request(body)
    assert caught.value.http_status == 400 and needle in caught.value.message


def test_gzip_bodies_and_the_cap(clock: Clock) -> None:
    raw = _request([_span(clock.ago(minutes=2), CHAT)]).SerializeToString()
    assert decode_body("application/x-protobuf", "gzip", gzip.compress(raw), cap=len(raw)) == (
        ExportTraceServiceRequest.FromString(raw)
    )
    with pytest.raises(RequestError) as too_big:
        decode_body("application/x-protobuf", "gzip", gzip.compress(raw), cap=len(raw) - 1)
    assert too_big.value.http_status == 413
    bomb = gzip.compress(b"\x00" * 10_000_000)
    with pytest.raises(RequestError) as bombed:
        decode_body("application/x-protobuf", "gzip", bomb, cap=1_000_000)
    assert bombed.value.http_status == 413 and "1000000" in bombed.value.message
    with pytest.raises(RequestError) as truncated:
        decode_body("application/x-protobuf", "gzip", gzip.compress(raw)[:-12], cap=10**6)
    assert truncated.value.http_status == 400
    with pytest.raises(RequestError) as brotli:
        decode_body("application/x-protobuf", "br", raw, cap=10**6)
    assert brotli.value.http_status == 415 and "'br'" in brotli.value.message
    with pytest.raises(RequestError) as garbage:
        decode_body("application/x-protobuf", "", b"\x0a\xff\xff\xff\x0f\x01", cap=10**6)
    assert garbage.value.http_status == 400
