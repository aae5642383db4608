"""Record every call an ``openai.OpenAI`` / ``openai.AsyncOpenAI`` client makes: one event per call.

:func:`instrument_openai` patches ONE client object in place: it assigns a wrapped ``create`` on that
client's ``chat.completions``, ``responses`` and ``embeddings`` resources (other clients, and the
classes, are untouched), and on its ``copy`` / ``with_options`` so a client derived from it is
instrumented the same way. Normally it is reached through ``producers.integrations.instrument``,
which also makes a second call a no-op.

What one event holds (``producers.events.LlmCallEvent``):

- ``provider_name``: the ``provider`` option if given, else from the base URL's host:
  ``api.openai.com`` -> ``openai``, ``*.openai.azure.com`` -> ``azure.ai.openai``, anything else
  -> ``openai_compatible``; ``server_address`` is the host (``host:port`` with an explicit port).
  Both are read once, when instrumenting.
- ``operation_name`` ``chat``, ``responses`` or ``embeddings`` (span kind ``embedding`` for the last);
  ``stream``; the request's ``model``, ``temperature``, ``top_p``, ``seed`` and max tokens
  (``max_completion_tokens`` or ``max_tokens``; ``max_output_tokens`` for responses).
- From the response: model, id, usage (OTel style: cached tokens inside input tokens, reasoning tokens
  inside output tokens; cache writes as ``cache_creation_input_tokens``), finish reasons. The
  Responses API has no finish reason; it is derived from the response's status: ``completed`` ->
  ``stop`` (``tool_calls`` when the output calls a tool), ``incomplete`` -> the reason with
  ``max_output_tokens`` as ``length``, ``failed`` -> ``error`` (and the event's status is error, with
  the response's error code as ``error_type``).
- ``ratelimit_remaining_requests`` / ``ratelimit_remaining_tokens`` from the response headers, also
  on an HTTP error (read from ``exc.response.headers``).
- Streams: ``time_to_first_token_ms`` at the first chunk carrying content, a refusal or a tool-call
  delta (a role-only first chunk does not count); usage from the final usage chunk (chat) or the
  ``response.completed`` event (responses). A stream that carried no usage (chat streams report it
  only with ``stream_options={"include_usage": True}``) gets metadata ``llmwatch.usage`` =
  ``missing`` instead of silent zeros; so does any response without usage.
- Errors: status ``error``, ``error_type`` the exception's class name (``RateLimitError``,
  ``APIConnectionError``...), ``http_status``. The app gets the SDK's own exception object, unchanged.
- Text, only when the sink captures text (``calls.captures_text``): ``input_text`` is the messages
  (chat), the input (responses; with ``instructions`` the JSON ``{"instructions", "input"}``) or the
  embedding input, as JSON unless a plain string; ``output_text`` the content (choices joined by a
  newline), accumulated from the deltas for streams. Inputs that are not a list, tuple, dict or
  string (e.g. a generator) are not captured, so they are never consumed here.

``stream_usage=True``: a chat stream whose caller did not set ``stream_options.include_usage`` is
sent with ``stream_options={..., "include_usage": True}`` (other keys kept), so the event gets the
real usage. The API then appends ONE FINAL CHUNK WITH EMPTY ``choices`` (and ``usage`` set) that the
app's loop also sees: code that reads ``chunk.choices[0]`` unguarded fails on it. An explicit
``include_usage: False`` from the caller is respected.

How calls are made: the wrapper calls the resource's ``with_raw_response.create`` (bound before
patching, so it reaches the original ``create``) to read the headers, then ``.parse()`` to hand the
app exactly what ``create`` returns; a stream comes back wrapped in
``calls.SyncStreamProxy`` / ``calls.AsyncStreamProxy``, which behave like the SDK's ``Stream`` /
``AsyncStream`` (iteration, ``with``, ``close()``, attributes) and end the event exactly once however
the stream ends (see ``calls``). Calls made through ``with_raw_response`` / ``with_streaming_response``
by the app pass through unrecorded, as do the ``parse()`` / ``stream()`` helpers.

Guarantees: nothing here raises into the app: if preparing the event fails, the call goes to the
original ``create``; failures while reading the response are logged at debug level and the app gets
its result anyway. Per call the wrapper adds only attribute reads and one non-blocking ``emit``;
per stream chunk a few attribute reads (plus a list append when capturing text).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

import openai

from producers.integrations.calls import (
    AsyncStreamProxy,
    CallSpan,
    SyncStreamProxy,
    captures_text,
    check_provider,
)
from producers.integrations.openai_results import (
    ChatStream,
    ResponsesStream,
    StreamRecorder,
    record_chat,
    record_embeddings,
    record_headers,
    record_response,
)
from producers.sdk.tracking import EventSink

__all__ = ["instrument_openai", "provider_for_host"]

log = logging.getLogger("producers.integrations")

OPENAI_HOST: Final = "api.openai.com"
AZURE_HOST_SUFFIX: Final = ".openai.azure.com"
# The header the SDK's with_raw_response / with_streaming_response wrappers add to a call.
_RAW_RESPONSE_HEADER: Final = "x-stainless-raw-response"

# (operation, attribute path from the client, request key of the max-tokens parameters)
_ENDPOINTS: Final = (
    ("chat", ("chat", "completions"), ("max_completion_tokens", "max_tokens")),
    ("responses", ("responses",), ("max_output_tokens",)),
    ("embeddings", ("embeddings",), ()),
)
_TEXT_INPUTS: Final = (str, list, tuple, dict)


def provider_for_host(host: str) -> str:
    """The ``provider_name`` for a base URL's host (see the module docstring)."""
    host = host.lower().rstrip(".")
    if host == OPENAI_HOST:
        return "openai"
    if host.endswith(AZURE_HOST_SUFFIX):
        return "azure.ai.openai"
    return "openai_compatible"


