"""Cost of ``Publisher.emit()`` on the app's thread, with the broker down and with Tansu up.

Run: ``.venv/bin/python -m bench.bench_sdk_emit``. Prints a table and writes
``bench/results/sdk_emit.json``. Each scenario emits :data:`EVENTS` events in a tight loop after a
warm-up (the worst case: the SDK's thread competes for the GIL all the time; a real app emits far
less often) and times every call with ``perf_counter_ns``. With the broker up it then flushes and
reports how long delivery took. Figures are from this shared 2-core machine: compare runs, do not
read them as absolutes.
"""

from __future__ import annotations

import json
import platform
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import confluent_kafka
import numpy as np
import orjson

from llmwatch.broker import TansuBroker, free_port
from producers.events import LlmCallEvent
from producers.sdk import Publisher
from streams.admin import ensure_topics
from streams.topics import TopicLayout

__all__ = ["main"]

RESULTS: Final[Path] = Path(__file__).parent / "results" / "sdk_emit.json"
EVENTS: Final[int] = 50_000
WARMUP_EVENTS: Final[int] = 2_000
TRACES: Final[int] = 1_000
FLUSH_TIMEOUT_S: Final[float] = 60.0
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
    accepted: int
    dropped: int
    flush_s: float | None
    delivered: int
    event_bytes: int


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


def _run(name: str, publisher: Publisher, make: Callable[[int], object], flush: bool) -> Result:
    for n in range(WARMUP_EVENTS):
        publisher.emit(make(n))  # type: ignore[arg-type]
    if flush:
        publisher.flush(FLUSH_TIMEOUT_S)
    before = publisher.stats
    events = [make(n) for n in range(EVENTS)]
    durations = np.empty(EVENTS, dtype=np.int64)
    for n, event in enumerate(events):
        started = time.perf_counter_ns()
        publisher.emit(event)  # type: ignore[arg-type]
        durations[n] = time.perf_counter_ns() - started
    flush_s = None
    if flush:
        started_flush = time.perf_counter()
        publisher.flush(FLUSH_TIMEOUT_S)
        flush_s = time.perf_counter() - started_flush
    after = publisher.stats
    us = durations / 1_000.0
    sample = events[0]
    size = len(sample.to_json() if isinstance(sample, LlmCallEvent) else orjson.dumps(sample))
    return Result(
        scenario=name,
        events=EVENTS,
        p50_us=float(np.percentile(us, 50)),
        p99_us=float(np.percentile(us, 99)),
        p999_us=float(np.percentile(us, 99.9)),
        max_ms=float(us.max() / 1_000.0),
        mean_us=float(us.mean()),
        accepted=after.emitted - before.emitted,
        dropped=after.rejected - before.rejected,
        flush_s=flush_s,
        delivered=after.delivered - before.delivered,
        event_bytes=size,
    )


def _broker_down() -> list[Result]:
    publisher = Publisher(f"127.0.0.1:{free_port()}", "bench", producer_config=QUIET)
    try:
        return [_run("broker down, dict", publisher, _event_dict, flush=False)]
    finally:
        publisher.close(timeout=0.5)


def _broker_up() -> list[Result]:
    results = []
    with TansuBroker() as broker:
        layout = TopicLayout(prefix=f"bench{uuid.uuid4().hex[:6]}")
        ensure_topics(broker.bootstrap, layout.specs())
        for name, make in (
            ("Tansu up, dict", _event_dict),
            ("Tansu up, LlmCallEvent", _event_model),
        ):
            publisher = Publisher(broker.bootstrap, layout.events, producer_config=QUIET)
            results.append(_run(name, publisher, make, flush=True))
            publisher.close()
    return results


def main() -> None:
    results = _broker_down() + _broker_up()
    columns = ("p50 us", "p99 us", "p99.9 us", "max ms", "mean us", "accepted", "delivered")
    print(f"{'scenario':<24}" + "".join(f"{c:>11}" for c in (*columns, "flush s")))
    for r in results:
        flush = "-" if r.flush_s is None else f"{r.flush_s:.3f}"
        print(
            f"{r.scenario:<24}{r.p50_us:>11.1f}{r.p99_us:>11.1f}{r.p999_us:>11.1f}"
            f"{r.max_ms:>11.2f}{r.mean_us:>11.1f}{r.accepted:>11,}{r.delivered:>11,}{flush:>11}"
        )
    payload = {
        "python": platform.python_version(),
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
        "events_per_scenario": EVENTS,
        "results": [asdict(r) for r in results],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
