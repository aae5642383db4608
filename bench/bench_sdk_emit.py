"""Cost of ``Publisher.emit()`` on the app's thread, next to a bare confluent-kafka ``produce()`` and an
OpenTelemetry SDK span, all in one run.

Run: ``.venv/bin/python -m bench.bench_sdk_emit``. Prints a table and writes
``bench/results/sdk_emit.json``. Scenarios, each :data:`EVENTS` calls in a tight loop after
:data:`WARMUP_EVENTS` warm-up calls, every call timed with ``perf_counter_ns``:

- ``llmwatch emit``, broker down (dicts) and with the embedded Tansu broker up (dicts, and
  ``LlmCallEvent`` models). ``emit`` only queues; the SDK's thread checks, encodes and sends. The
  tight loop is the worst case for the app's thread (the SDK's thread competes for the GIL all the
  time; a real app emits far less often) and the best case for ``emit``'s own cost (the thread
  rarely gets the GIL, so most work is left for after the loop). So the table also says how long
  after the loop the thread took to check every event (``checked s``) and, broker up, until the
  broker acknowledged them all (``flush s``, which includes that).
- ``confluent-kafka produce()``, Tansu up: one pre-encoded event per record handed to librdkafka, the
  same producer settings as the SDK's; ``poll(0)`` every :data:`POLL_EVERY` calls, outside the timing.
- ``OpenTelemetry span``: ``start_span`` with the GenAI attributes of the same call, then ``end``,
  with a ``BatchSpanProcessor`` and an exporter that discards (no network).

Also recorded per scenario: garbage collections that ran during the timed loop (gen 0/1/2), the
usual source of the tail of a Python call. Figures are from a shared 2-core machine: compare
scenarios within one run, do not read them as absolutes.
"""

from __future__ import annotations

import gc
import json
import platform
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import confluent_kafka
import numpy as np
import opentelemetry.version
import orjson
from confluent_kafka import Producer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.util.types import AttributeValue

from llmwatch.broker import TansuBroker, free_port
from producers.events import LlmCallEvent
from producers.sdk import Publisher, PublisherConfig, bucket_for, bucket_key
from streams.admin import ensure_topics
from streams.topics import TopicLayout

__all__ = ["main"]

RESULTS: Final[Path] = Path(__file__).parent / "results" / "sdk_emit.json"
EVENTS: Final[int] = 50_000
WARMUP_EVENTS: Final[int] = 2_000
TRACES: Final[int] = 1_000
FLUSH_TIMEOUT_S: Final[float] = 60.0
CHECK_POLL_S: Final[float] = 0.005
POLL_EVERY: Final[int] = 1_000
QUIET: Final[dict[str, Any]] = {"log_level": 0}


@dataclass(frozen=True, slots=True)
class Result:
    scenario: str
    events: int
    p50_us: float
    p99_us: float
    p999_us: float
    max_ms: float
    mean_us: float
    accepted: int  # llmwatch: accepted by the SDK's checks; others: calls that did not fail
    dropped: int
    checked_s: float | None  # llmwatch: after the loop, until the SDK's thread checked every event
    flush_s: float | None  # after the loop, until the broker acknowledged everything (or exported)
    delivered: int
    event_bytes: int
    gc_runs: list[int]  # collections of generations 0, 1, 2 during the timed loop


def _event_dict(n: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "event_id": uuid.uuid4().hex,
        "trace_id": f"trace-{n % TRACES}",
        "start_time": now,
        "end_time": now,
        "service": "bench",
        "provider_name": "openai",
        "request_model": "gpt-4o-mini",
        "input_tokens": 812,
        "output_tokens": 164,
        "cache_read_input_tokens": 512,
        "finish_reasons": ["stop"],
        "time_to_first_token_ms": 0.0,
        "metadata": {"team": "search", "variant": "b"},
    }


def _event_model(n: int) -> LlmCallEvent:
    return LlmCallEvent.model_validate(_event_dict(n))


