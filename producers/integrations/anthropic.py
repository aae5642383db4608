"""Instrument one ``anthropic.Anthropic`` / ``anthropic.AsyncAnthropic`` client: one event per Messages call.

:func:`instrument_anthropic` replaces ``create`` and ``stream`` on that client's ``messages`` resource
object (instance attributes; the class and every other client are untouched). What is recorded, per call:

- ``provider_name`` (the ``provider`` option, else ``anthropic``), ``server_address`` (the client's
  ``base_url`` host, with the port when it is not the scheme's default), ``operation_name`` ``chat``,
  ``request_model``, ``max_tokens``, ``temperature`` / ``top_p`` (from the arguments or ``extra_body``),
  ``stream``;
- ``response_model``, ``response_id``, ``finish_reasons`` (the ``stop_reason``);
- usage, OTel style: Anthropic's ``input_tokens`` excludes cache reads and cache writes, so the event's
  ``input_tokens`` is ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``, with the
  two cache counts also in their own fields. A stream's usage comes from ``message_start`` and
  ``message_delta``. The counts on ``message_delta`` are *cumulative* totals, so each one replaces the
  value before it (never added); a count a ``message_delta`` omits keeps its ``message_start`` value.
  (Sources: ``anthropic.types.MessageDeltaUsage``, whose fields are documented as "the cumulative
  number of ... tokens", and the SDK's own accumulator ``anthropic.lib.streaming._messages.
  accumulate_event``: "Usage counts on a message_delta are cumulative totals, so they overwrite rather
  than add".) A call that reported no usage gets metadata ``llmwatch.usage`` = ``missing``;
- ``time_to_first_token_ms``: the first ``content_block_delta`` of a stream;
- ``ratelimit_remaining_requests`` / ``ratelimit_remaining_tokens`` from the
  ``anthropic-ratelimit-requests-remaining`` / ``anthropic-ratelimit-tokens-remaining`` headers, of the
  response or of an ``APIStatusError``'s response;
- errors: ``status`` ``error``, ``error_type`` (the exception's class, e.g. ``RateLimitError``,
  ``OverloadedError``), ``http_status`` (429, 529, ...);
- text, only when the sink captures text (``captures_text``): ``input_text`` is the JSON of the
  ``messages`` list with ``system`` first as a ``{"role": "system"}`` entry (``messages`` given as a
  one-shot iterator is never read), ``output_text`` the text blocks (or text deltas) joined.

What the app gets: a plain call returns the SDK's own ``Message`` (the call goes through the resource's
``with_raw_response.create`` and ``.parse()``, which is what ``create`` itself returns); an error is the
SDK's own exception object, re-raised unchanged. ``create(stream=True)`` returns a ``SyncStreamProxy``
/ ``AsyncStreamProxy`` around the SDK's ``Stream`` (iteration, ``with``, ``close()`` and attributes pass
through; ``isinstance(s, anthropic.Stream)`` is false). ``messages.stream(...)`` returns a wrapper of
the SDK's stream manager whose ``with`` yields the SDK's own ``MessageStream``: its raw event stream is
wrapped, so iterating it, ``text_stream``, ``until_done()`` and ``get_final_message()`` are all seen.

When events are emitted: exactly one per call, when the call ends: a plain call when it returns or
raises; a stream when it is exhausted (``ok``), raises (``error``, e.g. a dropped connection), is closed
or left early (``ok``, metadata ``llmwatch.stream_end`` = ``closed``), or is garbage-collected unread
(``abandoned``); leaving a ``with`` block because of an exception records that exception. A
``messages.stream(...)`` manager that is never entered sends no request and emits nothing.

Not instrumented: ``with_raw_response`` / ``with_streaming_response`` calls, ``messages.parse``,
``count_tokens``, batches, and the new clients ``client.with_options(...)`` / ``copy()`` return.

Guarantees: nothing here raises into the app; the instrumentation's own failures are logged at debug
level and the call proceeds unrecorded. Nothing blocks: per stream item the callback reads a few
attributes; emitting is ``Publisher.emit`` (never blocks). A bad ``provider`` option or an object that is
not an Anthropic client raises from :func:`instrument_anthropic` (``producers.integrations.instrument``
turns that into a warning and leaves the client as it was).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final

from producers.integrations.anthropic_results import (
    StreamCollector,
    record_failure,
    record_headers,
    record_message,
)
from producers.integrations.calls import (
    STREAM_END_KEY,
    AsyncStreamProxy,
    CallSpan,
    SyncStreamProxy,
    captures_text,
    check_provider,
)
from producers.sdk.tracking import EventSink

__all__ = ["DEFAULT_PROVIDER", "instrument_anthropic"]

log = logging.getLogger("producers.integrations")

DEFAULT_PROVIDER: Final = "anthropic"
# Set on our wrappers, so instrumenting the same resource twice wraps it once.
_WRAPPED: Final = "_llmwatch_wrapped"
# The header the SDK's with_raw_response / with_streaming_response wrappers add to a call.
_RAW_RESPONSE_HEADER: Final = "X-Stainless-Raw-Response"


def instrument_anthropic(sink: EventSink, client: Any, *, provider: str | None = None) -> None:
    """Patch ``client.messages.create`` and ``client.messages.stream`` in place (see the module doc).

    Raises ``ValueError`` for a ``provider`` that is not a lower-case identifier and ``TypeError`` for
    an object whose ``messages`` is not an Anthropic ``Messages`` / ``AsyncMessages`` resource."""
    check_provider(provider, "'anthropic' or 'aws.bedrock'")
    from anthropic.resources.messages import AsyncMessages, Messages

    messages = getattr(client, "messages", None)
    if not isinstance(messages, (Messages, AsyncMessages)):
        raise TypeError(
            "instrument_anthropic needs an anthropic.Anthropic or anthropic.AsyncAnthropic client, "
            f"got {type(client).__module__}.{type(client).__qualname__} whose messages is "
            f"{type(messages).__qualname__}"
        )
    if getattr(messages.create, _WRAPPED, False):
        return
    # These cached properties wrap ``messages.create`` when first read: read them now, so that they
    # wrap the SDK's method and not ours (our create returns parsed objects, not raw responses).
    raw_create = messages.with_raw_response.create
    _ = messages.with_streaming_response
    call = _Call(sink, client, provider or DEFAULT_PROVIDER)
    if isinstance(messages, AsyncMessages):
        create, stream = (
            _async_create(call, messages.create, raw_create),
            _async_stream(call, messages.stream),
        )
    else:
        create, stream = (
            _sync_create(call, messages.create, raw_create),
            _sync_stream(call, messages.stream),
        )
    setattr(create, _WRAPPED, True)
    setattr(stream, _WRAPPED, True)
    messages.create = create  # type: ignore[method-assign]
    messages.stream = stream  # type: ignore[method-assign]


class _Call:
    """What every call of one instrumented client shares: the sink and the fixed request fields."""

    def __init__(self, sink: EventSink, client: Any, provider: str) -> None:
        self.sink = sink
        self.client = client
        self.provider = provider
        self._url: object = None
        self._address: str | None = None

    def server_address(self) -> str | None:
        url = getattr(self.client, "base_url", None)
        if url is not self._url:  # computed again only when the client's base_url changes
            host = getattr(url, "host", None)
            port = getattr(url, "port", None)
            self._address = (f"{host}:{port}" if port else str(host)) if host else None
            self._url = url
        return self._address

    def fields(self, kwargs: Mapping[str, Any], stream: bool) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "provider_name": self.provider,
            "operation_name": "chat",
            "stream": stream,
        }
        address = self.server_address()
        if address is not None:
            fields["server_address"] = address
        model = kwargs.get("model")
        if isinstance(model, str):
            fields["request_model"] = model
        max_tokens = kwargs.get("max_tokens")
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
            fields["max_tokens"] = max_tokens
        extra = kwargs.get("extra_body")
        for name in ("temperature", "top_p"):
            value = kwargs.get(name)
            if value is None and isinstance(extra, Mapping):
                value = extra.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                fields[name] = float(value)
        return fields

    def open(self, kwargs: Mapping[str, Any], stream: bool) -> tuple[CallSpan, bool] | None:
        """A span for one call and whether to collect text; ``None`` if that failed (logged)."""
        try:
            capture = captures_text(self.sink)
            span = CallSpan(self.sink, self.fields(kwargs, stream))
            if capture:
                text = _input_text(kwargs)
                if text is not None:
                    span.recorder.set_text(input=text)
            return span, capture
        except Exception:
            log.debug("llmwatch: could not open a span for an anthropic call", exc_info=True)
            return None


def _wants_raw(kwargs: Mapping[str, Any]) -> bool:
    """Whether an SDK raw/streaming-response wrapper is calling us (then we stay out of the way)."""
    headers = kwargs.get("extra_headers")
    return isinstance(headers, Mapping) and _RAW_RESPONSE_HEADER in headers


def _input_text(kwargs: Mapping[str, Any]) -> list[Any] | None:
    messages = kwargs.get("messages")
    if not isinstance(messages, (list, tuple)):
        return None  # absent, or an iterator the SDK must read, not us
    items: list[Any] = []
    system = kwargs.get("system")
    if isinstance(system, str):
        items.append({"role": "system", "content": system})
    elif isinstance(system, (list, tuple)):
        items.append({"role": "system", "content": list(system)})
    items.extend(messages)
    return items


def _hook_raw_stream(
    span: CallSpan,
    message_stream: Any,
    collector: StreamCollector,
    proxy_cls: type[SyncStreamProxy] | type[AsyncStreamProxy],
) -> bool:
    """Put a proxy around a ``MessageStream``'s raw event stream, which every way of reading it
    (iteration, ``text_stream``, ``until_done()``, ``get_final_message()``) pulls from; False if it
    has none (then the span ends when the ``with`` block is left)."""
    raw = getattr(message_stream, "_raw_stream", None)
    if raw is None:
        return False
    message_stream._raw_stream = proxy_cls(raw, span, collector.item, collector.end)
    return True


def _sync_create(call: _Call, original: Any, raw_create: Any) -> Callable[..., Any]:
    @functools.wraps(original)
    def create(*args: Any, **kwargs: Any) -> Any:
        if _wants_raw(kwargs):
            return original(*args, **kwargs)
        stream = kwargs.get("stream") is True
        opened = call.open(kwargs, stream)
        if opened is None:
            return original(*args, **kwargs)
        span, capture = opened
        if stream:
            try:
                result = original(*args, **kwargs)
            except BaseException as exc:
                record_failure(span, exc)
                raise
            try:
                record_headers(span, result.response.headers)
                collector = StreamCollector(span, capture)
                return SyncStreamProxy(result, span, collector.item, collector.end)
            except Exception:
                log.debug("llmwatch: could not wrap an anthropic stream", exc_info=True)
                span.end(None)
                return result
        try:
            raw = raw_create(*args, **kwargs)
            record_headers(span, raw.headers)
            message = raw.parse()
        except BaseException as exc:
            record_failure(span, exc)
            raise
        record_message(span, message, capture)
        span.end(None)
        return message

    return create


def _async_create(call: _Call, original: Any, raw_create: Any) -> Callable[..., Any]:
    @functools.wraps(original)
    async def create(*args: Any, **kwargs: Any) -> Any:
        if _wants_raw(kwargs):
            return await original(*args, **kwargs)
        stream = kwargs.get("stream") is True
        opened = call.open(kwargs, stream)
        if opened is None:
            return await original(*args, **kwargs)
        span, capture = opened
        if stream:
            try:
                result = await original(*args, **kwargs)
            except BaseException as exc:
                record_failure(span, exc)
                raise
            try:
                record_headers(span, result.response.headers)
                collector = StreamCollector(span, capture)
                return AsyncStreamProxy(result, span, collector.item, collector.end)
            except Exception:
                log.debug("llmwatch: could not wrap an anthropic stream", exc_info=True)
                span.end(None)
                return result
        try:
            raw = await raw_create(*args, **kwargs)
            record_headers(span, raw.headers)
            message = await raw.parse()
        except BaseException as exc:
            record_failure(span, exc)
            raise
        record_message(span, message, capture)
        span.end(None)
        return message

    return create


class _ManagerBase:
    """State shared by the sync and async stream-manager wrappers."""

    _llmwatch_proxy: type[SyncStreamProxy] | type[AsyncStreamProxy] = SyncStreamProxy

    def __init__(self, inner: Any, call: _Call, kwargs: dict[str, Any]) -> None:
        self._llmwatch_inner = inner
        self._llmwatch_call = call
        self._llmwatch_kwargs = kwargs
        self._llmwatch_span: CallSpan | None = None
        self._llmwatch_collector: StreamCollector | None = None

    def _entered(self, span: CallSpan, capture: bool, message_stream: Any) -> None:
        collector = StreamCollector(span, capture)
        self._llmwatch_span, self._llmwatch_collector = span, collector
        try:
            record_headers(span, message_stream.response.headers)
            if not _hook_raw_stream(span, message_stream, collector, self._llmwatch_proxy):
                log.debug("llmwatch: an anthropic MessageStream without _raw_stream; usage unseen")
        except Exception:
            log.debug("llmwatch: could not wrap an anthropic MessageStream", exc_info=True)

    def _leaving(self, exc: BaseException | None) -> None:
        """Before the SDK closes the stream: leaving ``with`` on an exception records it."""
        span, collector = self._llmwatch_span, self._llmwatch_collector
        if span is None or collector is None or exc is None or span.ended:
            return
        try:
            collector.end()
        except Exception:
            log.debug("llmwatch: could not read an anthropic stream's end", exc_info=True)
        span.end(exc)

    def _left(self) -> None:
        """After the SDK closed the stream: normally the proxy ended the span; if not, end it."""
        span, collector = self._llmwatch_span, self._llmwatch_collector
        if span is None or collector is None or span.ended:
            return
        try:
            collector.end()
            span.add_metadata(**{STREAM_END_KEY: "closed"})
        except Exception:
            log.debug("llmwatch: could not read an anthropic stream's end", exc_info=True)
        span.end(None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_llmwatch_"):
            raise AttributeError(name)
        return getattr(self._llmwatch_inner, name)


class _SyncStreamManager(_ManagerBase):
    """``messages.stream(...)``: the SDK's manager, with one span from ``__enter__`` on."""

    def __enter__(self) -> Any:
        opened = self._llmwatch_call.open(self._llmwatch_kwargs, True)
        if opened is None:
            return self._llmwatch_inner.__enter__()
        span, capture = opened
        try:
            message_stream = self._llmwatch_inner.__enter__()
        except BaseException as exc:
            record_failure(span, exc)
            raise
        self._entered(span, capture, message_stream)
        return message_stream

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        self._leaving(exc)
        try:
            return self._llmwatch_inner.__exit__(exc_type, exc, tb)
        finally:
            self._left()


