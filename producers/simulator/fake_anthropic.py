"""A local stand-in for the paid Anthropic Messages API (``POST /v1/messages``) on 127.0.0.1, for the
simulator, the demo and tests.

Nothing here talks to Anthropic: the simulator (``producers.simulator.clients``) drives real
``anthropic`` clients against it, and tests script it per call.

:class:`FakeAnthropic` is a stdlib ``ThreadingHTTPServer`` on ``127.0.0.1`` (port 0, so the OS picks a
free one) served from a daemon thread; use it as a context manager and point a client at
:attr:`FakeAnthropic.base_url`. Each request takes the next scripted reply (:meth:`FakeAnthropic.push`),
or :attr:`FakeAnthropic.default` when none is queued, and is recorded in :attr:`FakeAnthropic.requests`.

Replies use the API's real shapes:

- :func:`message`: a Messages JSON body with ``usage`` including ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens``;
- :func:`stream`: an SSE stream with the real event sequence (``message_start``,
  ``content_block_start``, ``ping``, ``content_block_delta`` ..., ``content_block_stop``,
  ``message_delta`` ..., ``message_stop``; each an ``event:`` line and a ``data:`` line), optionally
  sleeping before the first delta, and optionally dropping the connection after some deltas (the
  chunked body is cut off, so the client sees an incomplete message);
- :func:`error`: a status (429, 500, 529, ...) with Anthropic's error body
  ``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``.

Every reply carries the ``anthropic-ratelimit-*`` headers (:func:`ratelimit_headers`) unless a test
overrides them. Blocking: only the server thread sleeps (scripted delays); ``__exit__`` shuts the server
down and joins the thread (bounded by the longest scripted delay).
"""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final

__all__ = [
    "ERROR_TYPES",
    "MODEL",
    "FakeAnthropic",
    "Reply",
    "SeenRequest",
    "error",
    "message",
    "ratelimit_headers",
    "stream",
]

MODEL: Final = "claude-sonnet-4-5-20250929"
# Anthropic's error ``type`` for each status (https://docs.anthropic.com/en/api/errors).
ERROR_TYPES: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def ratelimit_headers(
    requests_remaining: int = 49, tokens_remaining: int = 39_000
) -> dict[str, str]:
    """The rate-limit headers Anthropic sends with every response (limits, remaining, resets)."""
    reset = "2030-01-01T00:00:00Z"  # a fixed instant; nothing here reads the clock
    return {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": str(requests_remaining),
        "anthropic-ratelimit-requests-reset": reset,
        "anthropic-ratelimit-tokens-limit": "40000",
        "anthropic-ratelimit-tokens-remaining": str(tokens_remaining),
        "anthropic-ratelimit-tokens-reset": reset,
        "anthropic-ratelimit-input-tokens-limit": "30000",
        "anthropic-ratelimit-input-tokens-remaining": str(max(0, tokens_remaining - 8_000)),
        "anthropic-ratelimit-input-tokens-reset": reset,
        "anthropic-ratelimit-output-tokens-limit": "10000",
        "anthropic-ratelimit-output-tokens-remaining": "9000",
        "anthropic-ratelimit-output-tokens-reset": reset,
    }


