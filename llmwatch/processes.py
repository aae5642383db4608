"""Wire settings into the long-running processes: worker, sink, broker. Only llmwatch/ does this.

Each ``run_*`` function blocks until the process is told to stop (SIGTERM/SIGINT) and returns an exit
code. :class:`ChildProcess` starts one of them as a subprocess with a log file and stops it with
SIGTERM, then SIGKILL after a grace period (a crashed Faust agent can hang shutdown).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

from llmwatch.settings import Settings
from streams.admin import ensure_topics

if TYPE_CHECKING:
    from streams.app import WorkerConfig

__all__ = [
    "ChildProcess",
    "build_sink",
    "heartbeat_age_s",
    "run_sink",
    "run_worker",
    "worker_config",
]

log = logging.getLogger(__name__)

STOP_GRACE_S: Final = 10.0


def worker_config(settings: Settings) -> WorkerConfig:
    from streams.app import WorkerConfig

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return WorkerConfig(
        bootstrap=settings.bootstrap,
        layout=settings.layout,
        data_dir=settings.state_dir,
        app_id=settings.worker_id,
        store=settings.store,
        session_timeout_s=settings.session_timeout_s,
        commit_interval_s=settings.commit_interval_s,
        web_port=settings.web_port,
        redact_text=settings.redact_text,
        topic_allow_declare=settings.declare_topics,
        heartbeat_path=settings.heartbeat_path("worker"),
        alert_interval_s=settings.alert_interval_s,
        compression=None if settings.worker_compression == "none" else settings.worker_compression,
        snapshot_interval_s=settings.snapshot_interval_s,
        max_in_flight=settings.worker_max_in_flight,
        max_record_bytes=settings.max_record_bytes,
    )


def run_worker(settings: Settings) -> int:
    """Run the Faust worker in this process until SIGTERM/SIGINT."""
    import faust

    from streams.analytics.record import AnalyticsConfig, RecordAnalytics
    from streams.app import create_app
    from streams.slo.config import load_slo_file

    ensure_topics(settings.bootstrap, settings.layout.specs())
    analytics = RecordAnalytics(
        AnalyticsConfig(
            price_overrides=settings.price_overrides,
            lifecycle_file=settings.model_lifecycle_file,
            deprecation_warn_days=settings.deprecation_warn_days,
        )
    )
    slos = load_slo_file(settings.slo_file) if settings.slo_file.exists() else None
    if slos is None:
        log.warning("no SLO file at %s: burn-rate alerts are off", settings.slo_file)
    else:
        slos, _guardrail_slos = slos.split_guardrails()  # those run in `llmwatch analyze`
    # The instance that owns the monitor topic restores the SLO windows, firing alerts and top-K
    # of the previous owner before it counts a record (streams.app).
    app = create_app(worker_config(settings), analytics, slos)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0


def run_analyzer(settings: Settings) -> int:
    """Run the text-analysis consumer in this process until SIGTERM/SIGINT."""
    from streams.slo.config import load_slo_file
    from streams.text.consumer import AnalyzerConfig, TextConsumer
    from streams.text.detectors import build_analyzer, load_guardrails_file

    analyzer = build_analyzer(
        load_guardrails_file(settings.guardrails_file),
        injection_encoder=settings.analyze_injection_encoder,
    )
    guardrail_slos = None
    if settings.slo_file.exists():
        _call_slos, guardrail_slos = load_slo_file(settings.slo_file).split_guardrails()
    ensure_topics(settings.bootstrap, settings.layout.specs())
    config = AnalyzerConfig(
        bootstrap=settings.bootstrap,
        layout=settings.layout,
        group_id=settings.analyze_group,
        batch_max_records=settings.analyze_batch_records,
        session_timeout_ms=int(settings.session_timeout_s * 1000),
        max_record_bytes=settings.max_record_bytes,
        heartbeat_path=settings.heartbeat_path("analyze"),
        alert_interval_s=settings.alert_interval_s,
    )
    from llmwatch.evaluation import build_tap

    tap = build_tap(settings, analyzer)
    stop = stop_event_on_signals()
    TextConsumer(config, analyzer.analyze, guardrail_slos, evaluation=tap).run(stop)
    return 0


def run_otlp(settings: Settings) -> int:
    """Run the OTLP receiver until SIGTERM/SIGINT: GenAI spans in, events out through the SDK.

    Its counters go to the metrics topic as ``llm_pipeline_metrics`` rows (process ``otlp``) every
    ``snapshot_interval_s``, so rejected exports and dropped spans show on the Pipeline dashboard."""
    import socket

    from confluent_kafka import Producer

    from producers.events import TextCapture
    from producers.otlp.receiver import OtlpReceiver
    from producers.sdk import Publisher
    from streams.periodic import PIPELINE_METRICS_TABLE, encode_snapshot, metric_rows

    ensure_topics(settings.bootstrap, settings.layout.specs())
    token = settings.otlp_token.get_secret_value() if settings.otlp_token else None
    instance = f"{socket.gethostname()}-{os.getpid()}"
    started_ms = int(time.time() * 1000)
    stop = stop_event_on_signals()
    metrics = Producer({"bootstrap.servers": settings.bootstrap, "linger.ms": 50})
    with Publisher(
        settings.bootstrap,
        settings.layout.events,
        service="otlp",
        environment="production",
        text_capture=TextCapture.OFF,
    ) as publisher:
        receiver = OtlpReceiver(
            publisher.emit,
            host=settings.otlp_host,
            http_port=settings.otlp_http_port or None,
            grpc_port=settings.otlp_grpc_port or None,
            bearer_token=token,
        )
        receiver.start()
        log.info(
            "llmwatch otlp on %s: OTLP/HTTP %s, OTLP/gRPC %s -> %s",
            settings.otlp_host,
            receiver.http_port,
            receiver.grpc_port,
            settings.layout.events,
        )
        try:
            while not stop.wait(settings.snapshot_interval_s):
                now = int(time.time() * 1000)
                counts: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
                    (name, ()): float(n) for name, n in receiver.counters().items()
                }
                rows = metric_rows("otlp", instance, started_ms, now, counts)
                metrics.produce(
                    settings.layout.metrics, encode_snapshot({PIPELINE_METRICS_TABLE: rows})
                )
                metrics.poll(0)
        finally:
            receiver.stop()
            metrics.flush(5.0)
    return 0


def stop_event_on_signals() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT (handlers installed now)."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def build_sink(settings: Settings, client: Any = None) -> Any:
    """The ClickHouse sink configured from settings (opens its own client unless given one)."""
    from sinks.clickhouse import connect
    from sinks.writer import ClickHouseSink, SinkConfig

    if client is None:
        client = connect(settings.dsn)
    config = SinkConfig(
        bootstrap=settings.bootstrap,
        layout=settings.layout,
        database=settings.database,
        group_id=settings.sink_group,
        batch_max_rows=settings.sink_batch_rows,
        batch_max_bytes=settings.sink_batch_bytes,
        flush_interval_s=settings.sink_flush_interval_s,
        session_timeout_ms=int(settings.session_timeout_s * 1000),
        heartbeat_path=settings.heartbeat_path("sink"),
    )
    return ClickHouseSink(config, client)


def run_sink(settings: Settings) -> int:
    """Run the ClickHouse sink in this process until SIGTERM/SIGINT."""
    from sinks.clickhouse import connect_retrying

    ensure_topics(settings.bootstrap, settings.layout.specs())
    stop = stop_event_on_signals()
    client = connect_retrying(settings.dsn, stop)  # waits while ClickHouse is unavailable
    if client is None:  # stopped while waiting
        return 0
    sink = build_sink(settings, client)
    sink.run(stop)
    return 0


def heartbeat_age_s(path: Path) -> float | None:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


class ChildProcess:
    """An llmwatch subcommand in a subprocess, logging to a file."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.env = dict(env)
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ChildProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "llmwatch", *self.args],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash, for tests that check nothing is lost."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s: killing it", self.name, grace_s)
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(grace_s)
        return proc.returncode


