"""OTLP trace spans -> llmwatch event dicts (``producers.events.LlmCallEvent`` fields, short names).

:func:`spans_to_events` reads one ``ExportTraceServiceRequest`` and returns a :class:`MappedBatch`: the
event dicts, ready for ``producers.sdk.Publisher.emit``, and what happened to every span.

Which spans become events:
- A span with a ``gen_ai.*`` attribute (OTel GenAI semantic conventions, current or deprecated names) or
  an OpenInference attribute (``openinference.span.kind``, ``llm.*``, ``embedding.*``, ``retrieval.*``)
  becomes one event. Model calls (``chat``, ``text_completion``, ``generate_content``, ``embeddings``;
  OpenInference ``LLM``, ``EMBEDDING``) are counted as ``genai_spans``; every other GenAI span (agents,
  tools, workflows, retrieval; OpenInference ``CHAIN``, ``AGENT``, ``TOOL``, ``RETRIEVER``, ``RERANKER``,
  ``GUARDRAIL``, ...) is kept as a chain step (``chain_steps``), so the parent links inside an agent
  trace are preserved.
- Any other span (HTTP, database, framework internals) is counted in ``dropped_non_genai`` and dropped.
  A kept span whose parent was dropped keeps its ``parent_span_id``: the trace view shows it as a root.
- A span whose ids are malformed (trace id not 16 bytes or all zero, span id not 8 bytes or all zero,
  parent span id neither empty nor 8 bytes) or whose times are missing or reversed is counted in
  ``invalid`` (the first :data:`MAX_INVALID_REASONS` reasons are kept, naming the bad value) and skipped.
  Nothing here raises for any message content.

Field rules (the first name present with a usable value wins; current OTel name, then deprecated, then
OpenInference):
- ids: lowercase hex (``trace_id`` 32 chars, ``span_id`` / ``parent_span_id`` 16). ``event_id`` is
  ``trace_id + span_id``, so an exporter retrying the same batch produces the same ids and the worker's
  deduplication collapses them.
- ``start_time`` / ``end_time``: the span's unix nanoseconds, as UTC datetimes (microseconds kept).
- ``service``: resource ``service.name`` (the SDKs' ``unknown_service*`` placeholder counts as absent,
  as does a missing name: then ``service_default``); ``environment``: resource
  ``deployment.environment.name`` or ``deployment.environment`` (absent: the Publisher's default).
- status: span status ERROR, or an ``error.type`` attribute, or an HTTP status >= 400 -> ``error``, with
  ``error_type`` from ``error.type``, else the first ``exception`` event's ``exception.type``, else
  the HTTP status, else ``_OTHER`` (a stringified class, ``<class 'openai.NotFoundError'>``, becomes
  ``openai.NotFoundError``). ``http_status`` from ``http.response.status_code`` (or the
  deprecated ``http.status_code``). The status message is not copied (it may quote user text).
- Values that would break the event contract are repaired or left out, never forwarded: labels are cut to
  256 characters; ``operation_name`` / ``provider_name`` are lower-cased and characters outside
  ``[a-z0-9_.-]`` become ``_``; token counts outside 0..100M, temperature outside 0..10, top_p outside
  0..1 and HTTP statuses outside 100..599 are left out; a time to first token longer than the span is
  left out. If cached input tokens exceed input tokens (the Anthropic-style count that excludes the
  cache) they are added to the input; reasoning tokens exceeding output tokens are added likewise.
- metadata: ``otel.span.name``, ``otel.scope.name`` and, for OpenInference spans, the raw
  ``openinference.span.kind``; nothing else.

Text: llmwatch's text capture is off by default, and an OTLP receiver has no per-call opt-in, so no
prompt, completion, message, tool argument or document text is ever copied (``gen_ai.prompt*``,
``gen_ai.completion*``, ``gen_ai.input.messages``, ``gen_ai.output.messages``, ``input.value``,
``output.value``, ``llm.input_messages``, ``llm.output_messages``, ``retrieval.documents``, span
events' bodies...). Only the attributes named above are read.

Nothing here does I/O or blocks; mapping costs about 20 us per span on a 2-core machine
(``bench/bench_otlp.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from producers.otlp.values import (
    MAX_LABEL,
    MAX_TOKENS,
    boolean_value,
    bounded_float,
    count_value,
    finish_reasons,
    integer_value,
    label_value,
    py_count,
    py_float,
    py_int,
    string_value,
    token_value,
)

__all__ = [
    "MAX_INVALID_REASONS",
    "MappedBatch",
    "spans_to_events",
]

MAX_INVALID_REASONS: Final = 8
MAX_INVOCATION_PARAMS_CHARS: Final = 65_536

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NO_PARENT: Final = b"\x00" * 8

# gen_ai.operation.name -> span kind.
_OPERATION_KINDS: Final[dict[str, str]] = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "completion": "llm",
    "embeddings": "embedding",
    "embedding": "embedding",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "retrieval": "retrieval",
    "invoke_workflow": "chain",
}
# OpenInference span kind -> (span kind, operation name).
_OPENINFERENCE_KINDS: Final[dict[str, tuple[str, str]]] = {
    "LLM": ("llm", "chat"),
    "EMBEDDING": ("embedding", "embeddings"),
    "CHAIN": ("chain", "chain"),
    "TOOL": ("tool", "execute_tool"),
    "AGENT": ("agent", "invoke_agent"),
    "RETRIEVER": ("retrieval", "retrieval"),
    "RERANKER": ("retrieval", "rerank"),
    "GUARDRAIL": ("chain", "guardrail"),
    "EVALUATOR": ("chain", "evaluator"),
    "PROMPT": ("chain", "prompt"),
}
_MODEL_KINDS: Final = frozenset({"llm", "embedding"})
_OPENINFERENCE_PREFIXES: Final = (
    "openinference.span.kind",
    "llm.",
    "embedding.",
    "retrieval.",
    "reranker.",
)


@dataclass(slots=True)
class MappedBatch:
    """The events of one export request and what happened to each span.

    ``genai_spans + chain_steps == len(events)``; every span of the request is counted once in
    ``genai_spans``, ``chain_steps``, ``dropped_non_genai`` or ``invalid``.
    """

    events: list[dict[str, Any]] = field(default_factory=list)
    genai_spans: int = 0
    chain_steps: int = 0
    dropped_non_genai: int = 0
    invalid: int = 0
    invalid_reasons: list[str] = field(default_factory=list)

    @property
    def spans(self) -> int:
        return self.genai_spans + self.chain_steps + self.dropped_non_genai + self.invalid


class _Invalid(Exception):
    """A span that cannot become an event (the message names the bad value)."""


def spans_to_events(
    request: ExportTraceServiceRequest, *, service_default: str = "otlp"
) -> MappedBatch:
    """Map every span of ``request`` (see the module docstring). Never raises."""
    batch = MappedBatch()
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = label_value(resource.get("service.name"))
        if service is None or service.startswith("unknown_service"):
            service = service_default
        environment = label_value(resource.get("deployment.environment.name")) or label_value(
            resource.get("deployment.environment")
        )
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name[:MAX_LABEL] or None
            for span in scope_spans.spans:
                try:
                    event = _span_event(span, service, environment, scope)
                except _Invalid as exc:
                    batch.invalid += 1
                    if len(batch.invalid_reasons) < MAX_INVALID_REASONS:
                        batch.invalid_reasons.append(f"span {span.name[:80]!r}: {exc}")
                    continue
                except Exception as exc:  # a bug here must cost one span, never the batch
                    batch.invalid += 1
                    if len(batch.invalid_reasons) < MAX_INVALID_REASONS:
                        batch.invalid_reasons.append(
                            f"span {span.name[:80]!r}: {type(exc).__name__}: {exc}"
                        )
                    continue
                if event is None:
                    batch.dropped_non_genai += 1
                elif event["span_kind"] in _MODEL_KINDS:
                    batch.genai_spans += 1
                    batch.events.append(event)
                else:
                    batch.chain_steps += 1
                    batch.events.append(event)
    return batch


def _span_event(
    span: Span, service: str, environment: str | None, scope: str | None
) -> dict[str, Any] | None:
    # One pass over the attributes: each known key converts into its field, the lowest rank wins
    # (current OTel name 0, deprecated 1, OpenInference 2...); a value that does not convert is skipped.
    found: dict[str, Any] = {}
    ranks: dict[str, int] = {}
    has_gen_ai = has_openinference = False
    spec_of = _SPEC.get
    for kv in span.attributes:
        key = kv.key
        spec = spec_of(key)
        if spec is not None:
            name, rank, convert = spec
            if rank < ranks.get(name, 99):
                value = convert(kv.value)
                if value is not None:
                    found[name] = value
                    ranks[name] = rank
        if key.startswith("gen_ai."):
            has_gen_ai = True
        elif key.startswith(_OPENINFERENCE_PREFIXES):
            has_openinference = True
    if not has_gen_ai and not has_openinference:
        return None

    trace_id, span_id, parent_id = _ids(span)
    start_ns, end_ns = span.start_time_unix_nano, span.end_time_unix_nano
    if start_ns == 0 or end_ns == 0:
        raise _Invalid(
            f"missing time: start_time_unix_nano={start_ns}, end_time_unix_nano={end_ns}"
        )
    if end_ns < start_ns:
        raise _Invalid(f"end_time_unix_nano {end_ns} is before start_time_unix_nano {start_ns}")

    oi_kind: str | None = found.get("_oi_kind")
    span_kind, operation = _kind(found, has_gen_ai, oi_kind)
    event: dict[str, Any] = {
        "event_id": trace_id + span_id,
        "trace_id": trace_id,
        "span_id": span_id,
        "start_time": _time(start_ns),
        "end_time": _time(end_ns),
        "service": service,
        "span_kind": span_kind,
        "operation_name": operation,
    }
    if parent_id is not None:
        event["parent_span_id"] = parent_id
    if environment is not None:
        event["environment"] = environment
    for name, value in found.items():
        if name[0] != "_":
            event[name] = value
    if "_params" in found:
        _invocation_parameters(event, found["_params"])
    _usage(event, found)
    _outcome(event, span, found)

    ttfc = found.get("_ttfc")
    if ttfc is not None and ttfc * 1000.0 <= (end_ns - start_ns) / 1e6 + 1.0:
        event["time_to_first_token_ms"] = ttfc * 1000.0

    metadata: dict[str, str] = {}
    if span.name:
        metadata["otel.span.name"] = span.name[:MAX_LABEL]
    if scope is not None:
        metadata["otel.scope.name"] = scope
    if oi_kind is not None:
        metadata["openinference.span.kind"] = oi_kind
    if metadata:
        event["metadata"] = metadata
    return event


def _ids(span: Span) -> tuple[str, str, str | None]:
    trace, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
    if len(trace) != 16 or not any(trace):
        raise _Invalid(
            f"trace_id must be 16 non-zero bytes, got {len(trace)}: {trace.hex()[:64]!r}"
        )
    if len(span_id) != 8 or not any(span_id):
        raise _Invalid(
            f"span_id must be 8 non-zero bytes, got {len(span_id)}: {span_id.hex()[:64]!r}"
        )
    if len(parent) not in (0, 8):
        raise _Invalid(
            f"parent_span_id must be empty or 8 bytes, got {len(parent)}: {parent.hex()[:64]!r}"
        )
    return trace.hex(), span_id.hex(), (parent.hex() if parent and parent != _NO_PARENT else None)


def _kind(found: Mapping[str, Any], has_gen_ai: bool, oi_kind: str | None) -> tuple[str, str]:
    operation: str | None = found.get("_operation")
    if operation is not None:
        kind = _OPERATION_KINDS.get(operation)
        if kind is not None:
            return kind, operation
    if oi_kind is not None:
        mapped = _OPENINFERENCE_KINDS.get(oi_kind.upper())
        if mapped is not None:
            return mapped[0], operation or mapped[1]
    # No known kind: guess from what the span carries.
    if "tool_name" in found:
        return "tool", operation or "execute_tool"
    if "request_model" in found:
        return "llm", operation or "chat"
    if "agent_name" in found:
        return "agent", operation or "invoke_agent"
    if has_gen_ai and operation is None and "_input" in found:
        return "llm", "chat"
    return "chain", operation or "chain"


def _usage(event: dict[str, Any], found: Mapping[str, Any]) -> None:
    input_tokens: int | None = found.get("_input")
    output_tokens: int | None = found.get("_output")
    cache_read: int = found.get("_cache_read", 0)
    cache_creation: int = found.get("_cache_creation", 0)
    reasoning: int = found.get("_reasoning", 0)
    cached = cache_read + cache_creation
    if cached and (input_tokens or 0) < cached:  # a count that excludes the cache: add it
        input_tokens = min((input_tokens or 0) + cached, MAX_TOKENS)
        if input_tokens < cached:
            cache_read = cache_creation = 0
    if reasoning and (output_tokens or 0) < reasoning:
        output_tokens = min((output_tokens or 0) + reasoning, MAX_TOKENS)
    for name, value in (
        ("input_tokens", input_tokens),
        ("output_tokens", output_tokens),
        ("cache_read_input_tokens", cache_read),
        ("cache_creation_input_tokens", cache_creation),
        ("reasoning_output_tokens", reasoning),
    ):
        if value:
            event[name] = value


def _outcome(event: dict[str, Any], span: Span, found: Mapping[str, Any]) -> None:
    http_status: int | None = found.get("_http_status")
    if http_status is not None and 100 <= http_status <= 599:
        event["http_status"] = http_status
    else:
        http_status = None
    error_type: str | None = found.get("_error_type")
    failed = (
        span.status.code == Status.STATUS_CODE_ERROR
        or error_type is not None
        or (http_status is not None and http_status >= 400)
    )
    if not failed:
        event["status"] = "ok"
        return
    if error_type is None:
        error_type = _exception_type(span)
    if error_type is None:
        error_type = str(http_status) if http_status is not None else "_OTHER"
    event["status"] = "error"
    event["error_type"] = error_type


def _exception_type(span: Span) -> str | None:
    for span_event in span.events:
        if span_event.name == "exception":
            for kv in span_event.attributes:
                if kv.key == "exception.type":
                    return _error_type(kv.value)
    return None


def _error_type(value: AnyValue | None) -> str | None:
    """An error type; ``<class 'openai.NotFoundError'>`` (a class passed as the value) -> its name."""
    text = label_value(value)
    if text is not None and text.startswith("<class '") and text.endswith("'>"):
        text = text[8:-2] or None
    return text


def _invocation_parameters(event: dict[str, Any], raw: str | None) -> None:
    """OpenInference ``llm.invocation_parameters`` (a JSON object): fills what gen_ai.* left unset."""
    if raw is None or len(raw) > MAX_INVOCATION_PARAMS_CHARS:
        return
    try:
        params = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    if not isinstance(params, dict):
        return
    checks: tuple[tuple[str, tuple[str, ...], Callable[[object], Any]], ...] = (
        ("temperature", ("temperature",), py_float(0.0, 10.0)),
        ("top_p", ("top_p",), py_float(0.0, 1.0)),
        ("max_tokens", ("max_tokens", "max_completion_tokens", "max_output_tokens"), py_count),
        ("seed", ("seed",), py_int),
        ("stream", ("stream",), lambda v: v if isinstance(v, bool) else None),
    )
    for name, keys, convert in checks:
        if name in event:
            continue
        for key in keys:
            value = convert(params.get(key))
            if value is not None:
                event[name] = value
                break


# --- attribute access -------------------------------------------------------------------------------


def _attributes(kvs: Iterable[KeyValue]) -> dict[str, AnyValue]:
    return {kv.key: kv.value for kv in kvs}


def _time(unix_nanos: int) -> datetime:
    return _EPOCH + timedelta(microseconds=unix_nanos // 1000)


def _spec() -> dict[str, tuple[str, int, Callable[[AnyValue], Any]]]:
    """Attribute key -> (field, rank, converter). Fields starting with ``_`` are read, not copied."""
    groups: tuple[tuple[str, Callable[[AnyValue], Any], tuple[str, ...]], ...] = (
        ("_operation", token_value, ("gen_ai.operation.name",)),
        ("_oi_kind", label_value, ("openinference.span.kind",)),
        (
            "provider_name",
            token_value,
            ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"),
        ),
        ("request_model", label_value, ("gen_ai.request.model", "llm.model_name")),
        ("response_model", label_value, ("gen_ai.response.model",)),
        ("response_id", label_value, ("gen_ai.response.id",)),
        ("server_address", label_value, ("server.address",)),
        ("agent_name", label_value, ("gen_ai.agent.name", "agent.name")),
        ("tool_name", label_value, ("gen_ai.tool.name", "tool.name")),
        ("session_id", label_value, ("gen_ai.conversation.id", "session.id")),
        ("user_id", label_value, ("user.id", "enduser.id")),
        ("temperature", bounded_float(0.0, 10.0), ("gen_ai.request.temperature",)),
        ("top_p", bounded_float(0.0, 1.0), ("gen_ai.request.top_p",)),
        ("max_tokens", count_value, ("gen_ai.request.max_tokens",)),
        ("seed", integer_value, ("gen_ai.request.seed",)),
        ("stream", boolean_value, ("gen_ai.request.stream",)),
        ("finish_reasons", finish_reasons, ("gen_ai.response.finish_reasons",)),
        ("_params", string_value, ("llm.invocation_parameters",)),
        (
            "_input",
            count_value,
            ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"),
        ),
        (
            "_output",
            count_value,
            (
                "gen_ai.usage.output_tokens",
                "gen_ai.usage.completion_tokens",
                "llm.token_count.completion",
            ),
        ),
        (
            "_cache_read",
            count_value,
            (
                "gen_ai.usage.cache_read.input_tokens",
                "gen_ai.usage.cache_read_input_tokens",
                "llm.token_count.prompt_details.cache_read",
            ),
        ),
        (
            "_cache_creation",
            count_value,
            (
                "gen_ai.usage.cache_creation.input_tokens",
                "gen_ai.usage.cache_creation_input_tokens",
                "llm.token_count.prompt_details.cache_write",
            ),
        ),
        (
            "_reasoning",
            count_value,
            (
                "gen_ai.usage.reasoning.output_tokens",
                "gen_ai.usage.reasoning_tokens",
                "llm.token_count.completion_details.reasoning",
            ),
        ),
        ("_error_type", _error_type, ("error.type",)),
        ("_http_status", integer_value, ("http.response.status_code", "http.status_code")),
        ("_ttfc", bounded_float(0.0, math.inf), ("gen_ai.response.time_to_first_chunk",)),
    )
    return {
        key: (name, rank, convert)
        for name, convert, keys in groups
        for rank, key in enumerate(keys)
    }


_SPEC: Final = _spec()