def instrument_openai(
    sink: EventSink, client: Any, *, provider: str | None = None, stream_usage: bool = False
) -> None:
    """Patch ``client`` in place so each call emits one event to ``sink`` (see the module docstring).

    Raises ``TypeError`` for an object that is not an ``openai.OpenAI`` / ``openai.AsyncOpenAI`` and
    ``ValueError`` for a ``provider`` the event contract would reject; ``instrument()`` turns both into
    a warning and leaves the client as it was. Nothing is patched unless every resource can be."""
    if isinstance(client, openai.AsyncOpenAI):
        is_async = True
    elif isinstance(client, openai.OpenAI):
        is_async = False
    else:
        raise TypeError(
            f"instrument_openai needs an openai.OpenAI or openai.AsyncOpenAI, "
            f"got {type(client).__qualname__}"
        )
    check_provider(provider, "'vllm' or 'azure.ai.openai'")
    url = client.base_url
    host = str(url.host)
    base: dict[str, Any] = {
        "provider_name": provider or provider_for_host(host),
        "server_address": f"{host}:{url.port}" if url.port else host,
    }
    patches: list[tuple[Any, Callable[..., Any]]] = []
    for operation, path, max_keys in _ENDPOINTS:
        resource = client
        for name in path:
            resource = getattr(resource, name)
        # Bind the raw-response and streaming-response wrappers (cached per resource) to the original
        # create now: built after patching they would wrap the wrapper.
        raw_create = resource.with_raw_response.create
        _ = resource.with_streaming_response
        endpoint = _Endpoint(
            sink, operation, base, max_keys, raw_create, stream_usage and operation == "chat"
        )
        original = resource.create
        wrapper = (_async_wrapper if is_async else _sync_wrapper)(endpoint, original)
        patches.append((resource, wrapper))
    for resource, wrapper in patches:
        resource.create = wrapper
    _instrument_copies(sink, client, {"provider": provider, "stream_usage": stream_usage})


