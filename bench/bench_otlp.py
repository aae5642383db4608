"""Spans per second the OTLP receiver sustains: OTLP/HTTP protobuf and OTLP/gRPC, batches of 512 spans.

Run: ``.venv/bin/python -m bench.bench_otlp``. Prints a table and writes ``bench/results/otlp.json``.

Each request carries :data:`BATCH` spans shaped like real GenAI exports: a 4-level agent trace pattern
(invoke_agent -> workflow -> execute_tool -> chat) where two spans in three are chat calls with the
attributes the openai-v2 instrumentation sets, plus one HTTP span in eight that is not GenAI (dropped).
The receiver's emit is a counting function (no Kafka), so the figures are the receiver's own cost:
body read, protobuf parse, mapping, emit calls and the reply. Pre-serialized bodies are sent by 1 and by
4 concurrent clients over keep-alive connections (HTTP: ``http.client``; gRPC: the generated stub on
one channel per client) for :data:`SECONDS` seconds after a warm-up. ``mapping only`` times
``spans_to_events`` alone on the same request. ``ms/req`` is the round trip one client sees (with 4
clients, 4 requests share the receiver). A real ``Publisher.emit`` adds its own few microseconds per
event (``bench/bench_sdk_emit.py``). Figures are from this shared 2-core machine, where the
clients compete with the receiver for the CPU: compare runs, do not read them as absolutes.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import grpc  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from producers.otlp import OtlpReceiver, spans_to_events

__all__ = ["main"]

RESULTS: Final[Path] = Path(__file__).parent / "results" / "otlp.json"
BATCH: Final = 512
SECONDS: Final = 5.0
WARMUP_S: Final = 1.0
MAPPING_ROUNDS: Final = 40


@dataclass(frozen=True, slots=True)
class Result:
    scenario: str
    clients: int
    requests: int
    spans: int
    seconds: float
    spans_per_s: float
    events_per_s: float
    ms_per_request: float
    body_bytes: int


def _value(value: Any) -> AnyValue:
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(_value(v) for v in value)
        return out
    return AnyValue(int_value=value)


def _attrs(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in values.items()]


def _request(batch: int = BATCH) -> ExportTraceServiceRequest:
    start = time.time_ns() - 60_000_000_000
    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 812,
        "gen_ai.usage.output_tokens": 164,
        "server.address": "api.openai.com",
    }
    kinds = [
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"},
        {"openinference.span.kind": "CHAIN"},
        {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order"},
    ]
    spans = []
    for n in range(batch):
        trace_id = (n // 8 + 1).to_bytes(16, "big")
        span_id = (n + 1).to_bytes(8, "big")
        parent = n.to_bytes(8, "big") if n % 8 else b""
        if n % 8 == 7:
            attrs: dict[str, Any] = {"http.request.method": "GET", "url.path": "/orders/1234"}
        elif n % 3 == 2:
            attrs = kinds[n % len(kinds)]
        else:
            attrs = chat
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=parent,
                name=f"span {n % 8}",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=start + n * 1000,
                end_time_unix_nano=start + n * 1000 + 750_000_000,
                attributes=_attrs(attrs),
            )
        )
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(
                    attributes=_attrs(
                        {"service.name": "bench-app", "deployment.environment.name": "bench"}
                    )
                ),
                scope_spans=[
                    ScopeSpans(
                        scope=InstrumentationScope(name="opentelemetry.instrumentation.openai_v2"),
                        spans=spans,
                    )
                ],
            )
        ]
    )


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, event: dict[str, Any]) -> bool:
        self.count += 1  # racy across threads by a few at most; the receiver's counters are exact
        return True


def _drive(clients: int, make_client: Callable[[], Callable[[], None]]) -> tuple[int, float]:
    """Run ``clients`` threads sending requests; the number sent after the warm-up and its duration."""
    stop = threading.Event()
    measuring = threading.Event()
    sent = [0] * clients
    errors: list[BaseException] = []

    def run(slot: int) -> None:
        try:
            send = make_client()
            while not stop.is_set():
                send()
                if measuring.is_set():
                    sent[slot] += 1
        except BaseException as exc:  # surfaced after the run
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(WARMUP_S)
    measuring.set()
    began = time.perf_counter()
    time.sleep(SECONDS)
    stop.set()
    elapsed = time.perf_counter() - began
    for thread in threads:
        thread.join(30)
    if errors:
        raise errors[0]
    return sum(sent), elapsed


def _http_client(port: int, body: bytes) -> Callable[[], None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/x-protobuf"}

    def send() -> None:
        conn.request("POST", "/v1/traces", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")

    return send


def _grpc_client(port: int, request: ExportTraceServiceRequest) -> Callable[[], None]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = TraceServiceStub(channel)  # type: ignore[no-untyped-call]

    def send() -> None:
        stub.Export(request, timeout=30)

    return send


def _result(
    scenario: str, clients: int, requests: int, seconds: float, events_per_batch: int, size: int
) -> Result:
    spans = requests * BATCH
    return Result(
        scenario=scenario,
        clients=clients,
        requests=requests,
        spans=spans,
        seconds=round(seconds, 3),
        spans_per_s=round(spans / seconds, 1),
        events_per_s=round(requests * events_per_batch / seconds, 1),
        ms_per_request=round(seconds * 1000.0 * clients / max(requests, 1), 3),
        body_bytes=size,
    )


def main() -> None:
    request = _request()
    body = request.SerializeToString()
    mapped = spans_to_events(request)
    events_per_batch = len(mapped.events)
    results: list[Result] = []

    began = time.perf_counter()
    for _ in range(MAPPING_ROUNDS):
        spans_to_events(ExportTraceServiceRequest.FromString(body))
    mapping_s = time.perf_counter() - began
    results.append(
        _result("parse + mapping only", 1, MAPPING_ROUNDS, mapping_s, events_per_batch, len(body))
    )

    counter = _Counter()
    with OtlpReceiver(counter, http_port=0, grpc_port=0, grpc_workers=4) as receiver:
        http_port, grpc_port = receiver.http_port, receiver.grpc_port
        assert http_port is not None and grpc_port is not None
        for clients in (1, 4):
            sent, seconds = _drive(clients, lambda: _http_client(http_port, body))
            results.append(
                _result("OTLP/HTTP protobuf", clients, sent, seconds, events_per_batch, len(body))
            )
            sent, seconds = _drive(clients, lambda: _grpc_client(grpc_port, request))
            results.append(
                _result("OTLP/gRPC", clients, sent, seconds, events_per_batch, len(body))
            )
        counts = receiver.counters()
    assert counts["requests_rejected"] == 0 and counts["spans_invalid"] == 0, counts

    columns = ("clients", "requests", "spans/s", "events/s", "ms/req")
    print(f"{'scenario':<22}" + "".join(f"{c:>12}" for c in columns))
    for r in results:
        print(
            f"{r.scenario:<22}{r.clients:>12}{r.requests:>12}{r.spans_per_s:>12,.0f}"
            f"{r.events_per_s:>12,.0f}{r.ms_per_request:>12.2f}"
        )
    payload = {
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "cpus": os.cpu_count(),
        "batch_spans": BATCH,
        "events_per_batch": events_per_batch,
        "body_bytes": len(body),
        "seconds_per_scenario": SECONDS,
        "receiver_counters": counts,
        "results": [asdict(r) for r in results],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
