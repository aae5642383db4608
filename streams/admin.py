"""Create the pipeline's topics idempotently with confluent-kafka's AdminClient.

Guarantees: :func:`ensure_topics` returns only when every topic in the layout exists; a topic that
exists with a different partition count raises :class:`TopicMismatchError` naming it, since Faust and
the sinks assume the configured count. Brokers without the CreateTopics API (librdkafka's mock cluster)
must have their topics created by their launcher first; then this only verifies them.

What can block: up to ``timeout_s`` waiting for the broker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from streams.topics import TopicSpec

__all__ = ["KafkaUnavailableError", "TopicMismatchError", "ensure_topics"]

log = logging.getLogger(__name__)


class TopicMismatchError(RuntimeError):
    """A topic exists with a partition count other than the configured one."""


class KafkaUnavailableError(RuntimeError):
    """The broker at the bootstrap address did not answer."""


def ensure_topics(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    *,
    client_config: Mapping[str, Any] | None = None,
    timeout_s: float = 15.0,
) -> list[str]:
    """Create missing topics; return the names created."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **(client_config or {})})
    wanted = list(specs)
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"cannot reach Kafka at {bootstrap!r} within {timeout_s:g} s: {exc.args[0].str()}"
        ) from exc
    missing = [s for s in wanted if s.name not in existing]
    for spec in wanted:
        meta = existing.get(spec.name)
        if meta is not None and meta.error is None and len(meta.partitions) != spec.partitions:
            raise TopicMismatchError(
                f"topic {spec.name!r} has {len(meta.partitions)} partitions, "
                f"configured {spec.partitions}; recreate it or set LLMWATCH_PARTITIONS="
                f"{len(meta.partitions)}"
            )
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(s.name, s.partitions, 1, config=s.config()) for s in missing],
        request_timeout=timeout_s,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" in str(exc):
                continue
            raise RuntimeError(f"could not create topic {name!r}: {exc}") from exc
    log.info("created topics %s", created)
    return created