class _AsyncStreamManager(_ManagerBase):
    """``messages.stream(...)`` of an async client (``async with``)."""

    _llmwatch_proxy = AsyncStreamProxy

    async def __aenter__(self) -> Any:
        opened = self._llmwatch_call.open(self._llmwatch_kwargs, True)
        if opened is None:
            return await self._llmwatch_inner.__aenter__()
        span, capture = opened
        try:
            message_stream = await self._llmwatch_inner.__aenter__()
        except BaseException as exc:
            record_failure(span, exc)
            raise
        self._entered(span, capture, message_stream)
        return message_stream

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        self._leaving(exc)
        try:
            return await self._llmwatch_inner.__aexit__(exc_type, exc, tb)
        finally:
            self._left()


def _sync_stream(call: _Call, original: Any) -> Callable[..., Any]:
    @functools.wraps(original)
    def stream(*args: Any, **kwargs: Any) -> Any:
        manager = original(*args, **kwargs)
        return _SyncStreamManager(manager, call, kwargs)

    return stream


def _async_stream(call: _Call, original: Any) -> Callable[..., Any]:
    @functools.wraps(original)
    def stream(*args: Any, **kwargs: Any) -> Any:
        manager = original(*args, **kwargs)
        return _AsyncStreamManager(manager, call, kwargs)

    return stream
