"""A local stand-in for the paid OpenAI HTTP API on 127.0.0.1, for the simulator, the demo and tests.

Nothing here talks to OpenAI: the simulator (``producers.simulator.clients``) drives real ``openai``
clients against it, and tests and benchmarks of the client instrumentation script it per call.

:class:`FakeOpenAI` is a stdlib ``ThreadingHTTPServer`` on ``127.0.0.1`` (port 0: the OS picks a free
one) served from a daemon thread; use it as a context manager and point a real ``openai`` client at
:attr:`FakeOpenAI.base_url` (with ``max_retries=0``). Each request takes the next scripted
:class:`Reply` (:meth:`FakeOpenAI.enqueue`), or the path's responder (:meth:`FakeOpenAI.set_responder`,
a function of the request's JSON body), or the path's default (:meth:`FakeOpenAI.set_default`), or,
with none of these, a 404 OpenAI error body. Every request is recorded (path, JSON body, headers).

Replies use the real wire shapes (builders below): JSON bodies for chat completions, responses and
embeddings; Server-Sent Events (``data: {...}\\n\\n`` ... ``data: [DONE]\\n\\n``) sent with chunked
transfer encoding, with an optional delay before every chunk or before chosen chunks; error bodies
``{"error": {...}}`` with any status; and a connection dropped mid-stream (the chunked body is cut
without its terminating chunk). Successful replies carry ``x-ratelimit-remaining-*`` headers.

Blocking: only scripted delays block, and only the server's own handler thread. ``close()`` (or
leaving ``with``) stops the server within about half a second.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final

import orjson

__all__ = [
    "DEFAULT_REMAINING_REQUESTS",
    "DEFAULT_REMAINING_TOKENS",
    "FakeOpenAI",
    "Recorded",
    "Reply",
    "chat_chunks",
    "chat_completion",
    "embeddings_body",
    "error_reply",
    "response_body",
    "response_events",
    "sse_reply",
]

DEFAULT_REMAINING_REQUESTS: Final = 4999
DEFAULT_REMAINING_TOKENS: Final = 149_500
CREATED: Final = 1_700_000_000  # a fixed Unix time for "created" fields; nothing reads it as a date


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    ``body``: a JSON body. ``events``: SSE data objects instead (a stream); ``done`` appends
    ``data: [DONE]``. ``delay_s`` sleeps before every event, ``delays`` before the event at that index
    (added to ``delay_s``); ``drop_after`` cuts the connection after that many events.
    ``headers`` replace or add response headers (the rate-limit ones default to the constants above).
    """

    status: int = 200
    body: Any = None
    events: Sequence[Mapping[str, Any]] | None = None
    done: bool = True
    delay_s: float = 0.0
    delays: Mapping[int, float] = field(default_factory=dict)
    drop_after: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


# A content-aware answer: the request's JSON body -> the reply.
Responder = Callable[[Any], Reply]


def sse_reply(events: Sequence[Mapping[str, Any]], **options: Any) -> Reply:
    return Reply(events=list(events), **options)


def error_reply(
    status: int,
    message: str,
    *,
    type: str,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """An OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
    body = {"error": {"message": message, "type": type, "param": None, "code": code}}
    return Reply(status=status, body=body, headers=dict(headers or {}))


def _usage(prompt: int, completion: int, cached: int, reasoning: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion(
    *,
    id: str = "chatcmpl-fake-1",
    model: str = "gpt-4o-mini-2024-07-18",
    contents: Sequence[str] = ("Hello there.",),
    finish_reasons: Sequence[str] | None = None,
    prompt_tokens: int = 21,
    completion_tokens: int = 9,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
    usage: bool = True,
) -> dict[str, Any]:
    """A ``chat.completion`` object: one choice per content."""
    reasons = list(finish_reasons or ["stop"] * len(contents))
    body: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": index,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": reasons[index],
            }
            for index, text in enumerate(contents)
        ],
    }
    if usage:
        body["usage"] = _usage(prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens)
    return body


def chat_chunks(
    pieces: Iterable[str],
    *,
    id: str = "chatcmpl-fake-2",
    model: str = "gpt-4o-mini-2024-07-18",
    finish_reason: str = "stop",
    tool_call: bool = False,
    usage: tuple[int, int, int, int] | None = None,
) -> list[dict[str, Any]]:
    """``chat.completion.chunk`` objects as the API streams them: a role-only first chunk, one chunk
    per piece (or, with ``tool_call``, tool-call argument deltas), a chunk with the finish reason, and
    with ``usage`` = (prompt, completion, cached, reasoning) the final usage chunk (empty choices)."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    for number, piece in enumerate(pieces):
        if tool_call:
            call: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
            if number == 0:
                call.update(id="call_fake", type="function")
                call["function"]["name"] = "lookup"
            chunks.append(chunk({"tool_calls": [call]}))
        else:
            chunks.append(chunk({"content": piece}))
    chunks.append(chunk({}, finish_reason))
    if usage is not None:
        final = chunk({})
        final["choices"] = []
        final["usage"] = _usage(*usage)
        chunks.append(final)
    return chunks


def _response_usage(prompt: int, output: int, cached: int, reasoning: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + output,
    }


def response_body(
    *,
    id: str = "resp_fake_1",
    model: str = "gpt-4.1-mini-2025-04-14",
    text: str = "Hello from responses.",
    status: str = "completed",
    incomplete_reason: str | None = None,
    usage: tuple[int, int, int, int] | None = (30, 12, 10, 4),
) -> dict[str, Any]:
    """A ``response`` object with one assistant message (``status`` "in_progress" has no output)."""
    output = (
        []
        if status == "in_progress"
        else [
            {
                "id": "msg_fake",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ]
    )
    return {
        "id": id,
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "error": None,
        "incomplete_details": None if incomplete_reason is None else {"reason": incomplete_reason},
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "temperature": 1.0,
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None if usage is None or status == "in_progress" else _response_usage(*usage),
        "metadata": {},
    }


def response_events(
    pieces: Sequence[str],
    *,
    id: str = "resp_fake_2",
    model: str = "gpt-4.1-mini-2025-04-14",
    usage: tuple[int, int, int, int] = (30, 12, 10, 4),
) -> list[dict[str, Any]]:
    """The Responses API's stream: created, in_progress, item added, one text delta per piece, text
    done, item done, completed (which carries the usage)."""
    text = "".join(pieces)
    started = response_body(id=id, model=model, status="in_progress")
    finished = response_body(id=id, model=model, text=text, usage=usage)
    item = finished["output"][0]
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**item, "status": "in_progress", "content": []},
        },
    ]
    events += [
        {
            "type": "response.output_text.delta",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "delta": piece,
            "logprobs": [],
        }
        for piece in pieces
    ]
    events += [
        {
            "type": "response.output_text.done",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "text": text,
            "logprobs": [],
        },
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": finished},
    ]
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]


