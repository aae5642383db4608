"""Record one LLM call (or chain step) as a span: ``with publisher.track(...) as span`` or
``@publisher.observe(...)``, for sync and async code alike.

Guarantees:
- Exactly one event per span, emitted when the block or function ends, with start/end times from
  one monotonic clock (``end_time >= start_time``), ``status``, ``error_type`` (the exception's class
  name) and ``http_status`` (from the exception's ``status_code`` or ``response.status_code``).
- The app's exceptions pass through unchanged. The tracker's own errors are logged at debug level and
  swallowed: tracking never raises into the app, and emitting never blocks (see ``Publisher.emit``).
- Nesting: the current span lives in a ``contextvars.ContextVar``, so a span opened inside another
  (same thread, same asyncio task, or a task created inside it) joins its trace and gets
  ``parent_span_id`` automatically.
- Fields are not validated here; the worker validates and dead-letters bad events.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar, Token
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Protocol, TypeVar, cast

import orjson

from producers.events import Status, new_event_id, new_span_id, new_trace_id

__all__ = [
    "FUNCTION_METADATA_KEY",
    "EventSink",
    "SpanRecorder",
    "TrackedSpan",
    "current_span",
    "observe",
]

log = logging.getLogger("producers.sdk")

FUNCTION_METADATA_KEY: Final = "llmwatch.function"
_HTTP_STATUS_RANGE: Final = range(100, 600)

F = TypeVar("F", bound=Callable[..., Any])

_CURRENT: ContextVar[SpanRecorder | None] = ContextVar("llmwatch_current_span", default=None)


class EventSink(Protocol):
    """Where finished spans go: in practice a ``Publisher``."""

    @property
    def service(self) -> str: ...

    @property
    def environment(self) -> str: ...

    def emit(self, event: Mapping[str, Any]) -> bool: ...


def current_span() -> SpanRecorder | None:
    """The innermost open span in this context, if any."""
    return _CURRENT.get()


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=str).decode()


def _http_status(exc: BaseException) -> int | None:
    """``exc.status_code`` or ``exc.response.status_code`` if it is a plausible HTTP status."""
    try:
        for candidate in (exc, getattr(exc, "response", None)):
            code = getattr(candidate, "status_code", None)
            if isinstance(code, int) and not isinstance(code, bool) and code in _HTTP_STATUS_RANGE:
                return code
    except Exception:  # a property of a foreign exception type that raises
        log.debug("llmwatch: could not read the HTTP status of %r", exc, exc_info=True)
    return None


class SpanRecorder:
    """Collects one span's fields while it is open. Methods only store values: they never fail."""

    def __init__(self, fields: dict[str, Any], parent: SpanRecorder | None) -> None:
        self.fields = fields
        self.fields.setdefault("event_id", new_event_id())
        self.fields.setdefault("span_id", new_span_id())
        if parent is not None:
            self.fields.setdefault("trace_id", parent.trace_id)
            self.fields.setdefault("parent_span_id", parent.span_id)
        else:
            self.fields.setdefault("trace_id", new_trace_id())
        metadata = fields.pop("metadata", None)
        self.metadata: dict[str, Any] = dict(metadata) if isinstance(metadata, Mapping) else {}
        self.start_time = datetime.now(UTC)
        self._start = time.perf_counter()
        self._first_token: float | None = None
        self._finished = False

    @property
    def trace_id(self) -> str:
        return str(self.fields["trace_id"])

    @property
    def span_id(self) -> str:
        return str(self.fields["span_id"])

    def first_token(self) -> None:
        """Mark the time to first token as now (the first call wins)."""
        if self._first_token is None:
            self._first_token = time.perf_counter()

    def set_usage(
        self,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_input_tokens: int | None = None,
        cache_creation_input_tokens: int | None = None,
        reasoning_output_tokens: int | None = None,
    ) -> None:
        """Token usage, OTel style: cached tokens count inside input, reasoning inside output."""
        self._set_given(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_input_tokens=cache_read_input_tokens,
            cache_creation_input_tokens=cache_creation_input_tokens,
            reasoning_output_tokens=reasoning_output_tokens,
        )

    def set_response(
        self,
        *,
        model: str | None = None,
        response_id: str | None = None,
        finish_reasons: Sequence[str] | None = None,
    ) -> None:
        self._set_given(
            response_model=model,
            response_id=response_id,
            finish_reasons=None if finish_reasons is None else list(finish_reasons),
        )

    def set_text(
        self, *, input: object = None, output: object = None, reference: object = None
    ) -> None:
        """Prompt, completion and the expected answer when known (for the evaluation path); dropped
        by the publisher unless it captures text. Non-strings (e.g. a list of chat messages) are
        stored as their JSON."""
        self._set_given(
            input_text=None if input is None else _as_text(input),
            output_text=None if output is None else _as_text(output),
            reference_text=None if reference is None else _as_text(reference),
        )

    def set_metadata(self, **entries: str | int | float | bool | None) -> None:
        self.metadata.update(entries)

    def set(self, **fields: Any) -> None:
        """Any event field by its wire name (see ``producers.events.LlmCallEvent``)."""
        metadata = fields.pop("metadata", None)
        if isinstance(metadata, Mapping):
            self.metadata.update(metadata)
        self.fields.update(fields)

    def _set_given(self, **fields: Any) -> None:
        self.fields.update({k: v for k, v in fields.items() if v is not None})

    def finish(self, sink: EventSink, exc: BaseException | None) -> None:
        """Build and emit the event; at most once per span."""
        if self._finished:
            return
        self._finished = True
        elapsed = time.perf_counter() - self._start
        event = {
            "service": sink.service,
            "environment": sink.environment,
            **self.fields,
            "start_time": self.start_time,
            "end_time": self.start_time + timedelta(seconds=elapsed),
        }
        if self._first_token is not None:
            event["time_to_first_token_ms"] = (self._first_token - self._start) * 1000.0
        if self.metadata:
            event["metadata"] = self.metadata
        if exc is not None:
            event["status"] = Status.ERROR.value
            event.setdefault("error_type", type(exc).__name__)
            status = _http_status(exc)
            # An error event inside a 200 stream (e.g. Anthropic's overloaded_error) is not an HTTP
            # error: keep only error statuses, so a 200 never sits on an error row.
            if status is not None and status >= 400:
                event.setdefault("http_status", status)
        sink.emit(event)


