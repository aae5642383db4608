"""Simulated LLM calls made for real: the ``openai`` and ``anthropic`` clients against local fake APIs.

:class:`ClientTraffic` (a context manager) starts :class:`~producers.simulator.fake_openai.FakeOpenAI`
and :class:`~producers.simulator.fake_anthropic.FakeAnthropic` on 127.0.0.1, builds a real
``openai.OpenAI`` and ``anthropic.Anthropic`` client pointed at them (dummy keys, ``max_retries=0``,
proxies from the environment ignored) and instruments both with the given sink
(``producers.integrations.instrument``, what ``Publisher.instrument`` does). :meth:`ClientTraffic.call`
takes one simulated :class:`~producers.events.LlmCallEvent`, scripts the fake's reply from it and makes
the real call, so the event the sink receives is the one the integration measured:

- request: the simulated ``request_model``, ``max_tokens``, ``temperature``, ``top_p`` and ``stream``,
  the simulated prompt (``input_text``) as the user message;
- reply: the simulated response model and id, input / output / cache-read / cache-write / reasoning
  tokens (in each provider's own wire convention), finish reason, rate-limit headers, the simulated
  ``output_text`` as the answer; a stream (when ``event.stream``, or on ``stream_share`` of the other
  calls) waits ``min(event's TTFT, max_first_token_ms)`` before its first token, so runs stay quick;
- an error event with an HTTP status >= 400 (429, 500, 529...) becomes that status with the provider's
  error body; the SDK's exception is caught here (the instrumentation has recorded it).

The simulated call's identity is carried over onto the measured event: ``event_id``, ``service``,
``environment``, user / tenant / session, ``trace_id`` / ``span_id`` / ``parent_span_id``, agent and
prompt name / version / variant, ``text_capture`` (the fields an app sets through ``track()``), plus
metadata ``simulator.via`` = ``client``. Everything else (tokens, models, finish reasons, status, error
class, HTTP status, TTFT, start and end times, ``server_address`` = the fake's ``127.0.0.1:port``)
is what the real client and the instrumentation produced. The times are real, so such a span may end
a few milliseconds after the simulated trace's root.

Handled: LLM spans of provider ``openai`` or ``anthropic`` with a request model, except errors without
an HTTP status (simulated timeouts): :meth:`~ClientTraffic.call` returns False for those and makes no
call. Each handled call emits exactly one event to the sink.

Blocking: :meth:`~ClientTraffic.call` blocks for one local HTTP round trip plus the scripted first-token
delay; calls are serialised by a lock (one at a time, from any thread). ``openai`` and ``anthropic`` are
the optional ``clients`` extra and are imported only by :class:`ClientTraffic`, which raises
``ImportError`` naming ``llmwatch[clients]`` when either is missing.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Mapping
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Final

from producers.events import LlmCallEvent, SpanKind
from producers.sdk.tracking import EventSink
from producers.simulator import fake_anthropic, fake_openai

if TYPE_CHECKING:
    import anthropic
    import openai

__all__ = [
    "CLIENT_PROVIDERS",
    "DEFAULT_MAX_FIRST_TOKEN_MS",
    "VIA_METADATA_KEY",
    "ClientTraffic",
]

CLIENT_PROVIDERS: Final = ("openai", "anthropic")
DEFAULT_MAX_FIRST_TOKEN_MS: Final = 20.0
VIA_METADATA_KEY: Final = "simulator.via"
INSTALL_HINT: Final = "pip install 'llmwatch[clients]'"
REQUEST_TIMEOUT_S: Final = 30.0
DEFAULT_MAX_TOKENS: Final = 1_024
_PROMPT: Final = "Simulated prompt."
_ANSWER: Final = "Simulated answer from the local fake API."
# The simulated event's identity, copied onto the measured event (see the module docstring).
IDENTITY_FIELDS: Final = (
    "event_id",
    "service",
    "environment",
    "user_id",
    "tenant_id",
    "session_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "agent_name",
    "prompt_name",
    "prompt_version",
    "variant",
    "text_capture",
)


def _client_packages() -> tuple[ModuleType, ModuleType]:
    try:
        import anthropic
        import openai
    except ImportError as exc:
        raise ImportError(
            f"driving simulated traffic through real clients needs the openai and anthropic "
            f"packages ({exc.name!r} is missing): {INSTALL_HINT}"
        ) from exc
    return openai, anthropic


class _IdentitySink:
    """Forwards the instrumentation's events to ``sink`` with the current simulated identity on top."""

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink
        self.identity: dict[str, Any] | None = None
        self.emitted = 0
        self.accepted = 0

    @property
    def service(self) -> str:
        if self.identity is not None:
            return str(self.identity["service"])
        return self._sink.service

    @property
    def environment(self) -> str:
        if self.identity is not None:
            return str(self.identity["environment"])
        return self._sink.environment

    @property
    def config(self) -> Any:
        """The wrapped sink's config, so the instrumentation captures text exactly when it would."""
        return getattr(self._sink, "config", None)

    def emit(self, event: Mapping[str, Any]) -> bool:
        merged = dict(event)
        if self.identity is not None:
            metadata = dict(merged.get("metadata") or {})
            metadata.update(self.identity.get("metadata") or {})
            merged.update(self.identity)
            merged["metadata"] = metadata
        self.emitted += 1
        accepted = self._sink.emit(merged)
        if accepted:
            self.accepted += 1
        return accepted


