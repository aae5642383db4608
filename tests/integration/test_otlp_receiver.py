"""The OTLP receiver with real senders: the OpenTelemetry SDK's OTLP exporters (HTTP and gRPC), raw
OTLP JSON and protobuf posts, grpcio stubs, and opentelemetry-instrumentation-openai-v2 around a real
``openai.OpenAI`` client talking to a local chat.completions server; and the events it emits through a
real ``Publisher`` arriving on the Tansu broker as valid ``LlmCallEvent`` records.

Spans are exported synchronously (SimpleSpanProcessor, or force_flush), and the receiver emits before it
replies, so every assertion runs after the events were handed over: no polling."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc  # type: ignore[import-untyped]
import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from google.rpc import status_pb2  # type: ignore[import-untyped]
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from llmwatch.broker import free_port
from producers.events import LlmCallEvent
from producers.otlp import OtlpReceiver, serve
from producers.sdk import Publisher
from producers.wire import SplitRecord, split_record
from streams.topics import TopicLayout
from tests.integration.kafka_io import QUIET

TOKEN = "it-token-5f2c"
PROTOBUF = "application/x-protobuf"


class Recorder:
    """A recording emit: appends every event and accepts it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> bool:
        self.events.append(event)
        return True


@contextmanager
def _receiver(emit: Callable[[dict[str, Any]], bool], **kwargs: Any) -> Iterator[OtlpReceiver]:
    kwargs.setdefault("http_port", 0)
    kwargs.setdefault("grpc_port", 0)
    receiver = OtlpReceiver(emit, **kwargs)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop(0.5)


def _provider(exporter: SpanExporter, *, batch: bool = False) -> TracerProvider:
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "agent-app", "deployment.environment.name": "itest"}
        )
    )
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider


def _agent_trace(provider: TracerProvider, workflow: str) -> dict[str, str]:
    """invoke_agent -> workflow (OpenInference CHAIN or gen_ai invoke_workflow) -> execute_tool -> chat,
    plus a plain HTTP span under the tool (not GenAI: dropped). Returns span name -> span id (hex)."""
    tracer = provider.get_tracer("itest.agent")
    ids: dict[str, str] = {}
    workflow_attrs: dict[str, Any] = (
        {"openinference.span.kind": "CHAIN"}
        if workflow == "openinference"
        else {"gen_ai.operation.name": "invoke_workflow"}
    )
    with tracer.start_as_current_span(
        "invoke_agent support",
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "support",
            "gen_ai.provider.name": "openai",
            "gen_ai.conversation.id": "conv-1",
        },
    ) as agent:
        ids["agent"] = f"{agent.get_span_context().span_id:016x}"
        with tracer.start_as_current_span("plan", attributes=workflow_attrs) as chain:
            ids["chain"] = f"{chain.get_span_context().span_id:016x}"
            with tracer.start_as_current_span(
                "execute_tool lookup_order",
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"},
            ) as tool:
                ids["tool"] = f"{tool.get_span_context().span_id:016x}"
                with tracer.start_as_current_span(
                    "GET /orders", attributes={"http.request.method": "GET"}
                ):
                    pass
                with tracer.start_as_current_span(
                    "chat gpt-4o-mini",
                    attributes={
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": "openai",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.usage.input_tokens": 321,
                        "gen_ai.usage.output_tokens": 45,
                        "gen_ai.prompt.0.content": "never copied",
                    },
                ) as chat:
                    ids["chat"] = f"{chat.get_span_context().span_id:016x}"
        ids["trace"] = f"{agent.get_span_context().trace_id:032x}"
    return ids


def _check_agent_trace(events: list[dict[str, Any]], ids: dict[str, str]) -> None:
    assert len(events) == 4, [e["span_id"] for e in events]
    by_id = {e["span_id"]: e for e in events}
    expected = {
        ids["agent"]: ("agent", None),
        ids["chain"]: ("chain", ids["agent"]),
        ids["tool"]: ("tool", ids["chain"]),
        ids["chat"]: ("llm", ids["tool"]),
    }
    assert {k: (e["span_kind"], e.get("parent_span_id")) for k, e in by_id.items()} == expected
    assert {e["trace_id"] for e in events} == {ids["trace"]}
    chat = by_id[ids["chat"]]
    assert (chat["request_model"], chat["input_tokens"], chat["output_tokens"]) == (
        "gpt-4o-mini",
        321,
        45,
    )
    assert by_id[ids["tool"]]["tool_name"] == "lookup"
    assert by_id[ids["agent"]]["agent_name"] == "support"
    assert all((e["service"], e["environment"]) == ("agent-app", "itest") for e in events)
    assert b"never copied" not in orjson.dumps(events)
    for event in events:
        LlmCallEvent.model_validate(orjson.loads(orjson.dumps(event)))


