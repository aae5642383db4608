"""The SDK's settings and the confluent-kafka producer configuration derived from them.

Producer defaults and why:
- ``enable.idempotence`` + ``acks=all``: librdkafka's retries never duplicate or reorder a record
  within a partition.
- ``compression.type=zstd``: batch envelopes are repetitive JSON; zstd shrinks them ~2x more than lz4
  for little CPU at SDK rates (verified against the embedded Tansu broker).
- ``partitioner=murmur2_random``: the Java client's key hash, so producers written in other languages
  put a trace bucket key on the same partition.
- ``queue.buffering.max.*`` bound librdkafka's memory (:data:`BUFFER_MAX_KBYTES`); ``message.timeout.ms``
  bounds how long a record may wait for the broker before its events count as ``delivery_failed``.
``producer_config`` overrides or extends any of these (e.g. ``security.protocol``, SASL settings).

Memory bounds: the SDK's own hold is at most ``queue_max_events`` events (queued and accepted) and its
accepted events take at most ``queue_max_bytes`` bytes (:data:`DEFAULT_QUEUE_MAX_BYTES`, 64 MiB),
whichever binds first (``producers.sdk.sender``); librdkafka holds at most
``queue.buffering.max.kbytes`` more. A record value (one batch envelope) is at most
:data:`MAX_RECORD_VALUE_BYTES`, so librdkafka never refuses a record the SDK built as too large.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from producers.events import TextCapture
from producers.sdk.batching import ENVELOPE_OVERHEAD_BYTES
from producers.wire import MAX_RECORD_BYTES

__all__ = [
    "COMPRESSION",
    "DEFAULT_BATCH_MAX_BYTES",
    "DEFAULT_BATCH_MAX_EVENTS",
    "DEFAULT_QUEUE_MAX_BYTES",
    "DEFAULT_QUEUE_MAX_EVENTS",
    "DEFAULT_SERVICE",
    "MAX_MESSAGE_BYTES",
    "MAX_RECORD_VALUE_BYTES",
    "RECORD_OVERHEAD_BYTES",
    "PublisherConfig",
]

MAX_MESSAGE_BYTES: Final = MAX_RECORD_BYTES
# librdkafka counts a record's framing and key against ``message.max.bytes``: at most 36 bytes of
# v2 record framing (librdkafka 2.x) plus the key ``tb-NN``; rounded up. A value may use the rest.
RECORD_OVERHEAD_BYTES: Final = 64
MAX_RECORD_VALUE_BYTES: Final = MAX_MESSAGE_BYTES - RECORD_OVERHEAD_BYTES
DEFAULT_QUEUE_MAX_EVENTS: Final = 100_000
# 64 MiB: ~200,000 typical events (~300 B) or 64 events carrying 1 MiB of text each.
DEFAULT_QUEUE_MAX_BYTES: Final = 64 * 1024 * 1024
DEFAULT_BATCH_MAX_EVENTS: Final = 500
# Under Kafka's default topic max.message.bytes (1 MB), so records fit any broker's defaults.
DEFAULT_BATCH_MAX_BYTES: Final = 900_000
DEFAULT_FLUSH_INTERVAL_S: Final = 0.2
DEFAULT_BUFFER_FULL_TIMEOUT_S: Final = 1.0
DEFAULT_SHUTDOWN_TIMEOUT_S: Final = 5.0
COMPRESSION: Final = "zstd"
LINGER_MS: Final = 10
BUFFER_MAX_KBYTES: Final = 64 * 1024
BUFFER_MAX_RECORDS: Final = 10_000
MESSAGE_TIMEOUT_MS: Final = 30_000
CLIENT_ID: Final = "llmwatch-sdk"
# OTel's default service name for a process that did not set one.
DEFAULT_SERVICE: Final = "unknown_service"


def _default_service() -> str:
    name = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else ""
    return f"{DEFAULT_SERVICE}:{name}" if name else DEFAULT_SERVICE


def _text_capture(value: object) -> TextCapture:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return TextCapture(value)
    except ValueError:
        choices = ", ".join(repr(c.value) for c in TextCapture)
        raise ValueError(f"text_capture must be one of {choices}, got {value!r}") from None


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class PublisherConfig:
    """What a :class:`~producers.sdk.publisher.Publisher` needs; validated on construction."""

    bootstrap: str
    topic: str
    service: str | None = None
    environment: str = "production"
    # What may happen to prompt and output text (producers.events.TextCapture); events may override it.
    text_capture: TextCapture = TextCapture.OFF
    # Where text records go; None: the events topic's name with ".texts" for its last part.
    text_topic: str | None = None
    # Events the SDK may hold (queued + accepted) before ``emit`` drops, and the accepted ones' bytes.
    queue_max_events: int = DEFAULT_QUEUE_MAX_EVENTS
    queue_max_bytes: int = DEFAULT_QUEUE_MAX_BYTES
    batch_max_events: int = DEFAULT_BATCH_MAX_EVENTS
    batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES
    flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S
    # How long the background thread retries a record while librdkafka's buffer is full.
    buffer_full_timeout_s: float = DEFAULT_BUFFER_FULL_TIMEOUT_S
    # How long ``close()`` waits at interpreter exit (atexit) or garbage collection.
    shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S
    producer_config: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not self.bootstrap.strip():
            raise ValueError(f"bootstrap must name at least one broker, got {self.bootstrap!r}")
        if not self.topic or any(c.isspace() for c in self.topic):
            raise ValueError(f"topic must be non-empty without spaces, got {self.topic!r}")
        if self.service is not None and not self.service.strip():
            raise ValueError(f"service must be None or non-empty, got {self.service!r}")
        if not self.environment.strip():
            raise ValueError(f"environment must be non-empty, got {self.environment!r}")
        object.__setattr__(self, "text_capture", _text_capture(self.text_capture))
        if self.text_topic is not None and (
            not self.text_topic or any(c.isspace() for c in self.text_topic)
        ):
            raise ValueError(
                f"text_topic must be non-empty without spaces, got {self.text_topic!r}"
            )
        _positive("queue_max_events", self.queue_max_events)
        _positive("batch_max_events", self.batch_max_events)
        if not ENVELOPE_OVERHEAD_BYTES < self.batch_max_bytes <= MAX_RECORD_VALUE_BYTES:
            raise ValueError(
                f"batch_max_bytes must be in ({ENVELOPE_OVERHEAD_BYTES}, {MAX_RECORD_VALUE_BYTES}], "
                f"got {self.batch_max_bytes!r}"
            )
        if not self.queue_max_bytes >= self.batch_max_bytes:  # "not >=" also rejects NaN
            raise ValueError(
                f"queue_max_bytes must be >= batch_max_bytes ({self.batch_max_bytes}) so that one "
                f"full batch can be held, got {self.queue_max_bytes!r}"
            )
        if self.flush_interval_s < 0:
            raise ValueError(f"flush_interval_s must be >= 0, got {self.flush_interval_s!r}")
        _positive("buffer_full_timeout_s", self.buffer_full_timeout_s)
        if self.shutdown_timeout_s < 0:
            raise ValueError(f"shutdown_timeout_s must be >= 0, got {self.shutdown_timeout_s!r}")
        object.__setattr__(self, "producer_config", MappingProxyType(dict(self.producer_config)))

    @property
    def texts_topic(self) -> str:
        """The topic text records go to (``text_topic``, else derived from ``topic``)."""
        if self.text_topic is not None:
            return self.text_topic
        head, dot, _last = self.topic.rpartition(".")
        return f"{head}.texts" if dot else f"{self.topic}.texts"

    @property
    def service_name(self) -> str:
        """The service stamped on events that do not name one."""
        return self.service if self.service is not None else _default_service()

    def kafka_config(self) -> dict[str, Any]:
        """The confluent-kafka ``Producer`` configuration (``producer_config`` wins)."""
        return {
            "bootstrap.servers": self.bootstrap,
            "client.id": CLIENT_ID,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": COMPRESSION,
            "linger.ms": LINGER_MS,
            "partitioner": "murmur2_random",
            "queue.buffering.max.kbytes": BUFFER_MAX_KBYTES,
            "queue.buffering.max.messages": BUFFER_MAX_RECORDS,
            "message.timeout.ms": MESSAGE_TIMEOUT_MS,
            "message.max.bytes": MAX_MESSAGE_BYTES,
            "logger": logging.getLogger("producers.sdk.kafka"),
            **self.producer_config,
        }
