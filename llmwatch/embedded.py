"""The embedded all-in-one runner behind ``llmwatch demo``: nothing else to start.

It starts a Tansu broker on a free loopback port, the Faust worker as a subprocess, and the ClickHouse
sink in a thread of this process (it owns the chdb folder, which only one process may open), then drives
the traffic simulator through the SDK (its first ``client_calls`` OpenAI and Anthropic calls made through
the real ``openai`` / ``anthropic`` clients, instrumented, against local fake APIs on 127.0.0.1; skipped
with a log line when those packages are not installed), waits until every accepted event is stored or
dead-lettered, stops everything in order (sink flush + commit first), and reads a summary back from
ClickHouse.

What can block: each stage has a bounded timeout; a stage that times out is reported, never hidden.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from llmwatch.broker import TansuBroker
from llmwatch.demo_bad_events import bad_event
from llmwatch.demo_drift import DriftSummary, read_drift, run_drift_phase
from llmwatch.demo_guardrails import (
    GuardrailRow,
    read_guardrails,
    start_analyzer,
    wait_for_guardrails,
)
from llmwatch.demo_prompts import (
    CanarySummary,
    RegistryPrompts,
    read_canary,
    seed_registry,
    start_canary,
    wait_for_canary,
)
from llmwatch.demo_quality import (
    DEMO_SAMPLING_FILE,
    EvalGate,
    QualityRow,
    fake_judge,
    read_quality,
    run_eval_gate,
    start_judge,
    wait_for_scores,
)
from llmwatch.evaluation import JUDGE_SERVICE
from llmwatch.processes import ChildProcess, build_sink
from llmwatch.settings import Settings
from producers.events import TextCapture
from streams.admin import ensure_topics
from streams.storage import CALLS_TABLE, DLQ_TABLE, ROLLUP_TABLE

__all__ = ["DemoOptions", "DemoSummary", "run_demo"]

log = logging.getLogger("llmwatch.demo")

WORKER_STOP_GRACE_S: Final = 10.0
# The demo's worker evaluates alerts and publishes snapshots often, so a short run shows them.
DEMO_ALERT_INTERVAL_S: Final = 2.0
DEMO_SNAPSHOT_INTERVAL_S: Final = 4.0
DEMO_SNAPSHOTS: Final = ("overview", "slos", "safety", "quality", "prompts", "drift")
# Package data (not a user file in config/): found from the installed package, whatever the cwd.
DEMO_SLO_FILE: Final = Path(__file__).resolve().parent / "data" / "slos.demo.yaml"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    events: int = 20_000
    rate: float = 2_000.0
    seed: int = 7
    bad_events: int = 25
    drain_timeout_s: float = 120.0
    # Simulated prompts carry PII, attacks and toxic text, captured with this mode (None: no text).
    # The default analyses them and stores none; "store" keeps them, redacted, in llm_texts.
    text_capture: TextCapture | None = TextCapture.ANALYZE
    # Share of LLM and retrieval calls with text: the detectors run at hundreds of texts/s on two
    # cores, so the demo's burst carries text on a sample (all of it would take minutes to analyse).
    text_share: float = 0.15
    # The first this many OpenAI / Anthropic LLM calls go through the real clients (0: none).
    client_calls: int = 200
    # Judge the sampled answers on a local fake judge and gate the golden set with `eval run`.
    quality: bool = True
    # Give support-bot's prompt v8 10% of production as a canary; the canary analysis rolls it back.
    canary: bool = True
    # Shift 20% of support-bot's prompts to a new topic in short windows; `llmwatch drift` flags it.
    drift: bool = True


@dataclass(slots=True)
class DemoSummary:
    started_at: datetime
    events_emitted: int = 0
    events_accepted: int = 0
    events_delivered: int = 0
    bad_events_sent: int = 0
    sdk_dropped: int = 0
    rows_stored: int = 0
    dlq_rows: int = 0
    per_service: list[tuple[str, int]] = field(default_factory=list)
    per_model: list[tuple[str, str, int]] = field(default_factory=list)
    dlq_reasons: list[tuple[str, int]] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    snapshot_errors: list[str] = field(default_factory=list)
    alerts: list[tuple[str, ...]] = field(default_factory=list)
    rate_limits: list[tuple[str, str, int, int]] = field(default_factory=list)
    guardrails: list[GuardrailRow] = field(default_factory=list)
    guardrails_drained: bool = False
    planted: dict[tuple[str, str], int] = field(default_factory=dict)
    pii_values: frozenset[str] = frozenset()
    # Calls made through the real openai / anthropic clients, per provider (None: not run).
    client_calls: dict[str, int] | None = None
    # The judge's own calls (service llmwatch-judge), stored apart from the simulated traffic.
    judge_calls: int = 0
    quality: list[QualityRow] = field(default_factory=list)
    quality_drained: bool = False
    eval_gate: EvalGate | None = None
    canary: CanarySummary | None = None
    drift: DriftSummary | None = None
    elapsed_s: float = 0.0
    drained: bool = False
    dsn: str = ""

    @property
    def complete(self) -> bool:
        """Every accepted valid event is stored and every bad one dead-lettered."""
        valid = self.events_delivered - self.bad_events_sent
        return (
            self.drained
            and self.sdk_dropped == 0
            and self.rows_stored == valid
            and self.dlq_rows == self.bad_events_sent
        )


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@contextlib.contextmanager
def _sink_thread(sink: Any) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), name="llmwatch-sink", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=60)


def _wait_until(done: Callable[[], bool], timeout_s: float, tick: Callable[[], None]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        tick()
        if done():
            return True
        time.sleep(0.25)
    return done()


@contextlib.contextmanager
def _client_traffic(publisher: Any, options: DemoOptions) -> Iterator[Any]:
    """A running ``ClientTraffic`` on ``publisher``, or None when off or openai/anthropic are missing."""
    if options.client_calls <= 0:
        yield None
        return
    if importlib.util.find_spec("openai") is None or importlib.util.find_spec("anthropic") is None:
        log.info("demo: openai/anthropic not installed, no calls through real clients")
        yield None
        return
    from producers.simulator.clients import ClientTraffic

    with ClientTraffic(publisher) as traffic:
        yield traffic


def _drive_traffic(
    settings: Settings, options: DemoOptions, console: Console, summary: DemoSummary
) -> Any:
    from producers.sdk import Publisher
    from producers.simulator import TextMix, demo_scenario, run_simulation

    publisher = Publisher(
        settings.bootstrap,
        settings.layout.events,
        text_capture=options.text_capture or settings.text_capture,
        queue_max_bytes=settings.sdk_queue_max_bytes,
    )
    prompts = None
    if summary.canary is not None:
        publisher.prompts.wait_ready(10.0)
        prompts = RegistryPrompts(publisher.prompts, summary.canary.v8)
    with _progress(console) as progress, _client_traffic(publisher, options) as via_clients:
        task = progress.add_task("simulating traffic", total=options.events)
        report = run_simulation(
            publisher.emit,
            events=options.events,
            rate=options.rate,
            seed=options.seed,
            scenario=demo_scenario(prompts=prompts),
            on_progress=lambda n: progress.update(task, completed=n),
            texts=None if options.text_capture is None else TextMix(share=options.text_share),
            via_clients=via_clients,
            client_calls=0 if via_clients is None else options.client_calls,
        )
    if prompts is not None and summary.canary is not None:
        summary.canary.served = dict(prompts.served)
        summary.canary.last_served_ms = dict(prompts.last_served_ms)
    if via_clients is not None:
        summary.client_calls = dict(report.client_calls_by_provider)
    summary.planted = dict(report.planted)
    summary.pii_values = report.pii_values
    for index in range(options.bad_events):
        publisher.emit(bad_event(index))
    publisher.flush(30.0)
    publisher.close()
    stats = publisher.stats
    summary.events_emitted = report.emitted + options.bad_events
    summary.events_accepted = stats.emitted
    summary.events_delivered = stats.delivered
    summary.bad_events_sent = options.bad_events
    summary.sdk_dropped = stats.lost + stats.rejected
    return publisher


def _drain(sink: Any, options: DemoOptions, console: Console, summary: DemoSummary) -> None:
    def stored() -> int:
        stats = sink.stats()
        return int(stats.written(CALLS_TABLE) + stats.written(DLQ_TABLE))

    with _progress(console) as progress:
        target = summary.events_delivered
        task = progress.add_task("waiting for the pipeline", total=target)
        summary.drained = _wait_until(
            lambda: stored() >= target,
            options.drain_timeout_s,
            lambda: progress.update(task, completed=min(stored(), target)),
        )


def _start_judge(
    settings: Settings, options: DemoOptions, console: Console, stack: contextlib.ExitStack
) -> ChildProcess | None:
    if not options.quality or options.text_capture is None:
        return None
    judge_url = stack.enter_context(fake_judge())
    judge = start_judge(settings, judge_url)
    console.print(
        f"judge: pid {judge.pid} on a fake judge model at {judge_url}, "
        f"log {settings.log_dir / 'judge.log'}"
    )
    return judge


def _drain_scores(
    settings: Settings, options: DemoOptions, console: Console, summary: DemoSummary
) -> None:
    with _progress(console) as progress:
        task = progress.add_task("waiting for the judge", total=None)
        summary.quality_drained = wait_for_scores(
            settings,
            options.drain_timeout_s,
            lambda lag: progress.update(task, description=f"judge: {lag} records behind"),
        )


def _drain_guardrails(
    settings: Settings, options: DemoOptions, console: Console, summary: DemoSummary
) -> None:
    with _progress(console) as progress:
        task = progress.add_task("waiting for the text analysis", total=None)
        summary.guardrails_drained = wait_for_guardrails(
            settings,
            options.drain_timeout_s,
            lambda lag: progress.update(task, description=f"text analysis: {lag} records behind"),
        )


def _read_summary(client: Any, database: str, started: datetime, summary: DemoSummary) -> None:
    # Epoch milliseconds keep the filter independent of the server's time zone.
    since = {"since": int(started.timestamp() * 1000)}
    after = "ingested_at >= fromUnixTimestamp64Milli({since:Int64})"
    calls = f"{database}.{CALLS_TABLE} FINAL WHERE {after}"
    judged = f"service = '{JUDGE_SERVICE}'"
    counts = client.query(
        f"SELECT countIf(NOT {judged}), countIf({judged}) FROM {calls}", parameters=since
    ).result_rows[0]
    summary.rows_stored, summary.judge_calls = int(counts[0]), int(counts[1])
    summary.per_service = [
        (str(r[0]), int(r[1]))
        for r in client.query(
            f"SELECT service, count() AS n FROM {calls} GROUP BY service ORDER BY n DESC",
            parameters=since,
        ).result_rows
    ]
    summary.per_model = [
        (str(r[0]), str(r[1]), int(r[2]))
        for r in client.query(
            f"SELECT provider_name, request_model, count() AS n FROM {calls} "
            "AND span_kind = 'llm' GROUP BY provider_name, request_model ORDER BY n DESC",
            parameters=since,
        ).result_rows
    ]
    dlq = f"{database}.{DLQ_TABLE} FINAL WHERE {after}"
    summary.dlq_rows = int(
        client.query(f"SELECT count() FROM {dlq}", parameters=since).result_rows[0][0]
    )
    summary.dlq_reasons = [
        (str(r[0]), int(r[1]))
        for r in client.query(
            f"SELECT reason, count() AS n FROM {dlq} GROUP BY reason ORDER BY n DESC LIMIT 5",
            parameters=since,
        ).result_rows
    ]


def _read_alerts(client: Any, database: str, since: dict[str, int], summary: DemoSummary) -> None:
    after = "fired_at >= fromUnixTimestamp64Milli({since:Int64})"
    summary.alerts = [
        tuple(str(v) for v in r)
        for r in client.query(
            "SELECT slo, rule, severity, argMax(state, evaluated_at) AS last_state, "
            "round(max(burn_rate_long), 1), any(description) "
            f"FROM {database}.llm_alerts FINAL WHERE {after} "
            "GROUP BY slo, rule, severity ORDER BY min(fired_at)",
            parameters=since,
        ).result_rows
    ]
    summary.rate_limits = [
        (str(r[0]), str(r[1]), int(r[2]), int(r[3]))
        for r in client.query(
            "SELECT service, provider_name, sum(rate_limited) AS n429, sum(requests) "
            f"FROM {database}.{ROLLUP_TABLE} FINAL "
            "WHERE window_start >= toStartOfMinute(fromUnixTimestamp64Milli({since:Int64})) "
            "AND span_kind = 'llm' GROUP BY service, provider_name HAVING n429 > 0 "
            "ORDER BY n429 DESC LIMIT 6",
            parameters=since,
        ).result_rows
    ]


def _write_snapshots(
    client: Any, settings: Settings, started: datetime, summary: DemoSummary
) -> None:
    """Overview and SLO dashboards rendered to PNG + HTML (no Grafana needed)."""
    from llmwatch.grafana import write_snapshot

    start = started - timedelta(minutes=2)
    end = datetime.now(UTC) + timedelta(minutes=1)
    for name in DEMO_SNAPSHOTS:
        html, errors = write_snapshot(
            client, settings.database, name, start, end, settings.data_dir / "snapshots"
        )
        summary.snapshots.append(str(html))
        summary.snapshot_errors.extend(errors)


def run_demo(settings: Settings, options: DemoOptions, console: Console) -> DemoSummary:
    """Run the whole pipeline on embedded parts and return what ClickHouse holds afterwards."""
    from sinks.clickhouse import connect

    started = datetime.now(UTC)
    t0 = time.monotonic()
    summary = DemoSummary(started_at=started, dsn=settings.dsn)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stack = contextlib.ExitStack()
    with TansuBroker() as broker:
        settings = settings.model_copy(update={"bootstrap": broker.bootstrap})
        ensure_topics(broker.bootstrap, settings.layout.specs())
        console.print(f"broker: Tansu on {broker.bootstrap}")
        worker = ChildProcess(
            "worker",
            ["worker"],
            {
                "LLMWATCH_BOOTSTRAP": broker.bootstrap,
                "LLMWATCH_DATA_DIR": str(settings.data_dir),
                "LLMWATCH_ALERT_INTERVAL_S": str(DEMO_ALERT_INTERVAL_S),
                "LLMWATCH_SNAPSHOT_INTERVAL_S": str(DEMO_SNAPSHOT_INTERVAL_S),
                "LLMWATCH_SLO_FILE": str(DEMO_SLO_FILE),
            },
            settings.log_dir / "worker.log",
        ).start()
        console.print(f"worker: pid {worker.pid}, log {settings.log_dir / 'worker.log'}")
        analyzer = start_analyzer(
            settings,
            DEMO_SLO_FILE,
            DEMO_ALERT_INTERVAL_S,
            sampling_file=DEMO_SAMPLING_FILE if options.quality else None,
        )
        console.print(f"text analysis: pid {analyzer.pid}, log {settings.log_dir / 'analyze.log'}")
        judge = _start_judge(settings, options, console, stack)
        canary = drift = None
        if options.canary:
            canary = start_canary(settings)
            summary.canary = CanarySummary(*seed_registry(settings))
            console.print(
                f"canary analysis: pid {canary.pid}, log {settings.log_dir / 'canary.log'}; "
                f"support-bot v8 ({summary.canary.v8}) gets 10% of production"
            )
        client = connect(settings.dsn)
        try:
            sink = build_sink(settings, client)
            console.print(f"sink: ClickHouse at {settings.dsn}")
            with _sink_thread(sink):
                _drive_traffic(settings, options, console, summary)
                traffic_done = time.time()
                _drain(sink, options, console, summary)
                if options.text_capture is not None:
                    _drain_guardrails(settings, options, console, summary)
                if judge is not None:
                    _drain_scores(settings, options, console, summary)
                if canary is not None:
                    wait_for_canary(sink, options.drain_timeout_s)
                if options.drift:
                    analyzer.stop(WORKER_STOP_GRACE_S)  # its texts are analysed; these are drift's
                    drift, summary.drift, counts = run_drift_phase(
                        settings,
                        options.seed,
                        options.drain_timeout_s,
                        console,
                        traffic_done,
                        client,
                    )
                    summary.events_emitted += counts[0]
                    summary.events_accepted += counts[0]
                    summary.events_delivered += counts[1]
                    _drain(sink, options, console, summary)
                # One more evaluation and snapshot round, stored before the sink stops.
                console.print("collecting the last alerts and snapshots...")
                time.sleep(DEMO_SNAPSHOT_INTERVAL_S + DEMO_ALERT_INTERVAL_S + 1.0)
            worker.stop(WORKER_STOP_GRACE_S)
            analyzer.stop(WORKER_STOP_GRACE_S)
            for process in (judge, canary, drift):
                if process is not None:
                    process.stop(WORKER_STOP_GRACE_S)
            if summary.drift is not None:
                summary.drift = read_drift(client, settings.database, summary.drift.window_start_ms)
            if summary.canary is not None:
                read_canary(client, settings.database, summary.canary)
            _read_summary(client, settings.database, started, summary)
            summary.quality = read_quality(
                client, settings.database, int(started.timestamp() * 1000)
            )
            summary.guardrails = read_guardrails(
                client, settings.database, int(started.timestamp() * 1000)
            )
            _read_alerts(
                client, settings.database, {"since": int(started.timestamp() * 1000)}, summary
            )
            _write_snapshots(client, settings, started, summary)
        finally:
            worker.stop(WORKER_STOP_GRACE_S)
            analyzer.stop(WORKER_STOP_GRACE_S)
            for process in (judge, canary, drift):
                if process is not None:
                    process.stop(WORKER_STOP_GRACE_S)
            client.close()
            stack.close()
    if options.quality:
        # After the sink closed the chdb folder: each `eval run` opens it in its own process.
        console.print("gating prompt v8 against v7 on the golden set (llmwatch eval run)...")
        summary.eval_gate = run_eval_gate(settings)
    summary.elapsed_s = time.monotonic() - t0
    return summary