def _post(
    port: int,
    body: bytes,
    content_type: str = PROTOBUF,
    *,
    path: str = "/v1/traces",
    headers: dict[str, str] | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, str, bytes]:
    own = conn is None
    connection = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST", path, body=body, headers={"Content-Type": content_type, **(headers or {})}
        )
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        if own:
            connection.close()


def _status_message(body: bytes, content_type: str) -> str:
    if content_type == PROTOBUF:
        return str(status_pb2.Status.FromString(body).message)
    return str(json.loads(body)["message"])


# --- the OpenTelemetry SDK's exporters -------------------------------------------------------------


def test_sdk_http_exporter_agent_trace_arrives_as_four_events() -> None:
    recorder = Recorder()
    with _receiver(recorder) as receiver:
        exporter = HttpSpanExporter(
            endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/traces",
            compression=Compression.Gzip,
            timeout=10,
        )
        provider = _provider(exporter)
        ids = _agent_trace(provider, "openinference")
        provider.shutdown()
        counts = receiver.counters()
    _check_agent_trace(recorder.events, ids)
    assert counts["requests_ok"] == 5  # SimpleSpanProcessor: one request per span
    assert (counts["spans_received"], counts["events_emitted"]) == (5, 4)
    assert (counts["events_genai"], counts["events_chain_steps"]) == (1, 3)
    assert (counts["spans_dropped_non_genai"], counts["spans_invalid"]) == (1, 0)
    assert counts["requests_rejected"] == 0


def test_sdk_grpc_exporter_agent_trace_arrives_as_four_events() -> None:
    recorder = Recorder()
    with _receiver(recorder, bearer_token=TOKEN) as receiver:
        exporter = GrpcSpanExporter(
            endpoint=f"127.0.0.1:{receiver.grpc_port}",
            insecure=True,
            headers={"authorization": f"Bearer {TOKEN}"},
            compression=grpc.Compression.Gzip,
            timeout=10,
        )
        provider = _provider(exporter, batch=True)
        ids = _agent_trace(provider, "gen_ai")
        assert provider.force_flush(10_000)
        counts = receiver.counters()
        provider.shutdown()
    _check_agent_trace(recorder.events, ids)
    (chain,) = [e for e in recorder.events if e["span_id"] == ids["chain"]]
    assert chain["operation_name"] == "invoke_workflow"
    assert counts["requests_ok"] == 1  # one batch
    assert (counts["spans_received"], counts["events_emitted"]) == (5, 4)


def test_events_reach_the_broker_through_a_real_publisher(broker: Any, layout: TopicLayout) -> None:
    with Publisher(
        broker.bootstrap, layout.events, service="otlp-it", producer_config=QUIET
    ) as sdk:
        with _receiver(sdk.emit) as receiver:
            exporter = HttpSpanExporter(
                endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/traces", timeout=10
            )
            provider = _provider(exporter, batch=True)
            ids = _agent_trace(provider, "openinference")
            assert provider.force_flush(10_000)
            provider.shutdown()
            assert receiver.counters()["events_emitted"] == 4
        assert sdk.flush(30)
        assert sdk.stats.delivered == 4
    raw = _read_events(broker.bootstrap, layout.events, layout.partitions, expect=4)
    events = [LlmCallEvent.model_validate(e) for e in raw]
    assert sorted(e.span_kind for e in events) == ["agent", "chain", "llm", "tool"]
    by_id = {e.span_id: e for e in events}
    assert by_id[ids["chat"]].parent_span_id == ids["tool"]
    assert by_id[ids["chat"]].input_tokens == 321
    assert {e.trace_id for e in events} == {ids["trace"]}
    assert {e.event_id for e in events} == {ids["trace"] + s for s in by_id}


def _read_events(bootstrap: str, topic: str, partitions: int, expect: int) -> list[Any]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "otlp-reader", **QUIET})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    events: list[Any] = []
    deadline = time.monotonic() + 60
    try:
        while len(events) < expect and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            split = split_record(message.value())
            assert isinstance(split, SplitRecord), split
            events.extend(split.events)
    finally:
        consumer.close()
    assert len(events) == expect
    return events


# --- raw OTLP/HTTP: JSON, errors, auth ----------------------------------------------------------------


def _json_body(trace_id: str, spans: list[tuple[str, str, dict[str, Any]]]) -> bytes:
    """OTLP JSON as the spec writes it: hex ids, camelCase, int64 as strings, enums as integers."""
    start = time.time_ns() - 5_000_000_000
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "service.name", "value": {"stringValue": "json-app"}}
                        ]
                    },
                    "scopeSpans": [
                        {
                            "scope": {"name": "hand.written"},
                            "spans": [
                                {
                                    "traceId": trace_id,
                                    "spanId": span_id,
                                    "parentSpanId": parent,
                                    "name": "chat claude",
                                    "kind": 3,
                                    "startTimeUnixNano": str(start),
                                    "endTimeUnixNano": str(start + 900_000_000),
                                    "attributes": [
                                        {"key": k, "value": v} for k, v in attrs.items()
                                    ],
                                    "status": {"code": 1},
                                }
                                for span_id, parent, attrs in spans
                            ],
                        }
                    ],
                }
            ]
        }
    )