class TrackedSpan:
    """Context manager (sync and async) around one span; yields its :class:`SpanRecorder`."""

    def __init__(self, sink: EventSink, fields: dict[str, Any]) -> None:
        self._sink = sink
        self._fields = fields
        self._recorder: SpanRecorder | None = None
        self._token: Token[SpanRecorder | None] | None = None

    def __enter__(self) -> SpanRecorder:
        parent = _CURRENT.get()
        try:
            recorder = SpanRecorder(dict(self._fields), parent)
        except Exception:
            log.debug("llmwatch: could not open a span", exc_info=True)
            recorder = SpanRecorder({}, None)
        self._recorder = recorder
        self._token = _CURRENT.set(recorder)
        return recorder

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        recorder, token = self._recorder, self._token
        self._recorder = self._token = None
        if token is not None:
            with contextlib.suppress(ValueError):  # token made in another context
                _CURRENT.reset(token)
        if recorder is None:
            return
        try:
            recorder.finish(self._sink, exc)
        except Exception:
            log.debug("llmwatch: could not record a span", exc_info=True)

    async def __aenter__(self) -> SpanRecorder:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def span_fields(
    provider: str | None, model: str | None, operation: str, span_kind: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """The initial fields of a span from ``track()`` / ``observe()`` arguments."""
    base: dict[str, Any] = {"operation_name": operation, "span_kind": span_kind}
    if provider is not None:
        base["provider_name"] = provider
    if model is not None:
        base["request_model"] = model
    return {**base, **fields}


def observe(sink: EventSink, fields: dict[str, Any]) -> Callable[[F], F]:
    """Decorator factory: each call of the function (sync or async) is one span.

    The span's metadata names the function (:data:`FUNCTION_METADATA_KEY`). For a generator function
    the span covers only the call that creates the generator; use ``track()`` inside it instead.
    """

    def decorate(fn: F) -> F:
        given = fields.get("metadata")
        metadata = dict(given) if isinstance(given, Mapping) else {}
        metadata.setdefault(FUNCTION_METADATA_KEY, getattr(fn, "__qualname__", repr(fn)))
        call_fields = {**fields, "metadata": metadata}

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with TrackedSpan(sink, call_fields):
                    return await fn(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with TrackedSpan(sink, call_fields):
                return fn(*args, **kwargs)

        return cast(F, run)

    return decorate