def _gc_runs() -> list[int]:
    return [generation["collections"] for generation in gc.get_stats()]


def _timed(call: Callable[[Any], object], items: Sequence[Any]) -> tuple[np.ndarray, list[int]]:
    """Nanoseconds of each ``call(item)``, and the collections the loop triggered."""
    durations = np.empty(len(items), dtype=np.int64)
    clock = time.perf_counter_ns
    gc_before = _gc_runs()
    for n, item in enumerate(items):
        started = clock()
        call(item)
        durations[n] = clock() - started
    return durations, [after - before for after, before in zip(_gc_runs(), gc_before, strict=True)]


def _result(name: str, durations: np.ndarray, gc_runs: list[int], **fields: Any) -> Result:
    us = durations / 1_000.0
    return Result(
        scenario=name,
        events=len(durations),
        p50_us=float(np.percentile(us, 50)),
        p99_us=float(np.percentile(us, 99)),
        p999_us=float(np.percentile(us, 99.9)),
        max_ms=float(us.max() / 1_000.0),
        mean_us=float(us.mean()),
        gc_runs=gc_runs,
        **fields,
    )


def _wait_checked(publisher: Publisher) -> float:
    """Seconds until the SDK's thread has checked every queued event (at most the flush timeout)."""
    started = time.perf_counter()
    deadline = started + FLUSH_TIMEOUT_S
    while publisher.stats.queued and time.perf_counter() < deadline:
        time.sleep(CHECK_POLL_S)
    return time.perf_counter() - started


def _run_emit(
    name: str, publisher: Publisher, make: Callable[[int], object], flush: bool
) -> Result:
    for n in range(WARMUP_EVENTS):
        publisher.emit(make(n))  # type: ignore[arg-type]
    _wait_checked(publisher)
    if flush:
        publisher.flush(FLUSH_TIMEOUT_S)
    before = publisher.stats
    events = [make(n) for n in range(EVENTS)]
    durations, gc_runs = _timed(publisher.emit, events)
    started = time.perf_counter()
    checked_s = _wait_checked(publisher)
    flush_s = None
    if flush:
        publisher.flush(FLUSH_TIMEOUT_S)
        flush_s = time.perf_counter() - started
    after = publisher.stats
    sample = events[0]
    size = len(sample.to_json() if isinstance(sample, LlmCallEvent) else orjson.dumps(sample))
    return _result(
        name,
        durations,
        gc_runs,
        accepted=after.emitted - before.emitted,
        dropped=after.rejected - before.rejected,
        checked_s=checked_s,
        flush_s=flush_s,
        delivered=after.delivered - before.delivered,
        event_bytes=size,
    )


def _broker_down() -> Result:
    publisher = Publisher(f"127.0.0.1:{free_port()}", "bench", producer_config=QUIET)
    try:
        return _run_emit("emit, broker down, dict", publisher, _event_dict, flush=False)
    finally:
        publisher.close(timeout=0.5)


def _raw_produce(bootstrap: str, topic: str) -> Result:
    """A bare ``Producer.produce()`` per event, with the SDK's producer settings."""
    settings = PublisherConfig(bootstrap, topic, producer_config=QUIET).kafka_config()
    producer = Producer(settings)
    options = orjson.OPT_NAIVE_UTC
    records = [
        (
            orjson.dumps(_event_dict(n), option=options),
            bucket_key(bucket_for(f"trace-{n % TRACES}")),
        )
        for n in range(WARMUP_EVENTS + EVENTS)
    ]
    refused = 0

    def produce(record: tuple[bytes, bytes]) -> None:
        nonlocal refused
        try:
            producer.produce(topic, record[0], key=record[1])
        except BufferError:
            refused += 1

    for record in records[:WARMUP_EVENTS]:
        produce(record)
    producer.flush(FLUSH_TIMEOUT_S)
    refused = 0
    durations = np.empty(EVENTS, dtype=np.int64)
    clock = time.perf_counter_ns
    gc_before = _gc_runs()
    for n, record in enumerate(records[WARMUP_EVENTS:]):
        started = clock()
        produce(record)
        durations[n] = clock() - started
        if n % POLL_EVERY == 0:
            producer.poll(0)  # delivery reports, outside the timing
    gc_runs = [after - before for after, before in zip(_gc_runs(), gc_before, strict=True)]
    started_flush = time.perf_counter()
    left = producer.flush(FLUSH_TIMEOUT_S)
    flush_s = time.perf_counter() - started_flush
    return _result(
        "confluent-kafka produce()",
        durations,
        gc_runs,
        accepted=EVENTS - refused,
        dropped=refused,
        checked_s=None,
        flush_s=flush_s,
        delivered=EVENTS - refused - left,
        event_bytes=len(records[0][0]),
    )


