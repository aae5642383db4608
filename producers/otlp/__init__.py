"""The OTLP trace receiver: OpenTelemetry GenAI / OpenInference spans in, llmwatch events out.

- :func:`spans_to_events` (``mapping``): one ``ExportTraceServiceRequest`` -> event dicts and counts.
- :class:`OtlpReceiver` / :func:`serve` (``receiver``): OTLP/HTTP and OTLP/gRPC listeners that hand each
  event to an ``emit`` function (normally ``producers.sdk.Publisher.emit``), never blocking on it.

Needs the ``otlp`` extra (opentelemetry-proto, grpcio, protobuf). Guarantees and security notes live in
the modules' docstrings.
"""

from producers.otlp.mapping import MappedBatch, spans_to_events
from producers.otlp.receiver import DEFAULT_MAX_BODY_BYTES, OtlpReceiver, serve

__all__ = ["DEFAULT_MAX_BODY_BYTES", "MappedBatch", "OtlpReceiver", "serve", "spans_to_events"]
