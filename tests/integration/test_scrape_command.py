"""``llmwatch scrape`` as a process: a vLLM-shaped /metrics endpoint on 127.0.0.1 (standing in for a GPU
server) becomes pipeline-metric rows on the metrics topic, with a tokens/s rate from two scrapes; an
unreachable server is counted, not fatal; a bad URL is refused with a message naming it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llmwatch.broker import free_port
from streams.periodic import PIPELINE_METRICS_TABLE, decode_snapshot
from streams.topics import TopicLayout
from tests.integration.kafka_io import read_until

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


class _Metrics(BaseHTTPRequestHandler):
    generated = 0.0

    def do_GET(self) -> None:
        type(self).generated += 500.0
        body = (
            "# TYPE vllm:num_requests_waiting gauge\n"
            f'vllm:num_requests_waiting{{model_name="{MODEL}"}} 4\n'
            "# TYPE vllm:generation_tokens counter\n"
            f'vllm:generation_tokens_total{{model_name="{MODEL}"}} {self.generated}\n'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture()
def metrics_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def _rows(values: list[bytes]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for value in values:
        try:
            rows += decode_snapshot(value).get(PIPELINE_METRICS_TABLE, [])
        except ValueError:
            continue
    return [r for r in rows if r["process"] == "scrape"]


def test_scrape_publishes_serving_metrics(
    broker: Any, layout: TopicLayout, metrics_url: str, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    env = {
        **os.environ,
        "LLMWATCH_BOOTSTRAP": broker.bootstrap,
        "LLMWATCH_TOPIC_PREFIX": layout.prefix,
        "LLMWATCH_DATA_DIR": str(tmp_path),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmwatch", "scrape", metrics_url, dead, "--interval", "1"],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:

        def rated(values: list[bytes]) -> bool:
            return any(r["metric"] == "generation_tokens_per_s" for r in _rows(values))

        rows = _rows(read_until(broker.bootstrap, layout.metrics, 1, rated))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    by_metric = {r["metric"]: r for r in rows}
    assert by_metric["queue_depth"]["value"] == 4.0
    assert by_metric["queue_depth"]["labels"] == {
        "host": metrics_url.split("/")[2],
        "model": MODEL,
        "server": "vllm",
    }
    rate = by_metric["generation_tokens_per_s"]["value"]
    assert 250.0 < rate < 1000.0  # 500 tokens per ~1 s scrape interval
    errors = [r for r in rows if r["metric"] == "scrape_errors"]
    assert errors and errors[0]["labels"]["host"] == dead.split("/")[2]


def test_a_bad_url_is_refused_with_its_name(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "llmwatch", "scrape", "gpu-1:8000/metrics", "--interval", "1"],
        env={**os.environ, "LLMWATCH_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "'gpu-1:8000/metrics'" in result.stderr
