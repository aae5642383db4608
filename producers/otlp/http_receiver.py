"""OTLP/HTTP for traces: ``POST /v1/traces`` with a protobuf or OTLP JSON body, optionally gzip'd.

Replies (the response body uses the request's encoding; errors are ``google.rpc.Status`` with a message
naming the reason):

- 200: an ``ExportTraceServiceResponse``, with ``partial_success`` when spans were invalid or refused.
- 400: the body does not decode (protobuf, JSON, gzip, or an OTLP JSON id that is not hex).
- 401: a bearer token is configured and the ``Authorization`` header does not carry it.
- 404 / 405: another path / another method. 411: no ``Content-Length``.
- 413: ``Content-Length`` (or the gzip'd body once inflated) above the cap. Nothing past the cap is
  read or inflated.
- 415: a content type other than ``application/x-protobuf`` / ``application/json``, or a content
  encoding other than ``gzip`` / ``identity``.

OTLP JSON differs from protobuf's canonical JSON mapping in one way that matters: trace and span ids
are hex strings, not base64. :func:`parse_json_request` rewrites them to the bytes they stand for
before ``google.protobuf.json_format`` reads the message (unknown fields are ignored, as OTLP asks).
Enum values may be names or integers; 64-bit integers may be strings or numbers.

A thread serves each connection (HTTP/1.1 keep-alive); a request's handling blocks only its own
connection. Connections that stall mid-request for 30 s are closed. When a request is rejected before its
body was read, the connection is closed after the reply.
"""

from __future__ import annotations

import base64
import logging
import socket
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final

import orjson
from google.protobuf import json_format  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from google.rpc import code_pb2, status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

if TYPE_CHECKING:
    from producers.otlp.receiver import Ingest

__all__ = ["TRACES_PATH", "HttpServer", "RequestError", "decode_body", "parse_json_request"]

log = logging.getLogger("producers.otlp")

TRACES_PATH: Final = "/v1/traces"
PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"
READ_TIMEOUT_S: Final = 30.0
_ID_LENGTHS: Final = {"traceId": 16, "spanId": 8, "parentSpanId": 8}
_ID_KEYS: Final = {
    "traceId": "traceId",
    "trace_id": "traceId",
    "spanId": "spanId",
    "span_id": "spanId",
    "parentSpanId": "parentSpanId",
    "parent_span_id": "parentSpanId",
}