CHAT_JSON = {
    "gen_ai.operation.name": {"stringValue": "chat"},
    "gen_ai.system": {"stringValue": "anthropic"},
    "gen_ai.request.model": {"stringValue": "claude-haiku-4-5"},
    "gen_ai.usage.input_tokens": {"intValue": "640"},
    "gen_ai.usage.output_tokens": {"intValue": 72},
    "gen_ai.response.finish_reasons": {"arrayValue": {"values": [{"stringValue": "end_turn"}]}},
}


def test_otlp_json_over_http() -> None:
    trace = "5b8efff798038103d269b633813fc60c"
    recorder = Recorder()
    with _receiver(recorder) as receiver:
        assert receiver.http_port is not None
        body = _json_body(trace, [("eee19b7ec3c1b174", "eee19b7ec3c1b173", CHAT_JSON)])
        status, content_type, reply = _post(receiver.http_port, body, "application/json")
        assert (status, content_type) == (200, "application/json")
        assert json.loads(reply) == {}
        # one span with a 4-byte span id: partial success, the other span arrives
        mixed = _json_body(
            trace,
            [("0102030405060708", "", CHAT_JSON), ("01020304", "", CHAT_JSON)],
        )
        status, _, reply = _post(receiver.http_port, mixed, "application/json; charset=utf-8")
        partial = json.loads(reply)["partialSuccess"]
        assert status == 200 and int(partial["rejectedSpans"]) == 1
        assert "span_id must be 8 non-zero bytes, got 4: '01020304'" in partial["errorMessage"]
    first, second = recorder.events
    assert (first["trace_id"], first["span_id"], first["parent_span_id"]) == (
        trace,
        "eee19b7ec3c1b174",
        "eee19b7ec3c1b173",
    )
    expected = ("anthropic", "claude-haiku-4-5", 640, 72, ["end_turn"], "json-app", "ok")
    assert (
        first["provider_name"],
        first["request_model"],
        first["input_tokens"],
        first["output_tokens"],
        first["finish_reasons"],
        first["service"],
        first["status"],
    ) == expected
    assert second["span_id"] == "0102030405060708" and "parent_span_id" not in second


def test_bad_payload_gets_400_and_the_next_export_on_the_connection_arrives() -> None:
    recorder = Recorder()
    with _receiver(recorder) as receiver:
        port = receiver.http_port
        assert port is not None
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            status, content_type, reply = _post(port, b"\x0a\xff\xff\xff\x0f\x01", conn=conn)
            assert (status, content_type) == (400, PROTOBUF)
            message = _status_message(reply, content_type)
            assert "not an ExportTraceServiceRequest" in message, message
            status, content_type, reply = _post(
                port,
                b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "xyz"}]}]}]}',
                "application/json",
                conn=conn,
            )
            assert status == 400 and "spanId 'xyz' is not hex" in _status_message(
                reply, content_type
            )
            # the same keep-alive connection, then the SDK's exporter: nothing else is lost
            good = _json_body(
                "5b8efff798038103d269b633813fc60d", [("aaaa1b7ec3c1b174", "", CHAT_JSON)]
            )
            status, _, reply = _post(port, good, "application/json", conn=conn)
            assert (status, json.loads(reply)) == (200, {})
        finally:
            conn.close()
        exporter = HttpSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=10)
        provider = _provider(exporter)
        ids = _agent_trace(provider, "openinference")
        provider.shutdown()
        counts = receiver.counters()
    assert recorder.events[0]["span_id"] == "aaaa1b7ec3c1b174"
    _check_agent_trace(recorder.events[1:], ids)
    assert (counts["requests_rejected_bad_request"], counts["requests_rejected"]) == (2, 2)
    assert counts["requests_ok"] == 6