def _broker_up() -> list[Result]:
    results = []
    with TansuBroker() as broker:
        layout = TopicLayout(prefix=f"bench{uuid.uuid4().hex[:6]}")
        ensure_topics(broker.bootstrap, layout.specs())
        for name, make in (
            ("emit, Tansu up, dict", _event_dict),
            ("emit, Tansu up, LlmCallEvent", _event_model),
        ):
            publisher = Publisher(broker.bootstrap, layout.events, producer_config=QUIET)
            results.append(_run_emit(name, publisher, make, flush=True))
            publisher.close()
        results.append(_raw_produce(broker.bootstrap, layout.events))
    return results


class _DiscardingExporter(SpanExporter):
    """Counts the spans it is given and drops them."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _otel_span() -> Result:
    """``start_span`` + ``end`` with the OpenTelemetry SDK's BatchSpanProcessor, nothing exported."""
    exporter = _DiscardingExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 812,
        "gen_ai.usage.output_tokens": 164,
        "gen_ai.usage.cache_read.input_tokens": 512,
        "gen_ai.response.finish_reasons": ("stop",),
        "service.team": "search",
    }

    def span(_: int) -> None:
        tracer.start_span("chat gpt-4o-mini", attributes=attributes).end()

    try:
        for n in range(WARMUP_EVENTS):
            span(n)
        provider.force_flush()
        exported_before = exporter.exported
        durations, gc_runs = _timed(span, range(EVENTS))
        started = time.perf_counter()
        provider.force_flush()
        flush_s = time.perf_counter() - started
        exported = exporter.exported - exported_before
    finally:
        provider.shutdown()
    return _result(
        "OpenTelemetry span (batch)",
        durations,
        gc_runs,
        accepted=exported,
        dropped=EVENTS - exported,  # the processor's queue was full: dropped without a count
        checked_s=None,
        flush_s=flush_s,
        delivered=exported,
        event_bytes=0,
    )


def main() -> None:
    results = [_broker_down(), _otel_span(), *_broker_up()]
    columns = ("p50 us", "p99 us", "p99.9 us", "max ms", "mean us", "accepted", "delivered")
    print(
        f"{'scenario':<30}" + "".join(f"{c:>10}" for c in (*columns, "checked s", "flush s", "gc"))
    )
    for r in results:
        checked = "-" if r.checked_s is None else f"{r.checked_s:.3f}"
        flush = "-" if r.flush_s is None else f"{r.flush_s:.3f}"
        gc_runs = "/".join(str(n) for n in r.gc_runs)
        print(
            f"{r.scenario:<30}{r.p50_us:>10.2f}{r.p99_us:>10.2f}{r.p999_us:>10.1f}"
            f"{r.max_ms:>10.2f}{r.mean_us:>10.2f}{r.accepted:>10,}{r.delivered:>10,}"
            f"{checked:>10}{flush:>10}{gc_runs:>10}"
        )
    payload = {
        "python": platform.python_version(),
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
        "opentelemetry_sdk": opentelemetry.version.__version__,
        "events_per_scenario": EVENTS,
        "results": [asdict(r) for r in results],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