def run_canary(settings: Settings) -> int:
    """Run the canary analysis (``streams.prompts.consumer``) until SIGTERM/SIGINT."""
    from streams.prompts.consumer import CanaryConfig, CanaryConsumer
    from streams.prompts.policy import DEFAULT_POLICY_FILE, load_policy

    policy = load_policy(settings.canary_policy_file or DEFAULT_POLICY_FILE)
    ensure_topics(settings.bootstrap, settings.layout.specs())
    config = CanaryConfig(
        bootstrap=settings.bootstrap,
        layout=settings.layout,
        policy=policy,
        heartbeat_path=settings.heartbeat_path("canary"),
    )
    log.info(
        "canary analysis: labels %s, alpha %.3g, act %s, looks at %s canary calls",
        ", ".join(policy.labels), policy.alpha, policy.act, policy.looks.counts(),
    )  # fmt: skip
    CanaryConsumer(config).run(stop_event_on_signals())
    return 0


def drift_configs(settings: Settings) -> tuple[Any, Any]:
    """The shape and embedding drift configurations (embedding: None when off)."""
    from streams.drift.embedding_monitor import EmbeddingDriftConfig
    from streams.drift.monitor import DriftConfig

    window_ms = settings.drift_window_s * 1000
    shape = DriftConfig(
        window_ms=window_ms,
        reference_windows=settings.drift_reference_windows,
        grace_ms=settings.drift_grace_s * 1000,
        min_samples=settings.drift_min_samples,
        fdr=settings.drift_fdr,
        min_psi=settings.drift_min_psi,
    )
    if not settings.drift_embeddings:
        return shape, None
    embedding = EmbeddingDriftConfig(
        window_ms=window_ms,
        reference_windows=settings.drift_reference_windows,
        grace_ms=settings.drift_grace_s * 1000,
        min_samples=min(settings.drift_min_texts, settings.drift_sample_size),
        fdr=settings.drift_fdr,
        capacity=settings.drift_sample_size,
        topics=settings.drift_topics,
        rate=settings.drift_embed_rate,
        rates=dict(settings.drift_embed_rates),
    )
    return shape, embedding


