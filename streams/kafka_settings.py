"""librdkafka settings shared by the side consumers (``llmwatch analyze``, ``llmwatch judge``), named once.

- :func:`group_consumer_settings`: a consumer-group member that commits by hand (never automatically),
  reads a new group's partitions from the start, and heartbeats at a third of its session timeout.
- :func:`acked_producer_settings`: an idempotent producer that waits for every in-sync replica
  (``acks=all``), compresses with zstd and batches for 20 ms: what at-least-once outputs need.
Pure; nothing here opens a connection.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["acked_producer_settings", "group_consumer_settings"]

MIN_HEARTBEAT_MS: Final = 100
LINGER_MS: Final = 20


def group_consumer_settings(
    bootstrap: str, group_id: str, session_timeout_ms: int
) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": session_timeout_ms,
        "heartbeat.interval.ms": max(MIN_HEARTBEAT_MS, session_timeout_ms // 3),
    }


def acked_producer_settings(bootstrap: str, max_record_bytes: int) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "zstd",
        "linger.ms": LINGER_MS,
        "message.max.bytes": max_record_bytes,
    }
