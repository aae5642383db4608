"""The SDK's prompt client: ``watch.prompts.get(name, label, key=..., variables=..., fallback=...)``.

A daemon thread reads the registry topic (``TopicLayout.prompts``, partition 0) from its beginning with
``assign`` (no consumer group: a throwaway ``group.id``, nothing committed) and keeps following it,
folding every record into a :class:`RegistryState` under a lock. ``get`` only reads that state.

Guarantees:
- :meth:`PromptClient.get` never blocks on the network and never raises: it takes one short lock
  (held by the thread only to fold already-decoded records) and returns a :class:`PromptHandle` or
  None. The label's arm is chosen by ``producers.prompts.split`` (sticky per ``key``).
- Freshness: the state is *fresh* while the thread reached the topic's end within ``ttl_s`` (it checks
  the end offset every ``min(ttl_s / 4, 5)`` s). A stale state is still served, and counted
  (``stats().stale``): an unreachable registry never takes the prompts away from the app.
- Nothing known (the label is not in the state): ``get`` returns a handle for the caller's
  ``fallback`` (a template string or a ``PromptVersionRecord``; ``source == "fallback"``), or None when
  no fallback was given. Both count as ``fallbacks``.
- ``source`` is ``"registry"`` when the label's current move was read from the topic by this client,
  ``"cache"`` when it came from ``cache_path`` and the topic has not confirmed it (yet).
- A record that does not decode (topic or cache file) is skipped, logged and counted as ``bad_records``.
- ``cache_path``: after each batch that changes the state, the thread writes every known version and
  current label move as JSON lines to a temporary file and ``os.replace``s it (atomic: a reader sees
  the old file or the new one). The constructor reads it (local disk only), so a restarted app with
  the registry down serves the last known versions. The topic is authoritative for newer revisions;
  a cached move is kept until the topic has a move with a higher (or equal) revision.
- ``topic=None``: no thread; ``get`` serves the cache file's state or the fallbacks.
- :meth:`close` is idempotent and bounded by its timeout; after ``os.fork()`` the child keeps the
  state and starts its own thread on its first ``get`` (the inherited librdkafka handle is leaked).

What can block: the constructor (reading ``cache_path``), :meth:`wait_ready` and :meth:`close`, each
bounded; the thread itself (bounded polls and offset queries).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from producers.prompts.handle import PromptHandle, Source, fallback_handle
from producers.prompts.records import (
    DEFAULT_LABEL,
    LabelMove,
    PromptVersionRecord,
    RegistryRecord,
    decode_registry_record,
)
from producers.prompts.registry import RegistryState
from producers.prompts.split import choose_arm
from producers.wire import MAX_RECORD_BYTES

__all__ = ["DEFAULT_TTL_S", "THREAD_NAME", "PromptClient", "PromptClientStats"]

log = logging.getLogger("producers.sdk")

DEFAULT_TTL_S: Final = 60.0
THREAD_NAME: Final = "llmwatch-sdk-prompts"
DEFAULT_CLOSE_TIMEOUT_S: Final = 2.0
_POLL_S: Final = 0.2
_BATCH: Final = 500
_QUERY_TIMEOUT_S: Final = 1.0
_MAX_CHECK_S: Final = 5.0
_MIN_CHECK_S: Final = 0.2
# Client settings a consumer shares with the app's producer (security, logging); the rest stay there.
_SHARED_PREFIXES: Final = ("security.", "sasl.", "ssl.", "socket.", "client.", "log_level", "log.")

_CLIENTS: weakref.WeakSet[PromptClient] = weakref.WeakSet()


@dataclass(frozen=True, slots=True)
class PromptClientStats:
    hits: int = 0  # get() served a version from the state (registry or cache)
    fallbacks: int = 0  # get() found nothing: returned the fallback or None
    stale: int = 0  # hits served while the state was not fresh
    bad_records: int = 0  # records skipped because they do not decode (topic and cache file)
    last_refresh_ms: int | None = None  # wall clock of the last time the topic's end was reached


def _leak(handle: object) -> None:
    """Never destroy ``handle`` (an inherited librdkafka client in a forked child)."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(handle))


