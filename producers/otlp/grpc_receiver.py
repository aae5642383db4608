"""OTLP/gRPC for traces: ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` on grpcio.

The servicer subclasses the generated ``trace_service_pb2_grpc.TraceServiceServicer`` and answers:

- OK with an ``ExportTraceServiceResponse`` (``partial_success`` when spans were invalid or refused);
- ``UNAUTHENTICATED`` when a bearer token is configured and the ``authorization`` metadata lacks it;
- ``INVALID_ARGUMENT`` when the message is not an ``ExportTraceServiceRequest``. For that the method is
  registered with a bytes-in deserializer and parses the message itself: the generated
  ``add_TraceServiceServicer_to_server`` parses inside grpcio, which reports a bad message as
  ``INTERNAL`` and never reaches the servicer;
- ``RESOURCE_EXHAUSTED`` (from grpcio) for a message above the body cap.

gzip-compressed calls are inflated by grpcio. Calls run on a pool of ``workers`` threads; a call blocks
only its own worker, for the mapping and the non-blocking emits.
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import TYPE_CHECKING, Any, Final

import grpc  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

if TYPE_CHECKING:
    from producers.otlp.receiver import Ingest

__all__ = ["SERVICE_NAME", "GrpcServer", "TraceServicer"]

log = logging.getLogger("producers.otlp")

SERVICE_NAME: Final = "opentelemetry.proto.collector.trace.v1.TraceService"


class TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    """``TraceService/Export``; takes the serialized request (see the module docstring)."""

    def __init__(self, ingest: Ingest) -> None:
        self._ingest = ingest

    def Export(self, request: Any, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        token = None
        for key, value in context.invocation_metadata():
            if key == "authorization":
                token = value if isinstance(value, str) else value.decode("utf-8", "replace")
                break
        if not self._ingest.authorized(token):
            self._ingest.reject("unauthenticated")
            context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or wrong bearer token in the authorization metadata",
            )
        if isinstance(request, ExportTraceServiceRequest):
            message = request
        else:
            try:
                message = ExportTraceServiceRequest.FromString(bytes(request))
            except (DecodeError, ValueError, RuntimeError) as exc:
                self._ingest.reject("bad_request")
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"message is not an ExportTraceServiceRequest: {exc}",
                )
        return self._ingest.export(message)


class GrpcServer:
    """The OTLP/gRPC listener (insecure channel credentials: bind to loopback or put TLS in front)."""

    def __init__(
        self, ingest: Ingest, host: str, port: int, max_body_bytes: int, workers: int
    ) -> None:
        self._server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="llmwatch-otlp-grpc"
            ),
            options=[
                ("grpc.max_receive_message_length", max_body_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        servicer = TraceServicer(ingest)
        handler = grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Export": grpc.unary_unary_rpc_method_handler(
                    servicer.Export,
                    request_deserializer=None,  # bytes in: the servicer parses (INVALID_ARGUMENT)
                    response_serializer=ExportTraceServiceResponse.SerializeToString,
                )
            },
        )
        self._server.add_generic_rpc_handlers((handler,))
        address = f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            bound = self._server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot bind OTLP/gRPC to {address}: {exc}") from exc
        if bound == 0:
            raise OSError(f"cannot bind OTLP/gRPC to {address}")
        self._port = int(bound)

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> None:
        self._server.start()

    def stop(self, grace_s: float) -> None:
        self._server.stop(grace_s).wait(grace_s + 5.0)
