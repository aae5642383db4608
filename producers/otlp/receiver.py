"""The OTLP trace receiver: OTLP/HTTP and OTLP/gRPC in, llmwatch events out through an ``emit`` function.

:class:`OtlpReceiver` listens for trace exports (``POST /v1/traces``, ``TraceService/Export``), maps each
request's GenAI spans to events (``producers.otlp.mapping``) and hands every event to ``emit``, normally
``producers.sdk.Publisher.emit``. :func:`serve` runs one until a ``threading.Event`` is set (for
embedding in another process); the ``llmwatch otlp`` command runs an :class:`OtlpReceiver` itself, to
publish its counters as pipeline metrics (``llmwatch.processes.run_otlp``).

Guarantees:
- Nothing blocks on the app side beyond the export round trip: the reply is sent as soon as the request's
  events were handed to ``emit``, which never blocks. Mapping costs about 20 us per span, so a
  512-span batch is answered in about 10 ms (``bench/bench_otlp.py``).
- Every span of an accepted request is counted once: ``events_emitted``, ``emit_refused`` (``emit``
  returned False or raised: the Publisher's queue was full or closed), ``spans_dropped_non_genai`` or
  ``spans_invalid``. Invalid and refused spans are reported back to the exporter as OTLP partial success
  (``rejected_spans`` and an ``error_message`` naming the reasons); non-GenAI spans are dropped on
  purpose and are not reported as rejected.
- A rejected request (bad body, bad token, too large, wrong type) is answered with the OTLP error
  (HTTP 400/401/413/415 with a ``google.rpc.Status`` body; gRPC ``INVALID_ARGUMENT`` /
  ``UNAUTHENTICATED``), the message naming the reason, and counted in ``requests_rejected_<reason>``.
  It does not affect other requests, on the same connection or not.
- ``stop()`` stops accepting, lets requests in flight finish (up to ``grace_s``) and returns.

Security:
- Binds to loopback (127.0.0.1) unless told otherwise; binding elsewhere without a bearer token logs a
  warning.
- Optional bearer token: when set, HTTP requests need ``Authorization: Bearer <token>`` and gRPC calls
  ``authorization: Bearer <token>`` metadata (compared in constant time); others get 401 /
  ``UNAUTHENTICATED``. No TLS here: put a TLS-terminating proxy in front for non-local traffic.
- Body cap (``max_body_bytes``, default 16 MiB): larger HTTP bodies get 413 before they are read, gzip
  bodies are decompressed only up to the cap, and gRPC messages above it are refused by grpcio
  (``RESOURCE_EXHAUSTED``). HTTP connections idle for 30 s mid-request are closed.
- No prompt or completion text is ever forwarded (see ``producers.otlp.mapping``).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from producers.otlp.grpc_receiver import GrpcServer
from producers.otlp.http_receiver import HttpServer
from producers.otlp.mapping import spans_to_events

__all__ = [
    "COUNTER_NAMES",
    "DEFAULT_MAX_BODY_BYTES",
    "REJECT_REASONS",
    "Emit",
    "Ingest",
    "OtlpReceiver",
    "serve",
]

log = logging.getLogger("producers.otlp")

Emit = Callable[[dict[str, Any]], bool]

DEFAULT_MAX_BODY_BYTES: Final = 16 * 1024 * 1024
REJECT_REASONS: Final = (
    "bad_request",
    "unauthenticated",
    "too_large",
    "unsupported_media_type",
    "length_required",
    "not_found",
    "method_not_allowed",
)
COUNTER_NAMES: Final = (
    "requests_ok",
    "requests_rejected",
    *(f"requests_rejected_{reason}" for reason in REJECT_REASONS),
    "spans_received",
    "events_emitted",
    "events_genai",
    "events_chain_steps",
    "spans_dropped_non_genai",
    "spans_invalid",
    "emit_refused",
)


class Ingest:
    """What both transports share: the token check, mapping + emit, and the counters. Thread-safe."""

    def __init__(self, emit: Emit, bearer_token: str | None, service_default: str) -> None:
        self._emit = emit
        self._expected = None if bearer_token is None else f"Bearer {bearer_token}".encode()
        self._service_default = service_default
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTER_NAMES, 0)

    def authorized(self, header: str | None) -> bool:
        if self._expected is None:
            return True
        if header is None:
            return False
        return hmac.compare_digest(header.strip().encode("utf-8", "replace"), self._expected)

    def reject(self, reason: str) -> None:
        with self._lock:
            self._counts["requests_rejected"] += 1
            self._counts[f"requests_rejected_{reason}"] += 1

    def export(self, request: ExportTraceServiceRequest) -> ExportTraceServiceResponse:
        """Map and emit one request's spans; the OTLP response (partial success when any were lost)."""
        batch = spans_to_events(request, service_default=self._service_default)
        emit = self._emit
        refused = 0
        for event in batch.events:
            try:
                accepted = emit(event)
            except Exception:  # emit must not raise; if one does, the event is lost and counted
                log.debug("llmwatch otlp: emit raised", exc_info=True)
                accepted = False
            if not accepted:
                refused += 1
        with self._lock:
            counts = self._counts
            counts["requests_ok"] += 1
            counts["spans_received"] += batch.spans
            counts["events_emitted"] += len(batch.events) - refused
            counts["events_genai"] += batch.genai_spans
            counts["events_chain_steps"] += batch.chain_steps
            counts["spans_dropped_non_genai"] += batch.dropped_non_genai
            counts["spans_invalid"] += batch.invalid
            counts["emit_refused"] += refused
        response = ExportTraceServiceResponse()
        if batch.invalid or refused:
            reasons = list(batch.invalid_reasons)
            if batch.invalid > len(batch.invalid_reasons):
                reasons.append(f"... {batch.invalid} invalid spans in all")
            if refused:
                reasons.append(
                    f"{refused} events refused by the llmwatch publisher (queue full or closed)"
                )
            response.partial_success.rejected_spans = batch.invalid + refused
            response.partial_success.error_message = "; ".join(reasons)
        return response

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class OtlpReceiver:
    """OTLP/HTTP (``http_port``) and OTLP/gRPC (``grpc_port``) trace receiver; ``None`` disables one.

    Port 0 binds a free port; the bound ports are :attr:`http_port` / :attr:`grpc_port` after
    :meth:`start`. Usable as a context manager (start on enter, stop on exit).
    """

    def __init__(
        self,
        emit: Emit,
        *,
        host: str = "127.0.0.1",
        http_port: int | None = 4318,
        grpc_port: int | None = 4317,
        bearer_token: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        service_default: str = "otlp",
        grpc_workers: int = 4,
    ) -> None:
        if bearer_token is not None and not bearer_token.strip():
            raise ValueError("bearer_token must be None or a non-empty string, got an empty one")
        if max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be > 0, got {max_body_bytes}")
        for name, port in (("http_port", http_port), ("grpc_port", grpc_port)):
            if port is not None and not 0 <= port <= 65535:
                raise ValueError(f"{name} must be in 0..65535 or None, got {port}")
        if http_port is None and grpc_port is None:
            raise ValueError("http_port and grpc_port are both None: nothing to listen on")
        self._ingest = Ingest(emit, bearer_token, service_default)
        self._host = host
        self._want_http = http_port
        self._want_grpc = grpc_port
        self._max_body_bytes = max_body_bytes
        self._grpc_workers = grpc_workers
        self._http: HttpServer | None = None
        self._grpc: GrpcServer | None = None
        self._started = False
        if bearer_token is None and not _is_loopback(host):
            log.warning(
                "llmwatch otlp: listening on %s without a bearer token: anyone who can reach "
                "it can send events",
                host,
            )

    @property
    def host(self) -> str:
        return self._host

    @property
    def http_port(self) -> int | None:
        """The bound OTLP/HTTP port (None before start or when disabled)."""
        return None if self._http is None else self._http.port

    @property
    def grpc_port(self) -> int | None:
        """The bound OTLP/gRPC port (None before start or when disabled)."""
        return None if self._grpc is None else self._grpc.port

    def counters(self) -> dict[str, int]:
        """A consistent snapshot of the counters (:data:`COUNTER_NAMES`)."""
        return self._ingest.counters()

    def start(self) -> None:
        """Bind and start serving. Raises ``OSError`` naming the address if a port cannot be bound."""
        if self._started:
            raise RuntimeError("OtlpReceiver.start() called twice")
        self._started = True
        try:
            if self._want_http is not None:
                self._http = HttpServer(
                    self._ingest, self._host, self._want_http, self._max_body_bytes
                )
                self._http.start()
            if self._want_grpc is not None:
                self._grpc = GrpcServer(
                    self._ingest,
                    self._host,
                    self._want_grpc,
                    self._max_body_bytes,
                    self._grpc_workers,
                )
                self._grpc.start()
        except BaseException:
            self.stop(0.0)
            raise

    def stop(self, grace_s: float = 2.0) -> None:
        """Stop both servers; requests in flight get up to ``grace_s`` to finish. Idempotent."""
        grpc_server, self._grpc = self._grpc, None
        http_server, self._http = self._http, None
        if grpc_server is not None:
            grpc_server.stop(grace_s)
        if http_server is not None:
            http_server.stop()

    def __enter__(self) -> OtlpReceiver:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    emit: Emit,
    *,
    host: str = "127.0.0.1",
    http_port: int | None = 4318,
    grpc_port: int | None = 4317,
    bearer_token: str | None = None,
    stop: threading.Event,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    service_default: str = "otlp",
    log_every_s: float = 60.0,
) -> None:
    """Run an :class:`OtlpReceiver` until ``stop`` is set, logging its counters every ``log_every_s``.

    Blocks the calling thread. Raises ``OSError`` if a port cannot be bound; returns after ``stop`` is
    set and the servers have stopped (requests in flight get 2 s).
    """
    receiver = OtlpReceiver(
        emit,
        host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        bearer_token=bearer_token,
        max_body_bytes=max_body_bytes,
        service_default=service_default,
    )
    receiver.start()
    log.info(
        "llmwatch otlp: listening on %s (OTLP/HTTP port %s, OTLP/gRPC port %s, token %s)",
        host,
        receiver.http_port,
        receiver.grpc_port,
        "required" if bearer_token else "not required",
    )
    try:
        while not stop.wait(log_every_s):
            log.info("llmwatch otlp: %s", receiver.counters())
    finally:
        receiver.stop()
        log.info("llmwatch otlp: stopped; %s", receiver.counters())


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
