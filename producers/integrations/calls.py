"""What every client instrumentation shares: one span per API call, stream proxies, rate-limit headers.

:class:`CallSpan` is one provider call: it opens a span (joining the trace of the caller's current
``track()`` span, if any), collects fields as the call and its stream progress, and emits exactly one
event through the sink when it ends. :class:`SyncStreamProxy` and :class:`AsyncStreamProxy` stand in for
a provider's stream object: they pass every item, attribute and context-manager call through to it and
end the span exactly once, whichever way the stream ends:

- exhausted: ``ok``;
- the item loop raised (a dropped connection, a provider error event): ``error`` with the exception's
  class and HTTP status, and the exception is re-raised unchanged;
- closed early (``close()``, leaving ``with``, ``break`` followed by garbage collection): ``ok`` with
  metadata ``llmwatch.stream_end`` = ``closed`` or ``abandoned``, and the usage seen so far. An exception
  the app raises inside the stream's ``with`` block is the app's, not the call's: ``closed``, not error.

The proxies are not instances of the provider's stream classes (``isinstance(s, openai.Stream)`` is
False); every attribute and method passes through.

Guarantees: nothing here raises into the app; the instrumentation's own errors are logged at debug level
and swallowed. Emitting never blocks (``Publisher.emit``). Item callbacks run on the app's thread, per
item: they only read attributes and store numbers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Final

from producers.events import is_identifier
from producers.sdk.tracking import EventSink, SpanRecorder, current_span

__all__ = [
    "STREAM_END_KEY",
    "USAGE_KEY",
    "AsyncStreamProxy",
    "CallSpan",
    "SyncStreamProxy",
    "captures_text",
    "check_provider",
    "header_int",
]

log = logging.getLogger("producers.integrations")

# Metadata keys the instrumentations set.
STREAM_END_KEY: Final = (
    "llmwatch.stream_end"  # "closed" or "abandoned" when a stream did not finish
)
USAGE_KEY: Final = "llmwatch.usage"  # "missing" when the provider reported no token usage


def check_provider(provider: str | None, example: str) -> None:
    """Raise ValueError naming ``provider`` unless it is None or a valid event provider name."""
    if provider is not None and not is_identifier(provider):
        raise ValueError(
            f"provider must be a lower-case identifier like {example}, got {provider!r}"
        )


def captures_text(sink: EventSink) -> bool:
    """Whether the sink may send text (a ``Publisher`` whose ``text_capture`` is not ``off``).

    Instrumentations collect prompt and output text only then, so an app that captures no text pays
    nothing for it (a call may still set its own ``text_capture`` through ``track()``)."""
    config = getattr(sink, "config", None)
    return str(getattr(config, "text_capture", "off")) != "off"


def header_int(headers: Mapping[str, str] | None, name: str) -> int | None:
    """A non-negative integer header (``None`` when absent or not an integer)."""
    if headers is None:
        return None
    try:
        raw = headers.get(name)
        if raw is None:
            return None
        value = int(str(raw).strip())
    except (ValueError, TypeError, AttributeError):
        return None
    return value if value >= 0 else None


class CallSpan:
    """One provider call as a span; every method only stores values and never raises."""

    def __init__(self, sink: EventSink, fields: dict[str, Any]) -> None:
        self._sink = sink
        self.recorder = SpanRecorder(fields, current_span())
        self._ended = False

    @property
    def ended(self) -> bool:
        return self._ended

    def set(self, **fields: Any) -> None:
        """Event fields by wire name; ``None`` values are ignored."""
        self.recorder.fields.update({k: v for k, v in fields.items() if v is not None})

    def add_metadata(self, **entries: str | int | float | bool) -> None:
        self.recorder.metadata.update(entries)

    def first_token(self) -> None:
        self.recorder.first_token()

    def end(self, exc: BaseException | None = None) -> None:
        """Emit the event (at most once per call)."""
        if self._ended:
            return
        self._ended = True
        try:
            self.recorder.finish(self._sink, exc)
        except Exception:
            log.debug("llmwatch: could not record a provider call", exc_info=True)


def _guarded(name: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:
        log.debug("llmwatch: %s failed", name, exc_info=True)


class _StreamState:
    """What the two proxies share: the span, the per-item callback and the end bookkeeping."""

    def __init__(
        self,
        span: CallSpan,
        on_item: Callable[[Any], None],
        on_end: Callable[[], None] | None,
    ) -> None:
        self.span = span
        self.on_item = on_item
        self.on_end = on_end

    def item(self, item: Any) -> None:
        try:
            self.on_item(item)
        except Exception:
            log.debug("llmwatch: stream item failed", exc_info=True)

    def end(self, exc: BaseException | None, how: str | None) -> None:
        if self.span.ended:
            return
        if self.on_end is not None:
            _guarded("stream end", self.on_end)
        if how is not None:
            self.span.add_metadata(**{STREAM_END_KEY: how})
        self.span.end(exc)


class SyncStreamProxy:
    """A provider's sync stream with the span ended exactly once (see the module docstring)."""

    def __init__(
        self,
        inner: Any,
        span: CallSpan,
        on_item: Callable[[Any], None],
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self._llmwatch_inner = inner
        self._llmwatch_state = _StreamState(span, on_item, on_end)
        self._llmwatch_iter: Iterator[Any] | None = None

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        state = self._llmwatch_state
        try:
            if self._llmwatch_iter is None:
                self._llmwatch_iter = iter(self._llmwatch_inner)
            item = next(self._llmwatch_iter)
        except StopIteration:
            state.end(None, None)
            raise
        except BaseException as exc:
            state.end(exc, None)
            raise
        state.item(item)
        return item

    def close(self) -> None:
        try:
            closer = getattr(self._llmwatch_inner, "close", None)
            if closer is not None:
                closer()
        finally:
            self._llmwatch_state.end(None, "closed")

    def __enter__(self) -> SyncStreamProxy:
        enter = getattr(self._llmwatch_inner, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            leave = getattr(self._llmwatch_inner, "__exit__", None)
            if leave is not None:
                leave(exc_type, exc, tb)
        finally:
            # A stream error already ended the span in __next__; anything raised here is the app's.
            self._llmwatch_state.end(None, "closed")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llmwatch_inner, name)

    def __del__(self) -> None:
        state = getattr(self, "_llmwatch_state", None)
        if state is not None:
            state.end(None, "abandoned")


class AsyncStreamProxy:
    """A provider's async stream with the span ended exactly once (see the module docstring)."""

    def __init__(
        self,
        inner: Any,
        span: CallSpan,
        on_item: Callable[[Any], None],
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self._llmwatch_inner = inner
        self._llmwatch_state = _StreamState(span, on_item, on_end)
        self._llmwatch_iter: AsyncIterator[Any] | None = None

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        state = self._llmwatch_state
        try:
            if self._llmwatch_iter is None:
                self._llmwatch_iter = aiter(self._llmwatch_inner)
            item = await anext(self._llmwatch_iter)
        except StopAsyncIteration:
            state.end(None, None)
            raise
        except BaseException as exc:
            state.end(exc, None)
            raise
        state.item(item)
        return item

    async def close(self) -> None:
        try:
            closer = getattr(self._llmwatch_inner, "close", None)
            if closer is not None:
                result = closer()
                if hasattr(result, "__await__"):
                    await result
        finally:
            self._llmwatch_state.end(None, "closed")

    async def __aenter__(self) -> AsyncStreamProxy:
        enter = getattr(self._llmwatch_inner, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            leave = getattr(self._llmwatch_inner, "__aexit__", None)
            if leave is not None:
                await leave(exc_type, exc, tb)
        finally:
            # A stream error already ended the span in __anext__; anything raised here is the app's.
            self._llmwatch_state.end(None, "closed")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llmwatch_inner, name)

    def __del__(self) -> None:
        state = getattr(self, "_llmwatch_state", None)
        if state is not None:
            state.end(None, "abandoned")
