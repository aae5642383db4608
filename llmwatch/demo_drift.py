"""The demo's drift: three services' prompts over five short windows, and in the last one 20% of
support-bot's traffic moved to a topic it never had; ``llmwatch drift`` flags that scope only.

- :func:`start_drift` runs the real drift process (``llmwatch drift``) with demo-sized windows
  (:data:`WINDOW_S` seconds, a trailing reference of :data:`REFERENCE_WINDOWS`, no grace) and
  embedding drift on. Shape drift needs more calls than this burst, so its minimum is set out of reach.
- :func:`publish_drift_traffic` publishes the calls through the SDK with ``analyze`` text capture
  (prompts and answers from ``producers.simulator.topics``), time-stamped into the windows just before
  now; the process reads them from the broker like live traffic.
- :func:`read_drift` reads the flagged rows back from ClickHouse for the summary.

Ordering: the drift process looks back ``(REFERENCE_WINDOWS + 2) * WINDOW_S`` seconds of produce time,
so it must start after the rest of the demo's traffic was produced at least that long ago
(:func:`wait_out_earlier_traffic`), or that traffic would move the watermark past these windows.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from llmwatch.processes import ChildProcess
from llmwatch.settings import Settings
from producers.simulator.topics import DEFAULT_TOPIC_MIX, HELD_BACK_TOPICS, TopicMix, TopicTexts
from streams.storage import DRIFT_TABLE

__all__ = [
    "DriftSummary",
    "publish_drift_traffic",
    "read_drift",
    "run_drift_phase",
    "start_drift",
    "wait_for_drift",
    "wait_out_earlier_traffic",
]

WINDOW_S: Final = 15
REFERENCE_WINDOWS: Final = 3
SHIFTED_WINDOW: Final = REFERENCE_WINDOWS  # the first window compared
CALLS_PER_WINDOW: Final = 150  # per service
MIN_TEXTS: Final = 100
SAMPLE_SIZE: Final = 200
SHIFT_SHARE: Final = 0.2
SHIFT_SERVICE: Final = "support-bot"
NEW_TOPIC: Final = HELD_BACK_TOPICS[0]
SERVICES: Final = DEFAULT_TOPIC_MIX.services[:3]
LOOK_BACK_S: Final = (REFERENCE_WINDOWS + 2) * WINDOW_S
MODEL: Final = "gpt-4o-mini"


@dataclass(slots=True)
class DriftSummary:
    window_start_ms: int = 0
    flagged: list[tuple[str, str, str, float, str]] = field(default_factory=list)
    scopes_tested: list[str] = field(default_factory=list)
    alerts: int = 0

    @property
    def shifted_scope_only(self) -> bool:
        return bool(self.flagged) and all(row[0] == SHIFT_SERVICE for row in self.flagged)


def start_drift(settings: Settings) -> ChildProcess:
    return ChildProcess(
        "drift",
        ["drift"],
        {
            "LLMWATCH_BOOTSTRAP": settings.bootstrap,
            "LLMWATCH_DATA_DIR": str(settings.data_dir),
            "LLMWATCH_DRIFT_WINDOW_S": str(WINDOW_S),
            "LLMWATCH_DRIFT_REFERENCE_WINDOWS": str(REFERENCE_WINDOWS),
            "LLMWATCH_DRIFT_GRACE_S": "0",
            "LLMWATCH_DRIFT_MIN_SAMPLES": str(10**9),  # no shape verdicts on this small burst
            "LLMWATCH_DRIFT_MIN_TEXTS": str(MIN_TEXTS),
            "LLMWATCH_DRIFT_SAMPLE_SIZE": str(SAMPLE_SIZE),
            "LLMWATCH_DRIFT_EMBEDDINGS": "true",
        },
        settings.log_dir / "drift.log",
    ).start()


def wait_out_earlier_traffic(last_produced: float) -> None:
    """Sleep until traffic produced at ``last_produced`` (``time.time()``) is out of the look-back."""
    remaining = last_produced + LOOK_BACK_S + 2.0 - time.time()
    if remaining > 0:
        time.sleep(remaining)


def _event(
    rng: random.Random, service: str, start: datetime, prompt: str, answer: str
) -> dict[str, Any]:
    duration = timedelta(milliseconds=rng.lognormvariate(6.6, 0.4))
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "trace_id": f"{rng.getrandbits(128):032x}",
        "span_id": f"{rng.getrandbits(64):016x}",
        "service": service,
        "provider_name": "openai",
        "request_model": MODEL,
        "response_model": MODEL,
        "start_time": start.isoformat(),
        "end_time": (start + duration).isoformat(),
        "input_tokens": 12 + len(prompt) // 4,
        "output_tokens": 8 + len(answer) // 4,
        "input_text": prompt,
        "output_text": answer,
    }


def publish_drift_traffic(settings: Settings, seed: int) -> tuple[int, int, int]:
    """Publish the windows (the last compared one shifted) and a few calls after them that move the
    watermark past it; return the start of the shifted window (ms), and the calls accepted and
    delivered."""
    from producers.events import TextCapture
    from producers.sdk import Publisher

    now_ms = int(time.time() * 1000)
    window_ms = WINDOW_S * 1000
    origin = now_ms - now_ms % window_ms - (SHIFTED_WINDOW + 2) * window_ms
    rng = random.Random(f"drift-demo:{seed}")
    texts = TopicTexts(seed)
    shifted: TopicMix = DEFAULT_TOPIC_MIX.shifted(SHIFT_SERVICE, NEW_TOPIC, SHIFT_SHARE)
    publisher = Publisher(
        settings.bootstrap, settings.layout.events, text_capture=TextCapture.ANALYZE
    )
    try:
        for window in range(SHIFTED_WINDOW + 2):
            mix = shifted if window == SHIFTED_WINDOW else DEFAULT_TOPIC_MIX
            calls = CALLS_PER_WINDOW if window <= SHIFTED_WINDOW else 3  # the last: the watermark
            for service in SERVICES:
                for _ in range(calls):
                    start = origin + window * window_ms + rng.randrange(window_ms)
                    topic, prompt = texts.draw(service, mix)
                    when = datetime.fromtimestamp(start / 1000, UTC)
                    publisher.emit(_event(rng, service, when, prompt, texts.answer(topic)))
        publisher.flush(30.0)
    finally:
        publisher.close()
    stats = publisher.stats
    return origin + SHIFTED_WINDOW * window_ms, stats.emitted, stats.delivered


def run_drift_phase(
    settings: Settings,
    seed: int,
    timeout_s: float,
    console: Any,
    traffic_done: float,
    client: Any,
) -> tuple[ChildProcess, DriftSummary, tuple[int, int]]:
    """Start the drift process, publish the windows, wait for the verdict; the process, the summary
    to fill in later, and the calls (accepted, delivered) the phase added."""
    console.print("drift: waiting for the earlier traffic to leave the drift look-back...")
    wait_out_earlier_traffic(traffic_done)
    process = start_drift(settings)
    console.print(
        f"drift monitor: pid {process.pid}, log {settings.log_dir / 'drift.log'}; "
        f"{SHIFT_SHARE:.0%} of {SHIFT_SERVICE}'s prompts move to a new topic in the last window"
    )
    window_start, accepted, delivered = publish_drift_traffic(settings, seed)
    if not wait_for_drift(client, settings.database, window_start, timeout_s):
        console.print("[red]drift: no verdict for the shifted window in time[/red]")
    return process, DriftSummary(window_start), (accepted, delivered)


def read_drift(client: Any, database: str, window_start_ms: int) -> DriftSummary:
    """The embedding drift verdicts of the shifted window (flagged rows first)."""
    summary = DriftSummary(window_start_ms)
    rows = client.query(
        f"SELECT service, span_kind, direction, feature, effect, top_shift, flagged "
        f"FROM {database}.{DRIFT_TABLE} FINAL "
        "WHERE window_start = fromUnixTimestamp64Milli({start:Int64}) AND direction != '' "
        "ORDER BY service, direction, feature",
        parameters={"start": window_start_ms},
    ).result_rows
    for service, span_kind, direction, feature, effect, top, flagged in rows:
        scope = f"{service}/{span_kind}/{direction}"
        if scope not in summary.scopes_tested:
            summary.scopes_tested.append(scope)
        if flagged:
            summary.flagged.append((service, direction, feature, float(effect), str(top)))
    return summary


def wait_for_drift(client: Any, database: str, window_start_ms: int, timeout_s: float) -> bool:
    """Whether the shifted window's rows reached ClickHouse within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        count = client.query(
            f"SELECT count() FROM {database}.{DRIFT_TABLE} "
            "WHERE window_start = fromUnixTimestamp64Milli({start:Int64}) AND direction != ''",
            parameters={"start": window_start_ms},
        ).result_rows[0][0]
        if count:
            return True
        time.sleep(1.0)
    return False
