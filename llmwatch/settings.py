"""llmwatch settings: explicit argument > environment (``LLMWATCH_*``) > documented default.

This is the only module that reads the environment. Domain packages (producers, streams, sinks,
dashboards) receive plain values or config objects built here.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Final, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from producers.events import TextCapture
from producers.sdk.config import DEFAULT_QUEUE_MAX_BYTES
from sinks.writer import DEFAULT_BATCH_MAX_BYTES
from streams.delivery import DEFAULT_MAX_IN_FLIGHT
from streams.topics import (
    DEFAULT_PARTITIONS,
    DEFAULT_PREFIX,
    DEFAULT_RETENTION_HOURS,
    DEFAULT_TEXT_RETENTION_HOURS,
    MAX_RECORD_BYTES,
    TopicLayout,
)

__all__ = ["ENV_PREFIX", "Settings"]

ENV_PREFIX: Final = "LLMWATCH_"
DEFAULT_DATA_DIR: Final = Path(".llmwatch-data")


class Settings(BaseSettings):
    """Every setting, with its environment variable ``LLMWATCH_<NAME>`` (see README's table)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    bootstrap: str = Field(
        default="127.0.0.1:9092",
        description="Kafka bootstrap servers (host:port[,host:port]); Tansu, the mock cluster or Kafka.",
    )
    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="Local folder for the embedded ClickHouse, worker state, logs and heartbeats.",
    )
    clickhouse_dsn: str | None = Field(
        default=None,
        description="chdb:///abs/path (embedded) or http(s)://user:pass@host:8123/db. "
        "Default: chdb:///<data_dir>/clickhouse.",
    )
    database: str = Field(default="llmwatch", description="ClickHouse database name.")
    topic_prefix: str = Field(default=DEFAULT_PREFIX, description="Prefix of every topic name.")
    partitions: int = Field(default=DEFAULT_PARTITIONS, ge=1, description="Partitions per topic.")
    retention_hours: int = Field(
        default=DEFAULT_RETENTION_HOURS, ge=1, description="Topic retention (the DLQ keeps 7x)."
    )
    store: str = Field(
        default="rocksdb://",
        description="Faust table store: rocksdb:// (production) or memory:// (tests).",
    )
    worker_id: str = Field(default="llmwatch-worker", description="Faust app id / consumer group.")
    session_timeout_s: float = Field(
        default=6.0,
        gt=0,
        description="Kafka consumer session timeout; 6 s suits the embedded Tansu broker.",
    )
    commit_interval_s: float = Field(
        default=0.5, gt=0, description="How often the worker commits (and publishes its output)."
    )
    worker_max_in_flight: int = Field(
        default=DEFAULT_MAX_IN_FLIGHT,
        ge=1,
        description="Worker: source records whose outputs may await the broker's acks at once.",
    )
    max_record_bytes: int = Field(
        default=MAX_RECORD_BYTES,
        gt=64 * 1024,
        le=MAX_RECORD_BYTES,
        description="Largest record the worker publishes; at most the topics' max.message.bytes.",
    )
    sink_group: str = Field(default="llmwatch-sink", description="Consumer group of the sink.")
    analyze_group: str = Field(
        default="llmwatch-analyze", description="Consumer group of the text-analysis consumer."
    )
    analyze_batch_records: int = Field(
        default=4, ge=1, description="Texts-topic records the text analysis takes per poll."
    )
    analyze_injection_encoder: bool = Field(
        default=True,
        description="Text analysis: the injection detector's MiniLM stage (off: faster, less accurate).",
    )
    guardrails_file: Path | None = Field(
        default=None,
        description="YAML guardrail policy (banned topics, allowed URL domains); defaults if unset.",
    )
    sink_batch_bytes: int = Field(
        default=DEFAULT_BATCH_MAX_BYTES,
        ge=1,
        description="Record bytes pending before an insert (a flush is due at either bound).",
    )
    sdk_queue_max_bytes: int = Field(
        default=DEFAULT_QUEUE_MAX_BYTES,
        ge=1,
        description="SDK (simulator, demo): bytes of events held before emit drops and counts.",
    )
    sink_batch_rows: int = Field(default=10_000, ge=1, description="Rows per ClickHouse insert.")
    sink_flush_interval_s: float = Field(
        default=1.0, gt=0, description="Longest time a row waits before its batch is inserted."
    )
    redact_text: bool = Field(
        default=True, description="Redact PII and secrets in captured text before storage."
    )
    text_capture: TextCapture = Field(
        default=TextCapture.OFF,
        description="SDK/simulator: off (no text leaves the app), analyze, or store (redacted).",
    )
    text_retention_hours: int = Field(
        default=DEFAULT_TEXT_RETENTION_HOURS,
        ge=1,
        description="Retention of the texts topic, the only topic that carries prompt text.",
    )
    web_port: int | None = Field(
        default=None,
        description="Bind the worker's Faust web server to 127.0.0.1:<port>; off if unset.",
    )
    price_overrides: Path | None = Field(
        default=None,
        description="YAML price overrides for custom, fine-tuned and self-hosted models.",
    )
    model_lifecycle_file: Path | None = Field(
        default=None,
        description="YAML model deprecation/retirement dates; default: the bundled, maintained file.",
    )
    deprecation_warn_days: int = Field(
        default=30, ge=0, description="Flag models this many days before deprecation or retirement."
    )
    slo_file: Path = Field(
        default=Path("config/slos.yaml"), description="The SLO and budget file (YAML)."
    )
    declare_topics: bool = Field(
        default=True,
        description="Let Faust create its topics; false for brokers without CreateTopics "
        "(librdkafka's mock cluster), where topics are made in advance.",
    )
    worker_compression: Literal["none", "lz4", "zstd", "gzip"] = Field(
        default="lz4",
        description="Compression of the worker's output records (none saves CPU on a local broker).",
    )
    alert_interval_s: float = Field(
        default=10.0, gt=0, description="How often the worker evaluates SLO burn-rate alerts."
    )
    snapshot_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="How often the worker publishes SLO status, pipeline metrics and top users.",
    )
    otlp_host: str = Field(
        default="127.0.0.1",
        description="Address the OTLP receiver binds (loopback unless told otherwise).",
    )
    otlp_http_port: int = Field(
        default=4318, ge=0, le=65535, description="OTLP/HTTP port (0: off)."
    )
    otlp_grpc_port: int = Field(
        default=4317, ge=0, le=65535, description="OTLP/gRPC port (0: off)."
    )
    otlp_token: SecretStr | None = Field(
        default=None,
        description="Bearer token the OTLP receiver requires (no auth when unset).",
    )
    sampling_file: Path | None = Field(
        default=None,
        description="YAML judge sampling rules read by `llmwatch analyze`; default: the bundled "
        "rules (streams/evaluation/data/sampling.yaml). Set to 'off' to sample nothing.",
    )
    judge_base_url: str = Field(
        default="http://127.0.0.1:8000/v1",
        description="The judge's OpenAI-compatible endpoint (OpenAI, Anthropic's OpenAI API, vLLM, "
        "Ollama).",
    )
    judge_model: str = Field(default="gpt-4o-mini", description="The judge model.")
    judge_provider: str | None = Field(
        default=None,
        description="OTel provider name the judge's own calls are priced under (mistral_ai, "
        "anthropic...); default: from the endpoint's host.",
    )
    judge_api_key: SecretStr | None = Field(
        default=None, description="API key of the judge endpoint (none for local servers)."
    )
    judge_group: str = Field(default="llmwatch-judge", description="Consumer group of the judge.")
    judge_concurrency: int = Field(
        default=4, ge=1, le=256, description="Judge calls in flight at once."
    )
    judge_timeout_s: float = Field(
        default=30.0, gt=0, description="Timeout of one judge call (retried on 429/5xx/timeouts)."
    )
    rubrics_dir: Path | None = Field(
        default=None,
        description="Folder of extra rubric YAML files, added to the bundled ones.",
    )
    canary_policy_file: Path | None = Field(
        default=None,
        description="YAML label policy of `llmwatch canary` (metrics, tolerances, looks, act); "
        "default: the bundled policy (streams/prompts/data/canary.yaml).",
    )
    drift_window_s: int = Field(
        default=600, ge=10, description="`llmwatch drift`: the length of one window (event time)."
    )
    drift_reference_windows: int = Field(
        default=6, ge=1, description="`llmwatch drift`: closed windows in the trailing reference."
    )
    drift_min_samples: int = Field(
        default=200,
        ge=10,
        description="`llmwatch drift`: calls per scope in both windows before a test.",
    )
    drift_fdr: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="`llmwatch drift`: Benjamini-Hochberg false discovery rate.",
    )
    drift_min_psi: float = Field(
        default=0.1, ge=0, description="`llmwatch drift`: the PSI below which no shift is flagged."
    )
    drift_grace_s: int = Field(
        default=60,
        ge=0,
        description="`llmwatch drift`: how long after its end a window waits for late calls.",
    )
    drift_min_texts: int = Field(
        default=200,
        ge=10,
        description="`llmwatch drift`: sampled texts per scope in both windows before a test.",
    )
    drift_embeddings: bool = Field(
        default=True,
        description="`llmwatch drift`: embedding drift of captured texts (needs the text extra and "
        "text capture `analyze` or `store`).",
    )
    drift_embed_rate: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="`llmwatch drift`: share of each service's captured texts sampled for embedding.",
    )
    drift_embed_rates: dict[str, float] = Field(
        default_factory=dict,
        description='`llmwatch drift`: per-service sampling share, JSON, e.g. {"search": 0.1}.',
    )
    drift_sample_size: int = Field(
        default=500,
        ge=20,
        le=5000,
        description="`llmwatch drift`: texts kept per scope and window (bottom-k sample).",
    )
    drift_topics: int = Field(
        default=8, ge=2, le=64, description="`llmwatch drift`: k-means topics per scope."
    )
    drift_encoder: Literal["torch", "onnx-int8"] = Field(
        default="onnx-int8",
        description="`llmwatch drift`: MiniLM backend (onnx-int8: ~2.5x faster, cosine ~0.99 to torch).",
    )
    prompt_user: str | None = Field(
        default=None,
        description="Who `llmwatch prompts` records as moving a label; default: the login name.",
    )
    eval_api_key: SecretStr | None = Field(
        default=None, description="API key of the target `llmwatch eval run` calls."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of the llmwatch processes."
    )

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port], got {value!r}")
        return value

    @field_validator("clickhouse_dsn")
    @classmethod
    def _dsn(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("chdb://", "http://", "https://")):
            raise ValueError(f"expected chdb:///path or http(s)://..., got {value!r}")
        return value

    @cached_property
    def layout(self) -> TopicLayout:
        return TopicLayout(
            self.topic_prefix, self.partitions, self.retention_hours, self.text_retention_hours
        )

    @property
    def dsn(self) -> str:
        if self.clickhouse_dsn:
            return self.clickhouse_dsn
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "worker"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def drift_baseline_dir(self) -> Path:
        """Where `llmwatch drift baseline set` writes the pinned reference the drift process reads."""
        return self.data_dir / "drift-baseline"

    @property
    def model_cache_dir(self) -> Path:
        """Derived model files (the quantized ONNX encoder), built on first use from bundled weights."""
        return self.data_dir / "models"

    def heartbeat_path(self, process: str) -> Path:
        return self.data_dir / "heartbeats" / f"{process}.heartbeat"