def _identity(event: LlmCallEvent) -> dict[str, Any]:
    identity: dict[str, Any] = {
        name: getattr(event, name) for name in IDENTITY_FIELDS if getattr(event, name) is not None
    }
    if event.text_capture is not None:
        identity["text_capture"] = event.text_capture.value
    identity["metadata"] = {**event.metadata, VIA_METADATA_KEY: "client"}
    return identity


def _pieces(text: str, count: int = 4) -> list[str]:
    """``text`` cut into about ``count`` stream deltas (whole words; joined they give ``text``)."""
    words = text.split(" ")
    size = max(1, -(-len(words) // count))
    groups = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [group + " " for group in groups[:-1]] + groups[-1:]


def _openai_error_body(status: int) -> tuple[str, str | None]:
    if status == 429:
        return "requests", "rate_limit_exceeded"
    if status >= 500:
        return "server_error", None
    return "invalid_request_error", None


class ClientTraffic:
    """Makes simulated calls through real, instrumented clients; see the module docstring."""

    def __init__(
        self,
        sink: EventSink,
        *,
        max_first_token_ms: float = DEFAULT_MAX_FIRST_TOKEN_MS,
        stream_share: float = 0.0,
        seed: int = 0,
    ) -> None:
        if not max_first_token_ms >= 0.0:
            raise ValueError(f"max_first_token_ms must be >= 0, got {max_first_token_ms!r}")
        if not 0.0 <= stream_share <= 1.0:
            raise ValueError(f"stream_share must be within [0, 1], got {stream_share!r}")
        self._openai_pkg, self._anthropic_pkg = _client_packages()
        self._sink = _IdentitySink(sink)
        self._max_first_token_s = max_first_token_ms / 1000.0
        self._stream_share = stream_share
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._fake_openai: fake_openai.FakeOpenAI | None = None
        self._fake_anthropic: fake_anthropic.FakeAnthropic | None = None
        self._openai: openai.OpenAI | None = None
        self._anthropic: anthropic.Anthropic | None = None
        self.calls: Counter[str] = Counter()  # provider -> calls made

    @property
    def accepted(self) -> int:
        """Events the instrumentation emitted that the sink accepted."""
        return self._sink.accepted

    @property
    def emitted(self) -> int:
        """Events the instrumentation emitted (one per call)."""
        return self._sink.emitted

    def __enter__(self) -> ClientTraffic:
        from producers.integrations import instrument

        openai_pkg, anthropic_pkg = self._openai_pkg, self._anthropic_pkg
        self._fake_openai = fake_openai.FakeOpenAI()
        try:
            self._fake_anthropic = fake_anthropic.FakeAnthropic().__enter__()
            self._openai = openai_pkg.OpenAI(
                api_key="sk-local-fake",
                base_url=self._fake_openai.base_url,
                max_retries=0,
                timeout=REQUEST_TIMEOUT_S,
                http_client=openai_pkg.DefaultHttpxClient(trust_env=False),
            )
            self._anthropic = anthropic_pkg.Anthropic(
                api_key="sk-ant-local-fake",
                base_url=self._fake_anthropic.base_url,
                max_retries=0,
                timeout=REQUEST_TIMEOUT_S,
                http_client=anthropic_pkg.DefaultHttpxClient(trust_env=False),
            )
            # The fakes listen on 127.0.0.1, which the OpenAI integration would call "openai_compatible".
            instrument(self._sink, self._openai, provider="openai")
            instrument(self._sink, self._anthropic, provider="anthropic")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the clients and stop the fakes. Idempotent."""
        with self._lock:
            for client in (self._openai, self._anthropic):
                if client is not None:
                    client.close()
            self._openai = self._anthropic = None
            if self._fake_anthropic is not None:
                self._fake_anthropic.__exit__(None, None, None)
                self._fake_anthropic = None
            if self._fake_openai is not None:
                self._fake_openai.close()
                self._fake_openai = None

    @staticmethod
    def handles(event: LlmCallEvent) -> bool:
        """Whether :meth:`call` would make a real call for ``event``."""
        if event.span_kind != SpanKind.LLM or event.provider_name not in CLIENT_PROVIDERS:
            return False
        if event.request_model is None:
            return False
        return event.error_type is None or (event.http_status or 0) >= 400

    def call(self, event: LlmCallEvent) -> bool:
        """Make ``event``'s call through the real client; False (and no call) if not handled."""
        if not self.handles(event):
            return False
        with self._lock:
            if self._openai is None or self._anthropic is None:
                raise RuntimeError("ClientTraffic is not running: use it as a context manager")
            stream = event.stream or (
                self._stream_share > 0.0 and self._rng.random() < self._stream_share
            )
            self._sink.identity = _identity(event)
            try:
                if event.provider_name == "openai":
                    self._call_openai(event, stream)
                else:
                    self._call_anthropic(event, stream)
            finally:
                self._sink.identity = None
            self.calls[str(event.provider_name)] += 1
        return True

    def _first_token_delay(self, event: LlmCallEvent) -> float:
        ttft_s = (event.time_to_first_token_ms or 0.0) / 1000.0
        return min(ttft_s, self._max_first_token_s)

    def _call_openai(self, event: LlmCallEvent, stream: bool) -> None:
        fake, client = self._fake_openai, self._openai
        assert fake is not None and client is not None
        headers: dict[str, str] = {}
        if event.ratelimit_remaining_requests is not None:
            headers["x-ratelimit-remaining-requests"] = str(event.ratelimit_remaining_requests)
        if event.ratelimit_remaining_tokens is not None:
            headers["x-ratelimit-remaining-tokens"] = str(event.ratelimit_remaining_tokens)
        model = event.response_model or str(event.request_model)
        text = event.output_text or _ANSWER
        finish = event.finish_reasons[0] if event.finish_reasons else "stop"
        if event.http_status is not None and event.http_status >= 400:
            kind, code = _openai_error_body(event.http_status)
            fake.enqueue(
                fake_openai.error_reply(
                    event.http_status,
                    f"simulated {event.error_type or 'error'} for {event.request_model}",
                    type=kind,
                    code=code,
                    headers=headers,
                )
            )
        elif stream:
            chunks = fake_openai.chat_chunks(
                _pieces(text),
                id=event.response_id or "chatcmpl-simulated",
                model=model,
                finish_reason=finish,
                tool_call=finish == "tool_calls",
                usage=(
                    event.input_tokens,
                    event.output_tokens,
                    event.cache_read_input_tokens,
                    event.reasoning_output_tokens,
                ),
            )
            # Chunk 0 only carries the role; the first token is chunk 1.
            delays = {1: self._first_token_delay(event)}
            fake.enqueue(fake_openai.Reply(events=chunks, delays=delays, headers=headers))
        else:
            body = fake_openai.chat_completion(
                id=event.response_id or "chatcmpl-simulated",
                model=model,
                contents=[text],
                finish_reasons=[finish],
                prompt_tokens=event.input_tokens,
                completion_tokens=event.output_tokens,
                cached_tokens=event.cache_read_input_tokens,
                reasoning_tokens=event.reasoning_output_tokens,
            )
            fake.enqueue(fake_openai.Reply(body=body, headers=headers))
        options: dict[str, Any] = {}
        if event.temperature is not None:
            options["temperature"] = event.temperature
        if event.top_p is not None:
            options["top_p"] = event.top_p
        if event.max_tokens is not None:
            options["max_tokens"] = event.max_tokens
        messages: Any = [{"role": "user", "content": event.input_text or _PROMPT}]
        try:
            if stream:
                chunks_seen = client.chat.completions.create(
                    model=str(event.request_model),
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},
                    **options,
                )
                for _chunk in chunks_seen:
                    pass
            else:
                client.chat.completions.create(
                    model=str(event.request_model), messages=messages, **options
                )
        except self._openai_pkg.APIError:
            pass  # the instrumentation recorded it, as it would for an app

    def _call_anthropic(self, event: LlmCallEvent, stream: bool) -> None:
        fake, client = self._fake_anthropic, self._anthropic
        assert fake is not None and client is not None
        requests_left, tokens_left = (
            event.ratelimit_remaining_requests,
            event.ratelimit_remaining_tokens,
        )
        headers = (
            fake_anthropic.ratelimit_headers(requests_left, tokens_left)
            if requests_left is not None and tokens_left is not None
            else {}
        )
        model = event.response_model or str(event.request_model)
        text = event.output_text or _ANSWER
        finish = event.finish_reasons[0] if event.finish_reasons else "end_turn"
        # Anthropic's input_tokens exclude cache reads and writes; the event's include them.
        uncached = max(
            0,
            event.input_tokens - event.cache_read_input_tokens - event.cache_creation_input_tokens,
        )
        msg_id = event.response_id or "msg_simulated"
        if event.http_status is not None and event.http_status >= 400:
            reply = fake_anthropic.error(
                event.http_status,
                f"simulated {event.error_type or 'error'} for {event.request_model}",
                headers=headers,
            )
        elif stream:
            reply = fake_anthropic.stream(
                _pieces(text),
                msg_id=msg_id,
                model=model,
                input_tokens=uncached,
                cache_read=event.cache_read_input_tokens,
                cache_creation=event.cache_creation_input_tokens,
                delta_usage=[{"output_tokens": event.output_tokens}],
                stop_reason=finish,
                first_delta_delay_s=self._first_token_delay(event),
                headers=headers,
            )
        else:
            reply = fake_anthropic.message(
                text,
                msg_id=msg_id,
                model=model,
                input_tokens=uncached,
                output_tokens=event.output_tokens,
                cache_read=event.cache_read_input_tokens,
                cache_creation=event.cache_creation_input_tokens,
                stop_reason=finish,
                headers=headers,
            )
        fake.push(reply)
        # anthropic 2.x has no temperature / top_p arguments; the API still takes them in the body.
        sampling = {
            name: value
            for name, value in (("temperature", event.temperature), ("top_p", event.top_p))
            if value is not None
        }
        options: dict[str, Any] = {"extra_body": sampling} if sampling else {}
        messages: Any = [{"role": "user", "content": event.input_text or _PROMPT}]
        max_tokens = event.max_tokens or DEFAULT_MAX_TOKENS
        try:
            if stream:
                events_seen = client.messages.create(
                    model=str(event.request_model),
                    max_tokens=max_tokens,
                    messages=messages,
                    stream=True,
                    **options,
                )
                for _item in events_seen:
                    pass
            else:
                client.messages.create(
                    model=str(event.request_model),
                    max_tokens=max_tokens,
                    messages=messages,
                    **options,
                )
        except self._anthropic_pkg.APIError:
            pass  # the instrumentation recorded it, as it would for an app