class RequestError(Exception):
    """A request that gets an error reply: HTTP status, counter reason and a message naming the cause."""

    def __init__(self, http_status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.reason = reason
        self.message = message


def parse_json_request(body: bytes) -> ExportTraceServiceRequest:
    """An OTLP JSON body as a request (hex ids). Raises :class:`RequestError` (400) naming the problem."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, "bad_request", f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RequestError(
            400, "bad_request", f"OTLP JSON must be an object, got {type(doc).__name__}"
        )
    for resource_spans in _items(doc, "resourceSpans", "resource_spans"):
        for scope_spans in _items(resource_spans, "scopeSpans", "scope_spans"):
            for span in _items(scope_spans, "spans", "spans"):
                _hex_ids(span)
                for link in _items(span, "links", "links"):
                    _hex_ids(link)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise RequestError(400, "bad_request", f"OTLP JSON does not parse: {exc}") from None
    return request


def decode_body(
    content_type: str, encoding: str, body: bytes, cap: int
) -> ExportTraceServiceRequest:
    """Inflate and parse one request body. Raises :class:`RequestError` for any problem."""
    if encoding == "gzip":
        body = _gunzip(body, cap)
    elif encoding not in ("", "identity"):
        raise RequestError(
            415,
            "unsupported_media_type",
            f"Content-Encoding {encoding!r} is not supported; use gzip or identity",
        )
    if content_type == JSON:
        return parse_json_request(body)
    try:
        request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise RequestError(
            400, "bad_request", f"protobuf body is not an ExportTraceServiceRequest: {exc}"
        ) from None
    return request


class HttpServer:
    """The OTLP/HTTP listener: a ``ThreadingHTTPServer`` serving on its own thread."""

    def __init__(self, ingest: Ingest, host: str, port: int, max_body_bytes: int) -> None:
        handler = type("_BoundHandler", (_Handler,), {"ingest": ingest, "cap": max_body_bytes})
        server_class = _Server6 if ":" in host else _Server
        try:
            self._server = server_class((host.strip("[]"), port), handler)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot bind OTLP/HTTP to {host}:{port}: {exc}") from exc
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="llmwatch-otlp-http",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanished mid-reply, a stalled connection: not worth a traceback on stderr.
        log.debug(
            "llmwatch otlp http: connection from %s failed: %r", client_address, sys.exc_info()[1]
        )


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llmwatch-otlp"
    sys_version = ""
    timeout = READ_TIMEOUT_S
    ingest: Ingest
    cap: int
    _consumed: bool = False

    def do_POST(self) -> None:
        self._consumed = False
        content_type = _media_type(self.headers.get("Content-Type"))
        try:
            if self.path.split("?", 1)[0] != TRACES_PATH:
                raise RequestError(
                    404, "not_found", f"no such path {self.path[:200]!r}; use /v1/traces"
                )
            if not self.ingest.authorized(self.headers.get("Authorization")):
                raise RequestError(
                    401, "unauthenticated", "missing or wrong bearer token in Authorization"
                )
            if content_type not in (PROTOBUF, JSON):
                raise RequestError(
                    415,
                    "unsupported_media_type",
                    f"Content-Type {content_type!r} is not supported; use {PROTOBUF} or {JSON}",
                )
            body = self._read_body()
            encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
            request = decode_body(content_type, encoding, body, self.cap)
        except RequestError as exc:
            self.ingest.reject(exc.reason)
            self._reply_error(exc, content_type)
            return
        response = self.ingest.export(request)
        if content_type == JSON:
            payload = json_format.MessageToJson(response, indent=None).encode()
        else:
            payload = response.SerializeToString()
        self._reply(200, content_type, payload)

    def do_GET(self) -> None:
        self._other_method()

    def do_PUT(self) -> None:
        self._other_method()

    def do_DELETE(self) -> None:
        self._other_method()

    def do_PATCH(self) -> None:
        self._other_method()

    def _other_method(self) -> None:
        if self.path.split("?", 1)[0] != TRACES_PATH:
            error = RequestError(
                404, "not_found", f"no such path {self.path[:200]!r}; use /v1/traces"
            )
        else:
            error = RequestError(
                405, "method_not_allowed", f"method {self.command} not allowed; use POST"
            )
        self._consumed = False
        self.ingest.reject(error.reason)
        self._reply_error(error, JSON)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise RequestError(
                411, "length_required", "chunked bodies are not supported; send Content-Length"
            )
        raw = self.headers.get("Content-Length")
        if raw is None:
            raise RequestError(411, "length_required", "Content-Length is required")
        try:
            length = int(raw)
        except ValueError:
            raise RequestError(
                400, "bad_request", f"Content-Length {raw[:40]!r} is not a number"
            ) from None
        if length < 0:
            raise RequestError(400, "bad_request", f"Content-Length {length} is negative")
        if length > self.cap:
            raise RequestError(
                413, "too_large", f"body of {length} bytes exceeds the limit of {self.cap} bytes"
            )
        try:
            body = self.rfile.read(length)
        except OSError:  # the read timed out or the client went away
            body = b""
        self._consumed = True
        if len(body) != length:
            self.close_connection = True
            raise RequestError(
                400, "bad_request", f"body ended after {len(body)} of {length} bytes"
            )
        return body

    def _reply_error(self, error: RequestError, content_type: str) -> None:
        status = status_pb2.Status(code=_rpc_code(error.http_status), message=error.message)
        if content_type == PROTOBUF:
            payload = status.SerializeToString()
        else:
            content_type = JSON
            payload = json_format.MessageToJson(status, indent=None).encode()
        if not self._consumed:
            self.close_connection = True  # an unread body would be taken for the next request
        self._reply(error.http_status, content_type, payload)

    def _reply(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("llmwatch otlp http: %s %s", self.address_string(), format % args)


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _rpc_code(http_status: int) -> int:
    codes: dict[int, int] = {
        400: code_pb2.INVALID_ARGUMENT,
        401: code_pb2.UNAUTHENTICATED,
        404: code_pb2.NOT_FOUND,
        405: code_pb2.UNIMPLEMENTED,
        411: code_pb2.INVALID_ARGUMENT,
        413: code_pb2.RESOURCE_EXHAUSTED,
        415: code_pb2.INVALID_ARGUMENT,
    }
    return codes.get(http_status, 2)  # 2: google.rpc.Code UNKNOWN


def _gunzip(body: bytes, cap: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, cap + 1)
    except zlib.error as exc:
        raise RequestError(400, "bad_request", f"gzip body does not inflate: {exc}") from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise RequestError(
            413, "too_large", f"gzip body inflates to more than the limit of {cap} bytes"
        )
    if not inflater.eof:
        raise RequestError(400, "bad_request", "gzip body is truncated")
    return out


def _items(doc: Any, camel: str, snake: str) -> list[Any]:
    if not isinstance(doc, dict):
        return []
    items = doc.get(camel, doc.get(snake))
    return items if isinstance(items, list) else []


def _hex_ids(obj: Any) -> None:
    """Rewrite an OTLP JSON span's or link's hex ids as the base64 that json_format expects."""
    if not isinstance(obj, dict):
        return
    for key, canonical in _ID_KEYS.items():
        value = obj.get(key)
        if not isinstance(value, str):
            continue
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise RequestError(
                400,
                "bad_request",
                f"{canonical} {value[:80]!r} is not hex (OTLP JSON encodes ids as hex, "
                f"{_ID_LENGTHS[canonical] * 2} digits)",
            ) from None
        obj[key] = base64.b64encode(raw).decode("ascii")
