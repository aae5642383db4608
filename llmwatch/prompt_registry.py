"""The CLI's access to the prompt registry topic: read it whole, append one record, load prompt files.

- :func:`read_registry` folds the whole registry topic (one partition) into a ``RegistryState``; it
  blocks until it reached the end offset it saw at start, at most ``timeout_s``.
- :func:`append` produces one record and waits for the broker's acknowledgement (``acks=all``), at most
  ``timeout_s``; it raises ``RegistryError`` if the record was not stored.
- :func:`load_prompt_file` reads a prompt YAML file (``name``, ``template``, optional ``model``,
  ``params``, ``description``) into a version record; the template must hold no secrets or personal
  data the guard's pattern layer finds (use a ``{{ variable }}``), so nothing stored holds them.
Errors name the file, the field and the bad value.
"""

from __future__ import annotations

import contextlib
import getpass
import time
from pathlib import Path
from typing import Any, Final

import yaml
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from pydantic import ValidationError

from producers.guard.check import guard
from producers.prompts.records import PromptVersionRecord, RegistryRecord, decode_registry_record
from producers.prompts.registry import RegistryState

__all__ = ["RegistryError", "append", "current_user", "load_prompt_file", "read_registry"]

DEFAULT_TIMEOUT_S: Final = 15.0
_FILE_FIELDS: Final = frozenset({"name", "template", "model", "params", "description"})


class RegistryError(RuntimeError):
    """The registry topic could not be read or written; the message says which and why."""


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def read_registry(
    bootstrap: str, topic: str, timeout_s: float = DEFAULT_TIMEOUT_S
) -> RegistryState:
    """The registry's state: every record of ``topic`` up to its end at the time of the call."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "llmwatch-prompts-cli",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    state = RegistryState()
    deadline = time.monotonic() + timeout_s
    try:
        try:
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, 0), timeout=timeout_s, cached=False
            )
        except Exception as exc:
            raise RegistryError(
                f"cannot read registry topic {topic!r} at {bootstrap}: {exc}"
            ) from exc
        if high <= 0:
            return state
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        position = 0
        while position < high:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RegistryError(
                    f"registry topic {topic!r}: read {position} of {high} records in {timeout_s:.0f} s"
                )
            message = consumer.poll(min(left, 1.0))
            if message is None:
                continue
            position = _fold(state, message, position)
        return state
    finally:
        consumer.close()


def _fold(state: RegistryState, message: Message, position: int) -> int:
    error = message.error()
    if error is not None:
        if error.code() == KafkaError._PARTITION_EOF:
            return position
        raise RegistryError(f"registry topic: {error}")
    offset = message.offset()
    # A bad record is not part of the registry's state; the sink dead-letters it.
    with contextlib.suppress(ValueError):
        state.apply(decode_registry_record(message.value() or b""))
    return position if offset is None else offset + 1


def append(
    bootstrap: str, topic: str, record: RegistryRecord, timeout_s: float = DEFAULT_TIMEOUT_S
) -> None:
    """Produce one registry record and wait until the broker stored it."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    errors: list[str] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(str(err))

    producer.produce(topic, record.to_json(), key=record.key(), on_delivery=on_delivery)
    left = producer.flush(timeout_s)
    if left or errors:
        reason = "; ".join(errors) or f"no acknowledgement in {timeout_s:.0f} s"
        raise RegistryError(f"registry topic {topic!r} at {bootstrap}: not stored: {reason}")


def load_prompt_file(path: Path, *, created_by: str, now_ms: int) -> PromptVersionRecord:
    """A version record from a prompt YAML file; ValueError naming the file, field and value."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the prompt file: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(
            f"{path}: a prompt file is a mapping with name and template, got {raw!r:.80}"
        )
    unknown = sorted(set(raw) - _FILE_FIELDS)
    if unknown:
        raise ValueError(f"{path}: unknown fields {unknown!r}; known: {sorted(_FILE_FIELDS)}")
    template = raw.get("template")
    if isinstance(template, str):
        found = guard(template).data_types
        if found:
            raise ValueError(
                f"{path}: template holds {', '.join(found)}: keep secrets and personal data out of "
                "prompts (use a {{ variable }} filled at run time)"
            )
    try:
        return PromptVersionRecord.create(
            name=raw.get("name"),  # type: ignore[arg-type]  # pydantic names a missing or bad one
            template=template,  # type: ignore[arg-type]
            model=raw.get("model") or "",
            params=raw.get("params") or {},
            description=raw.get("description") or "",
            created_at_ms=now_ms,
            created_by=created_by,
        )
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']} (got {e.get('input')!r:.60})"
            for e in exc.errors()
        ]
        raise ValueError(f"{path}: " + "; ".join(problems)) from exc
