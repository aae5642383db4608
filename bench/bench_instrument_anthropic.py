"""Per-call cost of instrumenting an Anthropic client: instrumented minus plain, against a local fake API.

Run: ``.venv/bin/python -m bench.bench_instrument_anthropic``. Prints a table and writes
``bench/results/instrument_anthropic.json``.

Two real ``anthropic.Anthropic`` clients talk to the same local fake Messages API
(``tests/fakes/anthropic_server``): one plain, one instrumented with a sink that only counts events
(so this measures the wrapper, not ``Publisher.emit``; see ``bench_sdk_emit`` for that). Calls are
interleaved in pairs, the order inside a pair alternating, and each pair gives one difference
(instrumented minus plain); the table shows the p50 / p99 of those differences next to the p50 of
each client. Scenarios: a control pairing two plain clients (the noise floor of a difference), a plain
call, ``create(stream=True)`` read to the end, and ``messages.stream`` with ``get_final_message()``,
the streams with :data:`DELTAS` text deltas. Text capture is off.

The differences sit on top of a loopback HTTP round trip, so their spread (p99) is mostly that round
trip's jitter; the p50 difference is the figure to compare between runs. Figures are from a shared
machine: compare runs, do not read them as absolutes.
"""

from __future__ import annotations

import gc
import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Final

import anthropic
import numpy as np
from anthropic.types import MessageParam

from producers.integrations import instrument
from tests.fakes.anthropic_server import FakeAnthropic, Reply, message, stream

__all__ = ["main"]

RESULTS: Final[Path] = Path(__file__).parent / "results" / "instrument_anthropic.json"
DELTAS: Final[int] = 50
PAIRS: Final[dict[str, int]] = {
    "A/A control (plain)": 2_000,
    "plain call": 2_000,
    "create(stream=True)": 1_000,
    "messages.stream": 1_000,
}
WARMUP_PAIRS: Final[int] = 100
PROMPT: Final[list[MessageParam]] = [{"role": "user", "content": "Say hello fifty times."}]


class CountingSink:
    """The attributes an instrumentation reads from a Publisher; emit() only counts."""

    service = "bench"
    environment = "bench"

    def __init__(self) -> None:
        self.config = SimpleNamespace(text_capture="off")
        self.events = 0

    def emit(self, event: Any) -> bool:
        self.events += 1
        return True


@dataclass(frozen=True, slots=True)
class Result:
    scenario: str
    pairs: int
    overhead_p50_us: float
    overhead_p99_us: float
    overhead_mean_us: float
    plain_p50_us: float
    instrumented_p50_us: float
    events: int


def _plain_call(client: anthropic.Anthropic) -> None:
    client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=PROMPT)


def _stream_create(client: anthropic.Anthropic) -> None:
    for _ in client.messages.create(
        model="claude-haiku-4-5", max_tokens=64, messages=PROMPT, stream=True
    ):
        pass


def _stream_manager(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=PROMPT) as s:
        s.get_final_message()


def _timed(call: Callable[[anthropic.Anthropic], None], client: anthropic.Anthropic) -> int:
    started = time.perf_counter_ns()
    call(client)
    return time.perf_counter_ns() - started


def _run(
    fake: FakeAnthropic,
    scenario: str,
    reply: Reply,
    call: Callable[[anthropic.Anthropic], None],
    *,
    instrumented: bool = True,
) -> Result:
    fake.default = reply
    sink = CountingSink()
    plain = anthropic.Anthropic(api_key="k", base_url=fake.base_url, max_retries=0)
    watched = anthropic.Anthropic(api_key="k", base_url=fake.base_url, max_retries=0)
    if instrumented:
        instrument(sink, watched)
    pairs = PAIRS[scenario]
    for _ in range(WARMUP_PAIRS):
        call(plain)
        call(watched)
    gc.collect()
    before = sink.events
    plain_ns = np.empty(pairs, dtype=np.int64)
    watched_ns = np.empty(pairs, dtype=np.int64)
    for n in range(pairs):
        if n % 2:
            watched_ns[n] = _timed(call, watched)
            plain_ns[n] = _timed(call, plain)
        else:
            plain_ns[n] = _timed(call, plain)
            watched_ns[n] = _timed(call, watched)
    plain.close()
    watched.close()
    diff_us = (watched_ns - plain_ns) / 1_000.0
    return Result(
        scenario=scenario,
        pairs=pairs,
        overhead_p50_us=float(np.percentile(diff_us, 50)),
        overhead_p99_us=float(np.percentile(diff_us, 99)),
        overhead_mean_us=float(diff_us.mean()),
        plain_p50_us=float(np.percentile(plain_ns, 50) / 1_000.0),
        instrumented_p50_us=float(np.percentile(watched_ns, 50) / 1_000.0),
        events=sink.events - before,
    )


def main() -> None:
    deltas = [f"hello {n} " for n in range(DELTAS)]
    with FakeAnthropic() as fake:
        results = [
            _run(fake, "A/A control (plain)", message(), _plain_call, instrumented=False),
            _run(fake, "plain call", message(), _plain_call),
            _run(fake, "create(stream=True)", stream(deltas), _stream_create),
            _run(fake, "messages.stream", stream(deltas), _stream_manager),
        ]
    columns = ("pairs", "diff p50", "diff p99", "diff mean", "plain p50", "instr p50", "events")
    print(f"{'scenario (us)':<22}" + "".join(f"{c:>11}" for c in columns))
    for r in results:
        print(
            f"{r.scenario:<22}{r.pairs:>11,}{r.overhead_p50_us:>11.1f}{r.overhead_p99_us:>11.1f}"
            f"{r.overhead_mean_us:>11.1f}{r.plain_p50_us:>11.1f}{r.instrumented_p50_us:>11.1f}"
            f"{r.events:>11,}"
        )
    payload = {
        "python": platform.python_version(),
        "anthropic": anthropic.__version__,
        "stream_deltas": DELTAS,
        "warmup_pairs": WARMUP_PAIRS,
        "results": [asdict(r) for r in results],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