class PromptClient:
    """Serves prompt versions from the registry topic's state. Thread-safe."""

    def __init__(
        self,
        bootstrap: str,
        topic: str | None,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        cache_path: str | os.PathLike[str] | None = None,
        client_config: Mapping[str, Any] | None = None,
        start: bool = True,
    ) -> None:
        if isinstance(ttl_s, bool) or not ttl_s > 0:
            raise ValueError(f"ttl_s must be a positive number of seconds, got {ttl_s!r}")
        self._bootstrap = bootstrap
        self._topic = topic or None
        self._ttl_s = float(ttl_s)
        self._check_s = min(max(self._ttl_s / 4, _MIN_CHECK_S), _MAX_CHECK_S)
        self._cache_path = None if cache_path is None else Path(cache_path)
        shared = {k: v for k, v in (client_config or {}).items() if k.startswith(_SHARED_PREFIXES)}
        self._client_config = shared
        self._state = RegistryState()
        self._live: dict[tuple[str, str], LabelMove] = {}  # the latest move read from the topic
        self._stats = PromptClientStats()
        self._last_end: float | None = None  # monotonic time the topic's end was last reached
        self._closed = False
        self._init_runtime(ready=False)
        self._load_cache()
        _CLIENTS.add(self)
        if start:
            self.start()

    def _init_runtime(self, *, ready: bool) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        if ready:
            self._ready.set()
        self._thread: threading.Thread | None = None
        self._consumer: Consumer | None = None

    @property
    def topic(self) -> str | None:
        return self._topic

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the app's side -----------------------------------------------------------------------

    def get(
        self,
        name: str,
        label: str = DEFAULT_LABEL,
        key: str | int | None = None,
        variables: Mapping[str, object] | None = None,
        fallback: str | PromptVersionRecord | None = None,
    ) -> PromptHandle | None:
        """The version of ``name`` that ``label`` gives ``key``, rendered with ``variables``.

        Never blocks on the network, never raises. Nothing known: the ``fallback``'s handle, or None.
        """
        values: Mapping[str, object] = variables if variables is not None else {}
        try:
            if self._thread is None and self._topic is not None and not self._closed:
                self.start()  # after a fork: this process's own thread
            found = self._lookup(name, label, None if key is None else str(key))
            if found is not None:
                record, move, number, source = found
                return PromptHandle.of(record, move, number, values, source)
        except Exception:
            log.debug("llmwatch: prompt %r lookup failed", name, exc_info=True)
        return self._fallback(name, label, fallback, values)

    def _lookup(
        self, name: str, label: str, key: str | None
    ) -> tuple[PromptVersionRecord, LabelMove, int, Source] | None:
        with self._lock:
            move = self._state.label(name, label)
            if move is None:
                return None
            record = self._state.version(name, choose_arm(move, key).version)
            if record is None:  # a move for a version this client has not seen
                return None
            number = self._state.number(name, record.version)
            source: Source = "registry" if self._live.get((name, label)) == move else "cache"
            stale = int(not self._fresh())
            self._stats = replace(
                self._stats, hits=self._stats.hits + 1, stale=self._stats.stale + stale
            )
        return record, move, number, source

    def _fallback(
        self,
        name: str,
        label: str,
        fallback: str | PromptVersionRecord | None,
        values: Mapping[str, object],
    ) -> PromptHandle | None:
        with self._lock:
            self._stats = replace(self._stats, fallbacks=self._stats.fallbacks + 1)
        if fallback is None:
            return None
        try:
            return fallback_handle(name, label, fallback, values)
        except Exception:
            log.debug("llmwatch: fallback of prompt %r failed", name, exc_info=True)
            return None

    def _fresh(self) -> bool:
        last = self._last_end
        return last is not None and time.monotonic() - last <= self._ttl_s

    def stats(self) -> PromptClientStats:
        with self._lock:
            return self._stats

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the thread reached the topic's end once (at most ``timeout`` s); False if
        it did not, or if there is no topic."""
        if self._topic is None:
            return False
        if self._thread is None and not self._closed:
            self.start()
        return self._ready.wait(max(0.0, timeout))

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reader thread (idempotent; nothing without a topic or once closed)."""
        topic = self._topic
        if topic is None or self._closed:
            return
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(
                target=self._run,
                args=(self._stop, topic),
                name=f"{THREAD_NAME}:{topic}",
                daemon=True,
            )
            self._thread = thread
        thread.start()

    def stop(self) -> None:
        """Ask the thread to stop, without waiting (idempotent)."""
        self._closed = True
        self._stop.set()

    def close(self, timeout: float = DEFAULT_CLOSE_TIMEOUT_S) -> bool:
        """Stop the thread, waiting at most ``timeout`` s; True iff it has stopped. Idempotent."""
        self.stop()
        thread = self._thread
        if thread is None or thread is threading.current_thread() or not thread.is_alive():
            return True
        thread.join(max(0.0, timeout))
        return not thread.is_alive()

    def _after_fork_in_child(self) -> None:
        if self._consumer is not None:
            _leak(self._consumer)
        self._init_runtime(ready=self._ready.is_set())

    # -- the thread's side ----------------------------------------------------------------------

    def _run(self, stop: threading.Event, topic: str) -> None:
        consumer: Consumer | None = None
        try:
            consumer = Consumer(
                {
                    "bootstrap.servers": self._bootstrap,
                    "group.id": f"llmwatch-prompts-{uuid.uuid4().hex}",  # assign() only: no commits
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "fetch.message.max.bytes": MAX_RECORD_BYTES,
                    **self._client_config,
                }
            )
            self._consumer = consumer
            consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
            next_check = time.monotonic()
            while not stop.is_set():
                self._fold(consumer.consume(num_messages=_BATCH, timeout=_POLL_S))
                if time.monotonic() >= next_check and not stop.is_set():
                    self._check_end(consumer, topic)
                    next_check = time.monotonic() + self._check_s
        except Exception:
            log.warning("llmwatch: the prompt registry reader stopped", exc_info=True)
        finally:
            if consumer is not None:
                self._consumer = None
                consumer.close()

    def _fold(self, messages: Sequence[Message]) -> None:
        records: list[RegistryRecord] = []
        bad = 0
        at_end = False
        for message in messages:
            error = message.error()
            if error is not None:
                at_end = at_end or error.code() == KafkaError._PARTITION_EOF
                if error.code() != KafkaError._PARTITION_EOF:
                    log.debug("llmwatch: prompt registry: %s", error)
                continue
            try:
                records.append(decode_registry_record(message.value() or b""))
            except ValueError as exc:
                bad += 1
                log.warning(
                    "llmwatch: skipped prompt registry record %s: %s", message.offset(), exc
                )
        snapshot = self._apply(records, bad) if records or bad else None
        if snapshot:
            self._write_cache(snapshot)
        if at_end:  # after the cache write: a ready client has its cache file up to date
            self._mark_end()

    def _apply(self, records: list[RegistryRecord], bad: int) -> list[RegistryRecord] | None:
        """Fold decoded records in; the records to cache if the state changed and a cache is set."""
        with self._lock:
            changed = False
            for record in records:
                changed = self._state.apply(record) or changed
                if isinstance(record, LabelMove):
                    key = (record.name, record.label)
                    known = self._live.get(key)
                    if known is None or record.revision >= known.revision:
                        self._live[key] = record
            if bad:
                self._stats = replace(self._stats, bad_records=self._stats.bad_records + bad)
            if not changed or self._cache_path is None:
                return None
            return self._records()

    def _records(self) -> list[RegistryRecord]:
        """Every known version and current label move (call with the lock held)."""
        records: list[RegistryRecord] = []
        for name in sorted(self._state.versions):
            records.extend(self._state.history(name))
        records.extend(move for _, move in sorted(self._state.labels.items()))
        return records

    def _check_end(self, consumer: Consumer, topic: str) -> None:
        partition = TopicPartition(topic, 0)
        try:
            low, high = consumer.get_watermark_offsets(
                partition, timeout=_QUERY_TIMEOUT_S, cached=False
            )
            (position,) = consumer.position([partition])
        except Exception as exc:  # KafkaException: broker down, topic missing
            log.debug("llmwatch: prompt registry end offset unknown: %s", exc)
            return
        if high <= low or position.offset >= high:
            self._mark_end()

    def _mark_end(self) -> None:
        now_ms = time.time_ns() // 1_000_000
        with self._lock:
            self._last_end = time.monotonic()
            self._stats = replace(self._stats, last_refresh_ms=now_ms)
        self._ready.set()

    # -- the cache file -------------------------------------------------------------------------

    def _load_cache(self) -> None:
        path = self._cache_path
        if path is None:
            return
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("llmwatch: cannot read the prompt cache %s: %s", path, exc)
            return
        bad = 0
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                self._state.apply(decode_registry_record(line))
            except ValueError as exc:
                bad += 1
                log.warning("llmwatch: skipped a bad line of the prompt cache %s: %s", path, exc)
        self._stats = replace(self._stats, bad_records=self._stats.bad_records + bad)

    def _write_cache(self, records: list[RegistryRecord]) -> None:
        path = self._cache_path
        if path is None:
            return
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as out:
                out.write(b"".join(record.to_json() + b"\n" for record in records))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("llmwatch: cannot write the prompt cache %s: %s", path, exc)
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


def _after_fork_in_child() -> None:
    for client in list(_CLIENTS):
        client._after_fork_in_child()


def _close_all_at_exit() -> None:
    for client in list(_CLIENTS):
        client.close(_POLL_S + _QUERY_TIMEOUT_S)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all_at_exit)