def test_http_rejections_name_their_reason() -> None:
    recorder = Recorder()
    with _receiver(recorder, bearer_token=TOKEN, max_body_bytes=4096) as receiver:
        port = receiver.http_port
        assert port is not None
        auth = {"Authorization": f"Bearer {TOKEN}"}
        good = ExportTraceServiceRequest().SerializeToString()

        status, content_type, reply = _post(port, good, headers={"Authorization": "Bearer nope"})
        assert status == 401 and "bearer token" in _status_message(reply, content_type)
        status, _, _ = _post(port, good)
        assert status == 401
        status, _, reply = _post(port, good, "text/plain", headers=auth)
        assert status == 415 and "'text/plain'" in _status_message(reply, "application/json")
        status, content_type, reply = _post(port, b"\x00" * 5000, headers=auth)
        assert status == 413 and "5000 bytes exceeds the limit of 4096" in _status_message(
            reply, content_type
        )
        status, _, reply = _post(port, good, path="/v1/metrics", headers=auth)
        assert status == 404 and "/v1/metrics" in _status_message(reply, PROTOBUF)
        status, content_type, reply = _post(port, good, headers=auth)
        assert (status, content_type) == (200, PROTOBUF)
        assert ExportTraceServiceResponse.FromString(reply) == ExportTraceServiceResponse()

        # the SDK exporter with the right token gets through; with a wrong one it fails
        for token, expected in (
            (TOKEN, SpanExportResult.SUCCESS),
            ("wrong", SpanExportResult.FAILURE),
        ):
            exporter = HttpSpanExporter(
                endpoint=f"http://127.0.0.1:{port}/v1/traces",
                headers={"authorization": f"Bearer {token}"},
                timeout=10,
            )
            provider = TracerProvider()
            results: list[SpanExportResult] = []
            provider.add_span_processor(SimpleSpanProcessor(_Watching(exporter, results)))
            with provider.get_tracer("t").start_as_current_span(
                "chat", attributes={"gen_ai.operation.name": "chat"}
            ):
                pass
            provider.shutdown()
            assert results == [expected]
        counts = receiver.counters()
    assert len(recorder.events) == 1
    assert recorder.events[0]["service"] == "otlp"  # unknown_service:... -> the default
    assert counts["requests_rejected_unauthenticated"] == 3
    assert counts["requests_rejected_unsupported_media_type"] == 1
    assert counts["requests_rejected_too_large"] == 1
    assert counts["requests_rejected_not_found"] == 1
    assert counts["requests_ok"] == 2


class _Watching(SpanExporter):
    """Passes spans to a real exporter and records its results."""

    def __init__(self, inner: SpanExporter, results: list[SpanExportResult]) -> None:
        self._inner = inner
        self._results = results

    def export(self, spans: Any) -> SpanExportResult:
        result = self._inner.export(spans)
        self._results.append(result)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()


# --- raw OTLP/gRPC ------------------------------------------------------------------------------------


def test_grpc_bad_token_and_bad_message() -> None:
    recorder = Recorder()
    with _receiver(recorder, bearer_token=TOKEN) as receiver:
        with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
            stub = TraceServiceStub(channel)  # type: ignore[no-untyped-call]
            request = ExportTraceServiceRequest()
            with pytest.raises(grpc.RpcError) as wrong:
                stub.Export(request, metadata=[("authorization", "Bearer wrong")], timeout=10)
            assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "bearer token" in wrong.value.details()
            with pytest.raises(grpc.RpcError) as missing:
                stub.Export(request, timeout=10)
            assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED

            raw = channel.unary_unary(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                request_serializer=None,
                response_deserializer=ExportTraceServiceResponse.FromString,
            )
            metadata = [("authorization", f"Bearer {TOKEN}")]
            with pytest.raises(grpc.RpcError) as bad:
                raw(b"\x0a\xff\xff\xff\x0f\x01", metadata=metadata, timeout=10)
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "not an ExportTraceServiceRequest" in bad.value.details()
            ok = stub.Export(request, metadata=metadata, timeout=10)
            assert ok == ExportTraceServiceResponse()
        counts = receiver.counters()
    assert counts["requests_rejected_unauthenticated"] == 2
    assert counts["requests_rejected_bad_request"] == 1
    assert counts["requests_ok"] == 1


# --- serve(): what `llmwatch otlp` runs -------------------------------------------------------------


def test_serve_runs_until_stop_is_set() -> None:
    recorder = Recorder()
    stop = threading.Event()
    http_port, grpc_port = free_port(), free_port()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            serve(recorder, http_port=http_port, grpc_port=grpc_port, bearer_token=TOKEN, stop=stop)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    body = _json_body("5b8efff798038103d269b633813fc60e", [("bbbb1b7ec3c1b174", "", CHAT_JSON)])
    deadline = time.monotonic() + 10
    status = 0
    while time.monotonic() < deadline:
        try:
            status, _, _ = _post(
                http_port, body, "application/json", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            break
        except ConnectionRefusedError:
            time.sleep(0.05)
    assert status == 200
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        # serve() may start the gRPC server a moment after the HTTP one answered: wait for it.
        grpc.channel_ready_future(channel).result(timeout=10)
        stub = TraceServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as denied:
            stub.Export(ExportTraceServiceRequest(), timeout=10)
        assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and failures == []
    assert [e["span_id"] for e in recorder.events] == ["bbbb1b7ec3c1b174"]
    with pytest.raises(ConnectionRefusedError):
        _post(http_port, body, "application/json")