def _instrument_copies(sink: EventSink, client: Any, options: dict[str, Any]) -> None:
    """``client.copy()`` / ``client.with_options()`` return a client instrumented like this one."""
    from producers.integrations import instrument

    for name in ("copy", "with_options"):
        original = getattr(client, name, None)
        if original is None:
            continue

        def copying(*args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            return instrument(sink, _original(*args, **kwargs), **options)

        setattr(client, name, functools.wraps(original)(copying))


def _sync_wrapper(endpoint: _Endpoint, original: Callable[..., Any]) -> Callable[..., Any]:
    raw_create = endpoint.raw_create

    @functools.wraps(original)
    def create(*args: Any, **kwargs: Any) -> Any:
        call = endpoint.start(kwargs)
        if call is None:
            return original(*args, **kwargs)
        try:
            raw = raw_create(*args, **call.kwargs)
            result = raw.parse()
        except BaseException as exc:
            call.fail(exc)
            raise
        return call.finish(raw, result, is_async=False)

    return create


def _async_wrapper(endpoint: _Endpoint, original: Callable[..., Any]) -> Callable[..., Any]:
    raw_create = endpoint.raw_create

    @functools.wraps(original)
    async def create(*args: Any, **kwargs: Any) -> Any:
        call = endpoint.start(kwargs)
        if call is None:
            return await original(*args, **kwargs)
        try:
            raw = await raw_create(*args, **call.kwargs)
            result = raw.parse()
        except BaseException as exc:
            call.fail(exc)
            raise
        return call.finish(raw, result, is_async=True)

    return create


def _is_raw_call(kwargs: Mapping[str, Any]) -> bool:
    headers = kwargs.get("extra_headers")
    return isinstance(headers, Mapping) and any(
        isinstance(name, str) and name.lower() == _RAW_RESPONSE_HEADER for name in headers
    )


class _Endpoint:
    """One patched ``create``: what every call of it shares."""

    def __init__(
        self,
        sink: EventSink,
        operation: str,
        base: dict[str, Any],
        max_keys: tuple[str, ...],
        raw_create: Callable[..., Any],
        add_stream_usage: bool,
    ) -> None:
        self.sink = sink
        self.operation = operation
        self.base = {
            **base,
            "operation_name": operation,
            "span_kind": "embedding" if operation == "embeddings" else "llm",
        }
        self.max_keys = max_keys
        self.raw_create = raw_create
        self.add_stream_usage = add_stream_usage

    def start(self, kwargs: dict[str, Any]) -> _Call | None:
        """The call's span (started now) and the arguments to send; None: call the original."""
        try:
            if _is_raw_call(kwargs):
                return None
            stream = self.operation != "embeddings" and bool(kwargs.get("stream", False))
            send = kwargs
            if stream and self.add_stream_usage:
                given = kwargs.get("stream_options")
                options = dict(given) if isinstance(given, Mapping) else {}
                if "include_usage" not in options:
                    send = {**kwargs, "stream_options": {**options, "include_usage": True}}
            fields = dict(self.base)
            fields["stream"] = stream
            model = kwargs.get("model")
            if isinstance(model, str):
                fields["request_model"] = model
            for name in ("temperature", "top_p"):
                value = kwargs.get(name)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    fields[name] = float(value)
            seed = kwargs.get("seed")
            if isinstance(seed, int) and not isinstance(seed, bool):
                fields["seed"] = seed
            for name in self.max_keys:
                value = kwargs.get(name)
                if isinstance(value, int) and not isinstance(value, bool):
                    fields["max_tokens"] = value
                    break
            capture = captures_text(self.sink)
            span = CallSpan(self.sink, fields)
            if capture:
                text = self._input_text(kwargs)
                if text is not None:
                    span.recorder.set_text(input=text)
            return _Call(self.operation, span, send, stream, capture)
        except Exception:
            log.debug("llmwatch: could not start recording an openai call", exc_info=True)
            return None

    def _input_text(self, kwargs: Mapping[str, Any]) -> object:
        if self.operation == "chat":
            messages = kwargs.get("messages")
            return messages if isinstance(messages, _TEXT_INPUTS) else None
        given = kwargs.get("input")
        if not isinstance(given, _TEXT_INPUTS):
            return None
        instructions = kwargs.get("instructions")
        if self.operation == "responses" and isinstance(instructions, str):
            return {"instructions": instructions, "input": given}
        return given


class _Call:
    """One call in flight: its span, the arguments sent, and how its outcome is recorded."""

    __slots__ = ("capture", "kwargs", "operation", "span", "stream")

    def __init__(
        self,
        operation: str,
        span: CallSpan,
        kwargs: dict[str, Any],
        stream: bool,
        capture: bool,
    ) -> None:
        self.operation = operation
        self.span = span
        self.kwargs = kwargs
        self.stream = stream
        self.capture = capture

    def fail(self, exc: BaseException) -> None:
        """The request raised: record the headers it got, if any, and end the span as an error."""
        try:
            record_headers(self.span, getattr(getattr(exc, "response", None), "headers", None))
        except Exception:
            log.debug("llmwatch: could not read an openai error's headers", exc_info=True)
        self.span.end(exc)

    def finish(self, raw: Any, result: Any, *, is_async: bool) -> Any:
        """Record the response; return what the app gets (the result, or a stream proxy)."""
        span = self.span
        try:
            record_headers(span, raw.headers)
            if self.stream:
                state: StreamRecorder = (
                    ChatStream(span, self.capture)
                    if self.operation == "chat"
                    else ResponsesStream(span, self.capture)
                )
                proxy = AsyncStreamProxy if is_async else SyncStreamProxy
                return proxy(result, span, state.item, state.end)
            if self.operation == "chat":
                record_chat(span, result, self.capture)
            elif self.operation == "responses":
                record_response(span, result, self.capture)
            else:
                record_embeddings(span, result)
        except Exception:
            log.debug("llmwatch: could not record an openai response", exc_info=True)
        span.end()
        return result
