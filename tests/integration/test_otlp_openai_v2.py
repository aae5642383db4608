"""opentelemetry-instrumentation-openai-v2 driving a real ``openai`` client against a local chat server:
its spans, exported to the receiver, map to llm events (success and error)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import orjson
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.trace import Status, StatusCode

from producers.events import LlmCallEvent
from tests.integration.test_otlp_receiver import Recorder, _provider, _receiver

# --- opentelemetry-instrumentation-openai-v2 around a real openai client ------------------------------

CHAT_COMPLETION = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    "object": "chat.completion",
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Your order shipped on Tuesday.",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 27,
        "completion_tokens": 8,
        "total_tokens": 35,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_44709d6fcb",
}


class _ChatHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        body = orjson.dumps({**CHAT_COMPLETION, "created": int(time.time())})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _openai_instrumentor() -> Any:
    # Imported here so that a broken install fails these tests only, with the import error.
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    return OpenAIInstrumentor()  # type: ignore[no-untyped-call]


@pytest.fixture()
def chat_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_openai_v2_instrumentation_span_maps_to_an_llm_event(chat_server: str) -> None:
    recorder = Recorder()
    with _receiver(recorder) as receiver:
        exporter = HttpSpanExporter(
            endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/traces", timeout=10
        )
        provider = _provider(exporter)
        instrumentor = _openai_instrumentor()
        instrumentor.instrument(tracer_provider=provider)
        try:
            client = openai.OpenAI(base_url=chat_server, api_key="sk-test", max_retries=0)
            reply = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Where is my order 1234?"}],
                temperature=0.2,
            )
        finally:
            instrumentor.uninstrument()
            provider.shutdown()
    assert reply.choices[0].message.content == "Your order shipped on Tuesday."
    (event,) = recorder.events
    expected = {
        "span_kind": "llm",
        "operation_name": "chat",
        "provider_name": "openai",
        "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18",
        "response_id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "input_tokens": 27,
        "output_tokens": 8,
        "finish_reasons": ["stop"],
        "temperature": 0.2,
        "status": "ok",
        "service": "agent-app",
    }
    assert {k: event.get(k) for k in expected} == expected
    assert b"order 1234" not in orjson.dumps(event) and b"Tuesday" not in orjson.dumps(event)
    LlmCallEvent.model_validate(orjson.loads(orjson.dumps(event)))


def test_openai_v2_error_span_maps_to_an_error_event(chat_server: str) -> None:
    recorder = Recorder()
    with _receiver(recorder) as receiver:
        exporter = HttpSpanExporter(
            endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/traces", timeout=10
        )
        provider = _provider(exporter)
        instrumentor = _openai_instrumentor()
        instrumentor.instrument(tracer_provider=provider)
        try:
            client = openai.OpenAI(
                base_url=chat_server + "/missing", api_key="sk-test", max_retries=0
            )
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
        finally:
            instrumentor.uninstrument()
            provider.shutdown()
    (event,) = recorder.events
    assert event["status"] == "error"
    # the instrumentation sets the class itself; the SDK stringifies it as "<class '...'>"
    assert event["error_type"] in {"NotFoundError", "openai.NotFoundError"}, event["error_type"]
    LlmCallEvent.model_validate(orjson.loads(orjson.dumps(event)))


def test_status_error_from_the_sdk_span() -> None:
    recorder = Recorder()
    with _receiver(recorder, http_port=None) as receiver:
        exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{receiver.grpc_port}", insecure=True)
        provider = _provider(exporter)
        tracer = provider.get_tracer("t")
        with tracer.start_as_current_span(
            "chat", attributes={"gen_ai.operation.name": "chat"}
        ) as span:
            span.record_exception(TimeoutError("upstream slow"))
            span.set_status(Status(StatusCode.ERROR, "timed out"))
        provider.shutdown()
        assert receiver.http_port is None
    (event,) = recorder.events
    assert (event["status"], event["error_type"]) == ("error", "TimeoutError")