def embeddings_body(
    *, count: int = 2, dims: int = 4, model: str = "text-embedding-3-small", prompt_tokens: int = 8
) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": index,
                "embedding": [round(0.1 * (index + 1) * (d + 1), 3) for d in range(dims)],
            }
            for index in range(count)
        ],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every reply.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        path = self.path.split("?", 1)[0]
        fake = self.server.fake
        fake.record(Recorded(self.command, path, body, dict(self.headers.items())))
        reply = fake.next_reply(path, body)
        if reply.events is not None and reply.status == 200:
            self._stream(reply)
        else:
            self._json(reply)

    def _headers(self, reply: Reply, content_type: str) -> dict[str, str]:
        headers = {"Content-Type": content_type, "x-request-id": "req_fake"}
        if reply.status < 400:
            headers["x-ratelimit-remaining-requests"] = str(DEFAULT_REMAINING_REQUESTS)
            headers["x-ratelimit-remaining-tokens"] = str(DEFAULT_REMAINING_TOKENS)
        headers.update(reply.headers)
        return headers

    def _json(self, reply: Reply) -> None:
        payload = orjson.dumps(reply.body)
        self.send_response(reply.status)
        for name, value in self._headers(reply, "application/json").items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, reply: Reply) -> None:
        self.send_response(200)
        for name, value in self._headers(reply, "text/event-stream; charset=utf-8").items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        assert reply.events is not None
        try:
            for index, event in enumerate(reply.events):
                if reply.drop_after is not None and index >= reply.drop_after:
                    self._drop()
                    return
                pause = reply.delay_s + reply.delays.get(index, 0.0)
                if pause > 0:
                    time.sleep(pause)
                self._chunk(b"data: " + orjson.dumps(event) + b"\n\n")
            if reply.drop_after is not None and reply.drop_after >= len(reply.events):
                self._drop()
                return
            if reply.done:
                self._chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # the client went away first
            self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _drop(self) -> None:
        """Cut the connection: the chunked body never gets its terminating chunk."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that closes its connection (e.g. a stream not read to the end) is no error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeOpenAI:
    """The fake API server (see the module docstring). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: collections.deque[Reply] = collections.deque()
        self._defaults: dict[str, Reply] = {}
        self._responders: dict[str, Responder] = {}
        self.requests: list[Recorded] = []
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *replies: Reply) -> None:
        """Answer the next requests (any path) with these replies, in order."""
        with self._lock:
            self._queue.extend(replies)

    def set_default(self, path: str, reply: Reply) -> None:
        """Answer requests to ``path`` (e.g. ``/v1/chat/completions``) with ``reply`` when none is queued."""
        with self._lock:
            self._defaults[path] = reply

    def record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def set_responder(self, path: str, responder: Responder) -> None:
        """Answer requests to ``path`` with ``responder(JSON body)`` when none is queued (a content-aware
        stand-in: the demo's judge and eval target). A responder that raises gets a 500 reply."""
        with self._lock:
            self._responders[path] = responder

    def next_reply(self, path: str, body: Any = None) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            responder = self._responders.get(path)
            default = self._defaults.get(path)
        if responder is not None:
            try:
                return responder(body)
            except Exception as exc:  # a broken stand-in is a server error, as a real one would be
                return error_reply(500, f"responder failed: {exc}", type="server_error")
        if default is not None:
            return default
        return error_reply(404, f"no reply scripted for {path!r}", type="invalid_request_error")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeOpenAI:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
