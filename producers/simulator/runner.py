"""Paced, live simulation: hands ``events`` simulated events to a callback at about ``rate`` per second.

Guarantees:
- Exactly ``events`` events, each handed once to ``emit`` (unless ``emit`` raises: its exception
  propagates unchanged and the run stops). With ``via_clients`` (a running
  :class:`~producers.simulator.clients.ClientTraffic`) and ``client_calls`` > 0, the first
  ``client_calls`` events it handles (OpenAI and Anthropic LLM calls) are made through the real clients
  instead, whose instrumentation emits them to its own sink, and not given to ``emit``; the report counts
  them (``client_calls``, per provider) and as accepted when that sink accepted their event. Without
  them the run is exactly as before.
  The last trace may be cut short; parents are always emitted before their children.
- Pacing is a token bucket (burst of :data:`BURST_WINDOW_S` worth of events) that waits with ``sleep``
  in slices of :data:`MIN_SLEEP_S` to :data:`SLEEP_SLICE_S`, so a caller's Ctrl-C is honoured quickly.
  ``rate <= 0`` or ``rate == inf`` emits as fast as ``emit`` allows and never sleeps.
- Timestamps are live: each trace is generated when its first span is due, ending at ``now()``, so no
  event lies in the future. Run progress (which drives incidents) is ``emitted / events``.
- With ``texts`` (a :class:`~producers.simulator.texts.TextMix`), LLM and retrieval spans carry text:
  prompts on topics of the event's service (``texts.topics``), counted per (service, topic) in the
  report's ``topics``, and the planted kinds counted in ``planted``.
- Time is injected (``clock``, ``sleep``, ``now``): tests run it on a fake clock. The traffic depends only
  on ``seed`` and ``scenario``; event ids also depend on the first ``now()``, so two live runs with the same
  seed never share ids.

This blocks the calling thread for about ``events / rate`` seconds, plus each client call's local HTTP
round trip and scripted first-token delay.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from producers.events import LlmCallEvent, SpanKind
from producers.simulator.catalog import INCIDENT_NEW_VERSION
from producers.simulator.scenario import Scenario
from producers.simulator.texts import TextMaker, TextMix, TextTruth
from producers.simulator.traffic import Simulator

if TYPE_CHECKING:
    from producers.simulator.clients import ClientTraffic

__all__ = [
    "BURST_WINDOW_S",
    "DEFAULT_SEED",
    "MIN_SLEEP_S",
    "PROGRESS_EVERY",
    "SLEEP_SLICE_S",
    "Emit",
    "SimulationReport",
    "run_simulation",
]

DEFAULT_SEED: Final = 7
SLEEP_SLICE_S: Final = 0.05
# Shortest wait: a shorter one may not move a float clock at all (the wait would never end).
MIN_SLEEP_S: Final = 1e-4
BURST_WINDOW_S: Final = 0.05  # the bucket holds this many seconds' worth of events (at least one)
PROGRESS_EVERY: Final = 500  # on_progress is called every this many events, and at the end

Emit = Callable[[LlmCallEvent], bool]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SimulationReport:
    """What one :func:`run_simulation` did."""

    emitted: int
    accepted: int
    by_service: Mapping[str, int]
    by_model: Mapping[str, int]  # request_model of model spans (llm and embedding)
    incident_starts: Mapping[str, datetime] = field(
        default_factory=dict
    )  # name -> first trace time
    # With texts: (service, kind) -> calls whose text carries it (pii, attack, indirect, toxic).
    planted: Mapping[tuple[str, str], int] = field(default_factory=dict)
    # Every personal-data value the simulator put in a text (for no-raw-PII checks downstream).
    pii_values: frozenset[str] = frozenset()
    # Events made as real client calls (via_clients) instead of emitted, in all and per provider.
    client_calls: int = 0
    client_calls_by_provider: Mapping[str, int] = field(default_factory=dict)
    # With texts and a topic mix: (service, topic) -> LLM calls whose prompt is on that topic.
    topics: Mapping[tuple[str, str], int] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return self.emitted - self.accepted

    @property
    def incident_started_at(self) -> datetime | None:
        """When the first incident began, or None if none began during the run."""
        return min(self.incident_starts.values(), default=None)


class _TokenBucket:
    """Releases ``rate`` tokens per second; ``acquire`` sleeps in short slices until one is there."""

    def __init__(
        self, rate: float, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._capacity = max(1.0, rate * BURST_WINDOW_S)
        self._tokens = 1.0
        self._last = clock()

    def acquire(self) -> None:
        while True:
            now = self._clock()
            elapsed = max(0.0, now - self._last)
            self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return
            wait = (1.0 - self._tokens) / self._rate
            self._sleep(min(SLEEP_SLICE_S, max(MIN_SLEEP_S, wait)))


def _validate(
    events: int, rate: float, client_calls: int, via_clients: ClientTraffic | None
) -> None:
    if isinstance(events, bool) or not isinstance(events, int) or events < 1:
        raise ValueError(f"events must be an integer >= 1, got {events!r}")
    if math.isnan(rate):
        raise ValueError(f"rate must be a number (<= 0 or inf: unpaced), got {rate!r}")
    if isinstance(client_calls, bool) or not isinstance(client_calls, int) or client_calls < 0:
        raise ValueError(f"client_calls must be an integer >= 0, got {client_calls!r}")
    if client_calls > 0 and via_clients is None:
        raise ValueError(f"client_calls={client_calls} needs via_clients (a running ClientTraffic)")


def run_simulation(
    emit: Emit,
    *,
    events: int,
    rate: float,
    seed: int = DEFAULT_SEED,
    scenario: Scenario | None = None,
    on_progress: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = _utc_now,
    texts: TextMix | None = None,
    via_clients: ClientTraffic | None = None,
    client_calls: int = 0,
) -> SimulationReport:
    """Emits ``events`` events at about ``rate`` per second; see the module docstring."""
    _validate(events, rate, client_calls, via_clients)
    # Ids depend on the run's start time, so two live runs never collide in downstream dedup,
    # while an injected ``now`` keeps a run reproducible.
    simulator = Simulator(seed, scenario, id_seed=f"{seed}:{now().isoformat()}")
    incidents = simulator.scenario.incidents
    prompts = simulator.scenario.prompts
    weak_versions = frozenset() if prompts is None else prompts.weak_versions
    bucket = _TokenBucket(rate, clock, sleep) if 0.0 < rate < math.inf else None
    by_service: Counter[str] = Counter()
    by_model: Counter[str] = Counter()
    starts: dict[str, datetime] = {}
    pending: list[LlmCallEvent] = []
    accepted = 0
    maker = None if texts is None else TextMaker(seed, texts)
    planted: Counter[tuple[str, str]] = Counter()
    topics: Counter[tuple[str, str]] = Counter()
    pii_values: set[str] = set()
    by_client: Counter[str] = Counter()
    for emitted in range(events):
        if bucket is not None:
            bucket.acquire()
        if not pending:
            progress = emitted / events
            ts = now()
            pending = simulator.trace_ending_at(ts, progress)
            pending.reverse()  # pop() from the end gives parents first
            for incident in incidents:
                if incident.name not in starts and incident.active_at(progress):
                    starts[incident.name] = ts
        event = pending.pop()
        if maker is not None:
            event = _with_text(event, maker, planted, pii_values, weak_versions, topics)
        by_service[event.service] += 1
        if event.request_model is not None:
            by_model[event.request_model] += 1
        if via_clients is not None and by_client.total() < client_calls:
            before = via_clients.accepted
            if via_clients.call(event):
                by_client[str(event.provider_name)] += 1
                accepted += via_clients.accepted - before
            elif emit(event):
                accepted += 1
        elif emit(event):
            accepted += 1
        if on_progress is not None and (emitted + 1) % PROGRESS_EVERY == 0:
            on_progress(emitted + 1)
    if on_progress is not None and events % PROGRESS_EVERY != 0:
        on_progress(events)
    return SimulationReport(
        events,
        accepted,
        dict(by_service),
        dict(by_model),
        starts,
        dict(planted),
        frozenset(pii_values),
        by_client.total(),
        dict(by_client),
        dict(topics),
    )


def _with_text(
    event: LlmCallEvent,
    maker: TextMaker,
    planted: Counter[tuple[str, str]],
    pii_values: set[str],
    weak_versions: frozenset[str] = frozenset(),
    topics: Counter[tuple[str, str]] | None = None,
) -> LlmCallEvent:
    """The event with a prompt and output (LLM spans) or a query and passages (retrieval spans), on a
    topic of the event's service; ``topics`` counts the prompts per (service, topic)."""
    if event.span_kind not in (SpanKind.LLM, SpanKind.RETRIEVAL) or not maker.carries_text():
        return event
    truth = TextTruth()
    if event.span_kind == SpanKind.LLM:
        # The prompt-v8 incident also lowers answer quality: what the judge should see drop.
        weak = event.prompt_version == INCIDENT_NEW_VERSION or event.prompt_version in weak_versions
        prompt = maker.prompt(truth, event.service)
        update = {"input_text": prompt, "output_text": maker.completion(weak, truth.topic)}
        if topics is not None and truth.topic is not None:
            topics[(event.service, truth.topic)] += 1
    else:
        update = {"input_text": maker.query(event.service), "output_text": maker.passage(truth)}
    for kind in truth.kinds:
        planted[(event.service, kind)] += 1
    pii_values.update(truth.pii_values)
    return event.model_copy(update=update)
