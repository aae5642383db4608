"""Per-call overhead of the openai client instrumentation on the app's thread.

Run: ``.venv/bin/python -m bench.bench_instrument_openai``. Prints a table and writes
``bench/results/instrument_openai.json``.

Two real ``openai.OpenAI`` clients talk to the same local fake API (``tests.fakes.openai_server``);
one is instrumented. Each iteration makes the same call through both, in alternating order, and the
figure is the per-iteration difference ``instrumented - plain``, so the HTTP round trip and most
machine noise cancel. Scenarios: a plain chat completion, and a 50-chunk chat stream read to the end
(time from ``create`` to the last chunk). Two sinks: ``null`` (an ``emit`` that only counts: the
wrapper's own cost) and ``publisher`` (a real ``Publisher`` whose broker address answers nothing:
the wrapper plus the real ``emit`` encoding and queueing; its background thread competes for the GIL
as in an app; the "lost ... events" line it prints at close is expected). Text capture is off, the
default. The p99 of a difference carries the round trip's own jitter; read p50 as the overhead and
p99 as an upper bound. Figures are from a shared machine: compare runs, do not read them as
absolutes.
"""

from __future__ import annotations

import gc
import json
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import openai

from producers.integrations import instrument
from producers.sdk import Publisher
from tests.fakes.openai_server import FakeOpenAI, Reply, chat_chunks, chat_completion, sse_reply

__all__ = ["main"]

RESULTS: Final = Path(__file__).resolve().parent / "results" / "instrument_openai.json"
ITERATIONS: Final = {"plain": 2_000, "stream_50": 400}
WARMUP: Final = 100
# 1 role chunk + 47 content chunks + 1 finish chunk + 1 usage chunk = 50 chunks.
STREAM_PIECES: Final = ["tok "] * 47
MESSAGES: Final[Any] = [{"role": "user", "content": "Count to fifty."}]
DEAD_BROKER: Final = "127.0.0.1:9"  # nothing listens on the discard port here


@dataclass(frozen=True, slots=True)
class Result:
    scenario: str
    sink: str
    iterations: int
    overhead_p50_us: float
    overhead_p99_us: float
    overhead_mean_us: float
    plain_p50_us: float
    instrumented_p50_us: float
    events: int


class NullSink:
    service = "bench"
    environment = "bench"

    def __init__(self) -> None:
        self.events = 0

    def emit(self, event: Mapping[str, Any]) -> bool:
        self.events += 1
        return True


def _plain_call(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.enqueue(Reply(body=chat_completion()))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def _stream_call(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.enqueue(sse_reply(chat_chunks(STREAM_PIECES, usage=(20, 47, 0, 0))))
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    count = sum(1 for _ in stream)
    assert count == 50, count


def _timed(call: Callable[[], None]) -> float:
    started = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - started) / 1000.0


def _run(
    server: FakeOpenAI,
    scenario: str,
    sink_name: str,
    sink: Any,
    call: Callable[[FakeOpenAI, openai.OpenAI], None],
    iterations: int,
) -> Result:
    plain = openai.OpenAI(api_key="sk-bench", base_url=server.base_url, max_retries=0)
    watched = instrument(
        sink, openai.OpenAI(api_key="sk-bench", base_url=server.base_url, max_retries=0)
    )
    for _ in range(WARMUP):
        call(server, plain)
        call(server, watched)
    before = sink.events if isinstance(sink, NullSink) else sink.stats.emitted
    plain_us = np.empty(iterations)
    watched_us = np.empty(iterations)
    gc.collect()
    for i in range(iterations):
        if i % 2:
            plain_us[i] = _timed(lambda: call(server, plain))
            watched_us[i] = _timed(lambda: call(server, watched))
        else:
            watched_us[i] = _timed(lambda: call(server, watched))
            plain_us[i] = _timed(lambda: call(server, plain))
    after = sink.events if isinstance(sink, NullSink) else sink.stats.emitted
    plain.close()
    watched.close()
    diff = watched_us - plain_us
    return Result(
        scenario=scenario,
        sink=sink_name,
        iterations=iterations,
        overhead_p50_us=round(float(np.percentile(diff, 50)), 1),
        overhead_p99_us=round(float(np.percentile(diff, 99)), 1),
        overhead_mean_us=round(float(diff.mean()), 1),
        plain_p50_us=round(float(np.percentile(plain_us, 50)), 1),
        instrumented_p50_us=round(float(np.percentile(watched_us, 50)), 1),
        events=after - before,
    )


def main() -> None:
    results: list[Result] = []
    calls = {"plain": _plain_call, "stream_50": _stream_call}
    with FakeOpenAI() as server:
        for sink_name in ("null", "publisher"):
            for scenario, call in calls.items():
                if sink_name == "null":
                    results.append(
                        _run(server, scenario, sink_name, NullSink(), call, ITERATIONS[scenario])
                    )
                    continue
                publisher = Publisher(
                    DEAD_BROKER,
                    "llm.events",
                    service="bench",
                    producer_config={"log_level": 0},
                    shutdown_timeout_s=0.1,
                )
                try:
                    results.append(
                        _run(server, scenario, sink_name, publisher, call, ITERATIONS[scenario])
                    )
                finally:
                    publisher.close(0.1)
    columns = ("iters", "p50 µs", "p99 µs", "mean µs", "plain p50", "instr p50")
    print(f"{'scenario':<12}{'sink':<11}" + "".join(f"{c:>11}" for c in columns))
    for r in results:
        values = (
            r.iterations,
            r.overhead_p50_us,
            r.overhead_p99_us,
            r.overhead_mean_us,
            r.plain_p50_us,
            r.instrumented_p50_us,
        )
        print(f"{r.scenario:<12}{r.sink:<11}" + "".join(f"{v:>11}" for v in values))
    payload = {
        "benchmark": "instrument_openai",
        "what": "instrumented minus plain client, per call, same local fake API, interleaved",
        "python": platform.python_version(),
        "openai": openai.__version__,
        "machine": platform.machine(),
        "results": [asdict(r) for r in results],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