def drift_encoder(settings: Settings) -> Any:
    """The MiniLM encoder the drift monitor embeds with (``settings.drift_encoder`` backend)."""
    from streams.drift.embedding_monitor import ENCODER_MAX_TOKENS
    from streams.text.embeddings import load_encoder

    return load_encoder(
        ENCODER_MAX_TOKENS, backend=settings.drift_encoder, cache_dir=settings.model_cache_dir
    )


def run_drift(settings: Settings) -> int:
    """Run the drift monitor (``streams.drift.consumer``) until SIGTERM/SIGINT."""
    from streams.drift.consumer import DriftConsumer, DriftConsumerConfig

    shape, embedding = drift_configs(settings)
    encoder = redact = None
    if embedding is not None:
        try:
            encoder = drift_encoder(settings)
        except ImportError as exc:
            log.warning("drift: no embedding drift (%s); shape drift only", exc)
            embedding = None
        else:
            from streams.text.pii import PiiDetector
            from streams.text.records import redact_spans

            detector = PiiDetector()

            def redact(texts: list[str]) -> list[str]:
                return [redact_spans(text, detector.detect(text)) for text in texts]

    ensure_topics(settings.bootstrap, settings.layout.specs())
    config = DriftConsumerConfig(
        bootstrap=settings.bootstrap,
        layout=settings.layout,
        drift=shape,
        embedding=embedding,
        baseline_dir=settings.drift_baseline_dir,
        encoder_name=settings.drift_encoder,
        heartbeat_path=settings.heartbeat_path("drift"),
    )
    log.info(
        "drift monitor: %d s windows, trailing reference of %d, min %d calls, FDR %.3g, PSI >= %.2f, "
        "embeddings %s",
        settings.drift_window_s, shape.reference_windows, shape.min_samples, shape.fdr,
        shape.min_psi, "off" if embedding is None else f"on ({settings.drift_encoder})",
    )  # fmt: skip
    DriftConsumer(config, encoder=encoder, redact=redact).run(stop_event_on_signals())
    return 0
