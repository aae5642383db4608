"""``llmwatch otlp`` as a process: an OTLP/HTTP export from the real OpenTelemetry SDK reaches the events
topic, the receiver's counters reach the metrics topic, and SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from llmwatch.broker import free_port
from producers.events import LlmCallEvent
from producers.wire import SplitRecord, split_record
from streams.periodic import PIPELINE_METRICS_TABLE, decode_snapshot
from streams.topics import TopicLayout
from tests.integration.kafka_io import read_until


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"llmwatch otlp did not listen on {port}")


def test_the_otlp_command_publishes_spans_and_its_counters(
    broker: Any, layout: TopicLayout, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LLMWATCH_BOOTSTRAP": broker.bootstrap,
        "LLMWATCH_TOPIC_PREFIX": layout.prefix,
        "LLMWATCH_PARTITIONS": str(layout.partitions),
        "LLMWATCH_DATA_DIR": str(tmp_path),
        "LLMWATCH_SNAPSHOT_INTERVAL_S": "0.5",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmwatch", "otlp", "--http-port", str(port), "--grpc-port", "0"],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_port(port, proc)
        provider = TracerProvider(resource=Resource.create({"service.name": "rag-app"}))
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=10)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("itest")
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.provider.name", "openai")
            span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            span.set_attribute("gen_ai.usage.input_tokens", 42)
            span.set_attribute("gen_ai.usage.output_tokens", 7)
        with tracer.start_as_current_span("GET /health"):
            pass  # not GenAI: counted and dropped
        provider.shutdown()

        records = read_until(
            broker.bootstrap, layout.events, layout.partitions, lambda v: len(v) >= 1
        )
        split = split_record(records[0])
        assert isinstance(split, SplitRecord)
        (event,) = [LlmCallEvent.model_validate(e) for e in split.events]
        assert (event.service, event.request_model, event.input_tokens) == (
            "rag-app",
            "gpt-4o-mini",
            42,
        )

        def counted(values: list[bytes]) -> bool:
            return any(_dropped(v) >= 1 for v in values)

        metrics = read_until(broker.bootstrap, layout.metrics, 1, counted)
        assert counted(metrics), "the receiver's counters must reach the metrics topic"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def _dropped(value: bytes) -> float:
    try:
        rows = decode_snapshot(value).get(PIPELINE_METRICS_TABLE, [])
    except ValueError:
        return 0.0
    return sum(
        float(r["value"])
        for r in rows
        if r["process"] == "otlp" and r["metric"] == "spans_dropped_non_genai"
    )