@dataclass
class Reply:
    """One scripted HTTP reply. Build it with :func:`message`, :func:`stream` or :func:`error`."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    # For SSE replies: the (event name, data) pairs, sent in order.
    events: list[tuple[str, dict[str, Any]]] | None = None
    first_delta_delay_s: float = 0.0
    # Cut the connection after this many content_block_delta events (SSE replies only).
    drop_after_deltas: int | None = None


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)


def _usage(
    input_tokens: int, output_tokens: int, cache_read: int, cache_creation: int
) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache_creation,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message(
    text: str = "Paris is the capital of France.",
    *,
    msg_id: str = "msg_01XFDUDYJgAACzvnptvVoYEL",
    model: str = MODEL,
    input_tokens: int = 25,
    output_tokens: int = 9,
    cache_read: int = 0,
    cache_creation: int = 0,
    stop_reason: str = "end_turn",
    headers: dict[str, str] | None = None,
) -> Reply:
    """A non-streaming Messages response (HTTP 200, JSON)."""
    body = {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": _usage(input_tokens, output_tokens, cache_read, cache_creation),
    }
    return Reply(
        status=200,
        headers={
            "content-type": "application/json",
            "request-id": "req_011CT8kYxnHBJmTxdWQBbVYX",
            **(ratelimit_headers() if headers is None else headers),
        },
        body=json.dumps(body).encode(),
    )


def stream(
    deltas: list[str] | None = None,
    *,
    msg_id: str = "msg_01StreamStreamStream1",
    model: str = MODEL,
    input_tokens: int = 25,
    start_output_tokens: int = 1,
    cache_read: int = 0,
    cache_creation: int = 0,
    delta_usage: list[dict[str, int]] | None = None,
    stop_reason: str = "end_turn",
    first_delta_delay_s: float = 0.0,
    drop_after_deltas: int | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """An SSE Messages stream (HTTP 200, ``text/event-stream``).

    ``message_start`` carries the input usage and ``start_output_tokens`` (the API sends 1 there);
    each dict of ``delta_usage`` becomes one ``message_delta`` event's ``usage`` (the API sends one,
    with cumulative counts); by default a single one with ``output_tokens`` = number of deltas + 1.
    The last ``message_delta`` carries ``stop_reason``."""
    texts = ["Hello", ", ", "world", "!"] if deltas is None else deltas
    usages = [{"output_tokens": len(texts) + 1}] if delta_usage is None else delta_usage
    start = {
        "type": "message_start",
        "message": {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(input_tokens, start_output_tokens, cache_read, cache_creation),
        },
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", start),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    events += [
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            },
        )
        for text in texts
    ]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    for n, usage in enumerate(usages):
        last = n == len(usages) - 1
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason if last else None, "stop_sequence": None},
                    "usage": usage,
                },
            )
        )
    events.append(("message_stop", {"type": "message_stop"}))
    return Reply(
        status=200,
        headers={
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "request-id": "req_011CT8kZ4xoDu4UEtqjjnVJ1",
            **(ratelimit_headers() if headers is None else headers),
        },
        events=events,
        first_delta_delay_s=first_delta_delay_s,
        drop_after_deltas=drop_after_deltas,
    )


def error(
    status: int,
    error_message: str | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> Reply:
    """An API error with Anthropic's body shape; the error ``type`` follows the status."""
    kind = ERROR_TYPES.get(status, "api_error")
    body = {
        "type": "error",
        "error": {"type": kind, "message": error_message or f"{kind} from the fake server"},
        "request_id": "req_011CT8kaErrorErrorError",
    }
    extra: dict[str, str] = {}
    if status == 429:
        extra["retry-after"] = "7"
    return Reply(
        status=status,
        headers={
            "content-type": "application/json",
            "request-id": "req_011CT8kaErrorErrorError",
            **extra,
            **(ratelimit_headers(0, 0) if headers is None else headers),
        },
        body=json.dumps(body).encode(),
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK would add ~40 ms to many replies.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_unparsed": raw.decode("utf-8", "replace")}
        fake = self.server.fake
        fake._record(SeenRequest("POST", self.path, dict(self.headers.items()), body))
        reply = fake._next_reply()
        if reply.events is None:
            self._send_plain(reply)
        else:
            self._send_events(reply)

    def _send_plain(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _send_events(self, reply: Reply) -> None:
        assert reply.events is not None
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        deltas = 0
        for name, data in reply.events:
            if name == "content_block_delta":
                if deltas == 0 and reply.first_delta_delay_s > 0:
                    time.sleep(reply.first_delta_delay_s)
                if reply.drop_after_deltas is not None and deltas >= reply.drop_after_deltas:
                    self._drop()
                    return
                deltas += 1
            self._chunk(b"event: %s\ndata: %s\n\n" % (name.encode(), json.dumps(data).encode()))
        self.wfile.write(b"0\r\n\r\n")

    def _drop(self) -> None:
        """End the connection mid-body: no terminating chunk, so the client sees a cut-off stream."""
        self.wfile.write(b'40\r\nevent: content_block_delta\ndata: {"type": "content_blo')
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeAnthropic

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that closes a stream early breaks the pipe: expected here, so not printed."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class FakeAnthropic:
    """The scripted fake API; see the module docstring."""

    def __init__(self) -> None:
        self.default: Reply = message()
        self.requests: list[SeenRequest] = []
        self._replies: collections.deque[Reply] = collections.deque()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeAnthropic is not running: use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def address(self) -> str:
        """``host:port``, as an instrumentation reports ``server_address``."""
        return self.base_url.removeprefix("http://")

    def push(self, *replies: Reply) -> FakeAnthropic:
        """Queue replies for the next requests, in order."""
        with self._lock:
            self._replies.extend(replies)
        return self

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._replies.popleft() if self._replies else self.default

    def _record(self, request: SeenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def __enter__(self) -> FakeAnthropic:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, thread = self._server, self._thread
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5)
