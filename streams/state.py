"""The worker's restart state on the compacted ``<prefix>.state`` topic: encoding, reading, restoring.

What: ``StreamMonitor.state_record`` (``streams.monitor``) gives one record holding the burn-rate
evaluator's buckets, horizons, watermark and firing alerts (with their ``fired_at``, which is the alert
id), the top-K buckets, the lifecycle alerts already sent and the next offset of every source partition
read. The worker publishes it, keyed by its app id (the consumer group), after every alert evaluation
that follows a change; the topic is compacted (``streams.topics``), so Kafka keeps the latest per key.

Restore: before the worker's agent processes a record, :func:`restore_from_kafka` reads the state topic
from the beginning, with no consumer group, and keeps the last record for its key. It does not trust
the broker's high watermark (Tansu reports a wrong one after multi-record batches): it reads until the
end was reported and then nothing new arrived for ``idle_s``, and gives up after ``timeout_s`` (a
warning; it then restores the latest record seen). A record it cannot use (not JSON, another version
or key, a malformed part) is logged and ignored: the worker starts empty, it never crashes.

Guarantee and bound: an incident that spans a restart keeps its alert_id and is resolved once. Records
whose offsets are below a partition's saved next offset are not counted again (``StreamMonitor.
observe``); the rows of records committed after the last published state and before a crash are not in
the restored windows (at most one alert interval of traffic).

Size: compact JSON (orjson), about 30 bytes per minute or hour bucket and 40 per top-K entry. The
demo's SLO file (``llmwatch/data/slos.demo.yaml``, 12 SLOs) with every window full (362 minute and 720
hour buckets per SLO) takes 477 KB (27 KB after the worker's lz4); a full top-K (1,000 users in each
of 60 minutes) 2.4 MB (89 KB lz4): far under the 16 MiB record limit. A record larger than
:data:`MAX_STATE_BYTES` is not published (logged). What can block: only :func:`read_latest_state`,
for at most ``timeout_s``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from streams.topics import MAX_RECORD_BYTES

__all__ = [
    "DEFAULT_IDLE_S",
    "DEFAULT_READ_TIMEOUT_S",
    "MAX_STATE_BYTES",
    "STATE_MARKER",
    "STATE_VERSION",
    "StateRecord",
    "StateTarget",
    "decode_offsets",
    "decode_state",
    "encode_state",
    "read_latest_state",
    "restore_from_kafka",
    "restore_state",
]

log = logging.getLogger(__name__)

STATE_MARKER: Final = "llmwatch_state"
STATE_VERSION: Final = 1
MAX_STATE_BYTES: Final = MAX_RECORD_BYTES
DEFAULT_IDLE_S: Final = 1.0
DEFAULT_READ_TIMEOUT_S: Final = 30.0
_POLL_S: Final = 0.2
_BATCH: Final = 100


class StateTarget(Protocol):
    """What a restored state is given to (``streams.monitor.StreamMonitor``)."""

    def load_state(self, body: dict[str, Any]) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class StateRecord:
    key: str
    written_at: int  # epoch ms
    body: dict[str, Any]


def encode_state(key: str, written_at_ms: int, body: Mapping[str, Any]) -> bytes | None:
    """One state record, or None (logged) when it exceeds :data:`MAX_STATE_BYTES`."""
    record = orjson.dumps(
        {STATE_MARKER: STATE_VERSION, "key": key, "written_at": written_at_ms, "body": body}
    )
    if len(record) > MAX_STATE_BYTES:
        log.error(
            "state of %s is %d bytes, over the %d-byte record limit: not published",
            key,
            len(record),
            MAX_STATE_BYTES,
        )
        return None
    return record


def decode_state(value: bytes | None, key: str) -> StateRecord:
    """Parse a state record for ``key``; raises ValueError naming what is wrong."""
    try:
        doc = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"state record is not JSON ({exc}): {(value or b'')[:80]!r}") from exc
    if not isinstance(doc, dict) or doc.get(STATE_MARKER) != STATE_VERSION:
        marker = doc.get(STATE_MARKER) if isinstance(doc, dict) else doc
        raise ValueError(f"not a version-{STATE_VERSION} state record, got {marker!r:.80}")
    if doc.get("key") != key:
        raise ValueError(f"state record is for {doc.get('key')!r}, not {key!r}")
    written_at, body = doc.get("written_at"), doc.get("body")
    if isinstance(written_at, bool) or not isinstance(written_at, int):
        raise ValueError(f"state written_at must be epoch ms, got {written_at!r:.80}")
    if not isinstance(body, dict):
        raise ValueError(f"state body must be an object, got {body!r:.80}")
    return StateRecord(key, written_at, body)


def decode_offsets(doc: Any) -> dict[tuple[str, int], int]:
    """A saved ``[[topic, partition, next offset], ...]`` list; ValueError naming a bad item."""
    if not isinstance(doc, list):
        raise ValueError(f"state needs a list of source offsets, got {doc!r:.80}")
    out = {}
    for item in doc:
        if not (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in item[1:])
        ):
            raise ValueError(f"source offset must be [topic, partition, next], got {item!r:.80}")
        out[(item[0], item[1])] = item[2]
    return out


def restore_state(target: StateTarget, value: bytes | None, key: str) -> bool:
    """Give a state record to ``target``; False (logged, target unchanged) if it cannot be used."""
    try:
        record = decode_state(value, key)
        skipped = target.load_state(record.body)
    except ValueError as exc:
        log.warning("ignoring the saved state of %s, starting empty: %s", key, exc)
        return False
    age_s = (time.time_ns() // 1_000_000 - record.written_at) / 1000
    log.info("restored the state of %s saved %.1f s ago", key, age_s)
    if skipped:
        log.warning("not restored (SLO file changed?): %s", "; ".join(skipped))
    return True


def _consumer(bootstrap: str, client_config: Mapping[str, Any] | None) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"llmwatch-state-reader-{uuid.uuid4().hex}",  # never joined or committed
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.message.max.bytes": MAX_RECORD_BYTES,
            **(client_config or {}),
        }
    )


def read_latest_state(
    bootstrap: str,
    topic: str,
    key: str,
    *,
    idle_s: float = DEFAULT_IDLE_S,
    timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    client_config: Mapping[str, Any] | None = None,
) -> bytes | None:
    """The value of the last record keyed ``key`` on ``topic`` (None if there is none).

    Raises KafkaException if the broker cannot be reached."""
    consumer = _consumer(bootstrap, client_config)
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            return None
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        return _read_to_end(consumer, key.encode(), len(meta.partitions), idle_s, timeout_s)
    finally:
        consumer.close()


def _read_to_end(
    consumer: Consumer, key: bytes, partitions: int, idle_s: float, timeout_s: float
) -> bytes | None:
    started = last_news = time.monotonic()
    at_end: set[int] = set()
    latest: bytes | None = None
    while True:
        now = time.monotonic()
        if len(at_end) == partitions and now - last_news >= idle_s:
            return latest
        if now - started >= timeout_s:
            log.warning("state topic not read to its end in %.0f s: using what was read", timeout_s)
            return latest
        for message in consumer.consume(num_messages=_BATCH, timeout=_POLL_S):
            last_news = time.monotonic()
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                at_end.add(message.partition() or 0)  # always set on a partition EOF
            elif error is not None:
                raise KafkaException(error)
            elif message.key() == key:
                latest = message.value()


def restore_from_kafka(
    target: StateTarget,
    bootstrap: str,
    topic: str,
    key: str,
    *,
    idle_s: float = DEFAULT_IDLE_S,
    timeout_s: float = DEFAULT_READ_TIMEOUT_S,
) -> bool:
    """Read the latest state for ``key`` and give it to ``target``; False if none could be used."""
    try:
        value = read_latest_state(bootstrap, topic, key, idle_s=idle_s, timeout_s=timeout_s)
    except KafkaException as exc:
        log.warning("could not read the saved state of %s from %s: %s", key, topic, exc)
        return False
    if value is None:
        log.info("no saved state for %s on %s: starting empty", key, topic)
        return False
    return restore_state(target, value, key)
