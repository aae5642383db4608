"""An OTLP export of a 4-level agent trace, from the real OpenTelemetry SDK, becomes 4 rows of
``llm_calls`` with the right parents after the whole pipeline (receiver -> SDK -> worker -> sink), and
``llmwatch trace`` shows them as a tree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from rich.console import Console

from llmwatch.broker import TansuBroker
from llmwatch.settings import Settings
from llmwatch.trace_view import fetch_trace, render_trace
from producers.otlp import OtlpReceiver
from producers.sdk import Publisher
from streams.admin import ensure_topics
from tests.integration.kafka_io import QUIET
from tests.integration.pipeline_harness import (
    ProcessGroup,
    TopicWatcher,
    pipeline_settings,
    sink_thread,
    wait_drained,
)
from tests.integration.test_otlp_receiver import _agent_trace, _provider


@pytest.fixture()
def settings(broker: TansuBroker, topic_prefix: str, tmp_path: Path, chdb_dsn: str) -> Settings:
    settings = pipeline_settings(
        broker.bootstrap, topic_prefix, tmp_path / "data", clickhouse_dsn=chdb_dsn
    )
    ensure_topics(broker.bootstrap, settings.layout.specs())
    return settings


@pytest.fixture()
def receiver(settings: Settings) -> Iterator[OtlpReceiver]:
    publisher = Publisher(settings.bootstrap, settings.layout.events, producer_config=QUIET)
    receiving = OtlpReceiver(publisher.emit, http_port=0, grpc_port=None)
    receiving.start()
    try:
        yield receiving
    finally:
        receiving.stop(0.5)
        publisher.close(timeout=10.0)


def test_an_agent_trace_lands_as_four_rows_with_their_parents(
    settings: Settings,
    processes: ProcessGroup,
    ch_client: Any,
    watcher: TopicWatcher,
    receiver: OtlpReceiver,
) -> None:
    processes.start("worker", settings)
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/traces")
    provider = _provider(exporter)
    ids = _agent_trace(provider, "openinference")
    provider.shutdown()
    with sink_thread(settings, ch_client):
        wait_drained(watcher, settings, calls=4, dead_letters=0, processes=processes)
    rows = ch_client.query(
        f"SELECT span_id, parent_span_id, span_kind FROM {settings.database}.llm_calls FINAL "
        "WHERE trace_id = {t:String} ORDER BY start_time",
        parameters={"t": ids["trace"]},
    ).result_rows
    assert sorted(rows) == sorted(
        [
            (ids["agent"], "", "agent"),
            (ids["chain"], ids["agent"], "chain"),
            (ids["tool"], ids["chain"], "tool"),
            (ids["chat"], ids["tool"], "llm"),
        ]
    )
    console = Console(width=160, record=True, color_system=None)
    console.print(
        render_trace(ids["trace"], fetch_trace(ch_client, settings.database, ids["trace"]))
    )
    text = console.export_text()
    assert "4 steps" in text and "1 LLM calls" in text and "(orphan)" not in text
