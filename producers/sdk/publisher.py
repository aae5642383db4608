"""The llmwatch producer SDK: apps call :meth:`Publisher.emit` (or ``track`` / ``observe``) once per
LLM call, and a background thread ships events to Kafka in batch envelopes (``producers.wire``).

Guarantees:
- ``emit`` never raises into the app and never blocks it, and costs the app's thread about a
  microsecond: it stamps the active prompt (``producers.prompts.context``), checks the type and the
  event-count bound without a lock, and appends a reference to the event to the SDK's inbox (see
  ``producers.sdk.sender``). It takes no lock and encodes nothing, and copies only a mapping that is
  not a dict or an event it stamps with a prompt; the SDK's thread does the rest
  (``producers.sdk.send_loop``). ``emit`` returns True iff the event was queued. It is refused on
  the spot, counted, when it is not a mapping or an ``LlmCallEvent`` (``dropped_invalid``), when the
  SDK holds ``queue_max_events`` events (``dropped_queue_full``) or after ``close``
  (``dropped_closed``); the thread may still drop a queued event it cannot serialize or that is too
  large for one Kafka record (``dropped_invalid``), or that would take the SDK over its byte bound
  (``dropped_queue_bytes``). Every drop is counted and reported by a rate-limited warning;
  ``stats.queued`` counts the events the thread has not checked yet.
- The SDK reads a dict passed to ``emit`` after ``emit`` returns (at its thread's next turn, normally
  within 50 ms; later while it works off a backlog): do not change the dict, nor the values in it,
  once emitted; build a new one per event (``track`` / ``observe`` and the integrations do). The SDK
  never changes it.
- Memory is bounded by bytes, not only by count: the SDK's accepted events (pending batches) take at
  most ``queue_max_bytes`` (default ``DEFAULT_QUEUE_MAX_BYTES``, 64 MiB), counted as their JSON plus
  ~128 bytes of Python objects each; an event that would exceed it is dropped when the thread checks it
  and counted as ``dropped_queue_bytes``. Queued events are the app's own objects, held until the
  thread's next turn; with the accepted ones they are at most ``queue_max_events``. librdkafka holds at
  most ``queue.buffering.max.kbytes`` (64 MiB) more.
- Accepted events are delivered at least once; the producer is idempotent, so librdkafka's retries
  add no duplicates. Events that cannot be delivered are counted (see :class:`PublisherStats`), never
  silently lost. Every event carries an ``event_id`` (generated if missing), so replays can be
  deduplicated downstream.
- Message key: ``tb-<crc32(trace_id) % 32>`` (``producers.sdk.batching``), so all spans of a trace
  land on one partition and one process's events keep their order within a trace.
- ``feedback(target, name, value, ...)`` sends human feedback (``producers.feedback``) on the texts
  topic, keyed by the target's trace bucket; like ``emit`` it never raises nor blocks (it encodes on
  the caller's thread: feedback is rare and small).
- Text capture is off by default (``text_capture="off"``): ``input_text`` / ``output_text`` never leave
  the app. With ``"analyze"`` or ``"store"`` (or an event's own ``text_capture``) they go to the texts
  topic as a text record (``producers.texts``), never in the event itself.
- ``flush(timeout)`` and ``close(timeout)`` are bounded by their timeout (``close`` plus a 0.25 s grace).
  ``flush`` covers every event queued before the call (the thread checks and sends them first).
  ``close`` is idempotent and runs at interpreter exit; a Publisher that is garbage-collected without
  ``close`` stops its thread after a last flush in the background. Safe after ``os.fork()``: the child
  gets its own queue, thread and producer on its first ``emit``.
- ``prompts`` (``watch.prompts.get(name, label, key=..., variables=..., fallback=...)``): the prompt
  registry client (``producers.prompts.client``), created with its reader thread on first access and
  closed by ``close``. Its topic is ``prompts_topic``, by default ``<prefix>.prompts`` when the events
  topic is ``<prefix>.events``; otherwise (or with ``prompts_topic=""``) it serves only
  ``prompt_cache_path``'s versions and the callers' fallbacks. Inside ``with handle:`` every emitted
  event gets the handle's ``prompt_name`` / ``prompt_version`` / ``variant`` unless it sets them.

What can block: only ``flush`` and ``close``, each up to its timeout (``close`` up to 1 s more to stop
the prompt client's thread), and the first ``prompts`` access (reading ``prompt_cache_path``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import fields as dataclass_fields
from types import TracebackType
from typing import Any, Final, TypeVar

from pydantic import ValidationError

from producers.events import LlmCallEvent, TextCapture
from producers.feedback import build_feedback
from producers.guard.check import GuardVerdict, guard
from producers.prompts.client import DEFAULT_TTL_S, PromptClient
from producers.prompts.context import with_prompt
from producers.prompts.handle import PromptHandle
from producers.sdk.batching import bucket_for
from producers.sdk.config import (
    DEFAULT_BATCH_MAX_BYTES,
    DEFAULT_BATCH_MAX_EVENTS,
    DEFAULT_BUFFER_FULL_TIMEOUT_S,
    DEFAULT_FLUSH_INTERVAL_S,
    DEFAULT_QUEUE_MAX_BYTES,
    DEFAULT_QUEUE_MAX_EVENTS,
    DEFAULT_SHUTDOWN_TIMEOUT_S,
    PublisherConfig,
)
from producers.sdk.encoding import EventDefaults
from producers.sdk.send_loop import create_producer
from producers.sdk.sender import Sender
from producers.sdk.stats import PublisherStats
from producers.sdk.tracking import TrackedSpan, span_fields
from producers.sdk.tracking import observe as observe_calls

__all__ = ["Publisher"]

log = logging.getLogger("producers.sdk")

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C")

_EVENTS_SUFFIX: Final = ".events"
_PROMPTS_SUFFIX: Final = ".prompts"
_PROMPTS_CLOSE_S: Final = 1.0


def _prompts_topic(events_topic: str, given: str | None) -> str | None:
    """The registry topic: ``given``, or ``<prefix>.prompts`` next to ``<prefix>.events``."""
    if given is not None:
        return given or None
    if events_topic.endswith(_EVENTS_SUFFIX) and len(events_topic) > len(_EVENTS_SUFFIX):
        return events_topic.removesuffix(_EVENTS_SUFFIX) + _PROMPTS_SUFFIX
    return None


class Publisher:
    """Publishes LLM-call events to one Kafka topic. Thread-safe; one per process is enough."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        service: str | None = None,
        environment: str = "production",
        text_capture: TextCapture | str = TextCapture.OFF,
        text_topic: str | None = None,
        queue_max_events: int = DEFAULT_QUEUE_MAX_EVENTS,
        queue_max_bytes: int = DEFAULT_QUEUE_MAX_BYTES,
        batch_max_events: int = DEFAULT_BATCH_MAX_EVENTS,
        batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        buffer_full_timeout_s: float = DEFAULT_BUFFER_FULL_TIMEOUT_S,
        shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
        producer_config: Mapping[str, Any] | None = None,
        prompts_topic: str | None = None,
        prompt_cache_path: str | os.PathLike[str] | None = None,
        prompt_ttl_s: float = DEFAULT_TTL_S,
    ) -> None:
        if isinstance(prompt_ttl_s, bool) or not prompt_ttl_s > 0:
            raise ValueError(
                f"prompt_ttl_s must be a positive number of seconds, got {prompt_ttl_s!r}"
            )
        config = PublisherConfig(
            bootstrap=bootstrap,
            topic=topic,
            service=service,
            environment=environment,
            text_capture=text_capture,  # type: ignore[arg-type]  # validated by PublisherConfig
            text_topic=text_topic,
            queue_max_events=queue_max_events,
            queue_max_bytes=queue_max_bytes,
            batch_max_events=batch_max_events,
            batch_max_bytes=batch_max_bytes,
            flush_interval_s=flush_interval_s,
            buffer_full_timeout_s=buffer_full_timeout_s,
            shutdown_timeout_s=shutdown_timeout_s,
            producer_config=producer_config or {},
        )
        self._config = config
        self._defaults = EventDefaults(
            service=config.service_name,
            environment=config.environment,
            text_capture=config.text_capture,
        )
        self._sender = Sender(config, create_producer(config), self._defaults)
        self._finalizer = weakref.finalize(self, self._sender.stop, config.shutdown_timeout_s)
        self._finalizer.atexit = False  # the sender module closes live senders at exit itself
        self._prompts_topic = _prompts_topic(config.topic, prompts_topic)
        self._prompt_cache_path = prompt_cache_path
        self._prompt_ttl_s = prompt_ttl_s
        self._prompts: PromptClient | None = None
        self._prompts_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: PublisherConfig) -> Publisher:
        kwargs = {f.name: getattr(config, f.name) for f in dataclass_fields(config)}
        return cls(**kwargs)

    @property
    def config(self) -> PublisherConfig:
        return self._config

    @property
    def service(self) -> str:
        return self._defaults.service

    @property
    def environment(self) -> str:
        return self._defaults.environment

    @property
    def closed(self) -> bool:
        return self._sender.closing

    @property
    def stats(self) -> PublisherStats:
        """A consistent snapshot of this process's counters."""
        return self._sender.stats

    @property
    def prompts(self) -> PromptClient:
        """The prompt registry client (created, with its reader thread, on first access)."""
        client = self._prompts
        if client is None:
            client = self._open_prompts()
        return client

    def _open_prompts(self) -> PromptClient:
        with self._prompts_lock:
            if self._prompts is None:
                client = PromptClient(
                    self._config.bootstrap,
                    self._prompts_topic,
                    ttl_s=self._prompt_ttl_s,
                    cache_path=self._prompt_cache_path,
                    client_config=self._config.producer_config,
                    start=not self.closed,
                )
                weakref.finalize(self, client.stop)  # a collected Publisher stops the thread too
                self._prompts = client
            return self._prompts

    def emit(self, event: LlmCallEvent | Mapping[str, Any]) -> bool:
        """Queue one event for the SDK's thread. Never raises, never blocks, never encodes; True iff
        queued (the thread may still drop it, counted; see ``stats``)."""
        try:
            # The active prompt is this thread's / task's: stamp it here (a copy, only when active).
            return self._sender.offer(with_prompt(event))
        except Exception:  # e.g. "can't start new thread" at interpreter shutdown
            log.debug("llmwatch: emit failed", exc_info=True)
            return False

    def flush(self, timeout: float = 5.0) -> bool:
        """Send everything queued so far and wait for the broker, at most ``timeout`` s.

        True iff every event accepted before the call was delivered and none was lost since the
        previous ``flush``.
        """
        try:
            return self._sender.flush(timeout)
        except Exception:
            log.debug("llmwatch: flush failed", exc_info=True)
            return False

    def close(self, timeout: float = 5.0) -> bool:
        """Flush within ``timeout`` and stop the background thread. Idempotent.

        Returns what :meth:`flush` would: True iff nothing accepted was lost.
        """
        self._finalizer.detach()
        try:
            if self._prompts is not None:
                self._prompts.close(min(max(0.0, timeout), _PROMPTS_CLOSE_S))
            return self._sender.close(timeout)
        except Exception:
            log.debug("llmwatch: close failed", exc_info=True)
            return False

    def feedback(
        self,
        target: str,
        name: str,
        value: bool | float | str,
        comment: str | None = None,
        user_id: str | None = None,
    ) -> bool:
        """Record human feedback on a call: ``target`` is its trace id or response id, ``value`` a
        bool (thumbs), a number (a rating) or a label. Idempotent per (target, name, user): sending
        again replaces the earlier value. It may come before or after the call's own event.

        Never raises, never blocks; True iff accepted. Invalid arguments are dropped, counted as
        ``dropped_invalid`` and logged with the bad value. The comment is sent only when this publisher
        captures text; see ``producers.feedback``."""
        try:
            record = build_feedback(
                target,
                name,
                value,
                comment=comment,
                user_id=user_id,
                service=self._defaults.service,
                environment=self._defaults.environment,
                now_ms=time.time_ns() // 1_000_000,
                keep_comment=self._defaults.text_capture is not TextCapture.OFF,
            )
        except (ValueError, ValidationError) as exc:
            self._sender.counters.drop("dropped_invalid", 1, f"feedback: {exc}")
            log.warning("llmwatch: feedback dropped: %s", exc)
            return False
        try:
            routing = record.trace_id or record.response_id or target
            return self._sender.submit(b"", bucket_for(routing), record.to_json())
        except Exception:
            log.debug("llmwatch: feedback failed", exc_info=True)
            return False

    def guard(self, text: object) -> GuardVerdict:
        """Check a prompt before sending it (pattern layer: injection signals, keys, PII shapes).

        Never raises, never blocks, sends nothing; see ``producers.guard.check``."""
        return guard(text)

    def instrument(self, client: C, **options: Any) -> C:
        """Record every call of an ``openai`` or ``anthropic`` client (patched in place, returned).

        Never raises: an unknown client is returned unchanged with a warning; see
        ``producers.integrations``."""
        from producers.integrations import instrument

        return instrument(self, client, **options)

    def track(
        self,
        *,
        provider: str | None = None,
        model: str | None = None,
        operation: str = "chat",
        span_kind: str = "llm",
        prompt: PromptHandle | None = None,
        **fields: Any,
    ) -> TrackedSpan:
        """A context manager (``with`` or ``async with``) recording one span; see ``tracking``.

        ``prompt``: the span names that prompt version (``PromptHandle.fields()``)."""
        if prompt is not None:
            fields = {**prompt.fields(), **fields}
        return TrackedSpan(self, span_fields(provider, model, operation, span_kind, fields))

    def observe(
        self,
        *,
        provider: str | None = None,
        model: str | None = None,
        operation: str = "chat",
        span_kind: str = "llm",
        **fields: Any,
    ) -> Callable[[F], F]:
        """Decorator: every call of the (sync or async) function is recorded as one span."""
        return observe_calls(self, span_fields(provider, model, operation, span_kind, fields))

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(self._config.shutdown_timeout_s)
