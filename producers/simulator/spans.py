"""Span drafts: the fields of one event with its time range as millisecond offsets into its trace.

:class:`SpanFactory` draws each span's outcome from an injected ``random.Random``:

- LLM calls: lognormal input/output tokens (capped by ``max_tokens``, finish reason "length"), cache-read
  tokens on some calls of caching models, reasoning tokens on reasoning models (inside output tokens),
  duration = time to first token (heavy-tailed, grows with the uncached prompt) + reasoning time +
  output tokens / speed. A streaming call reports ``time_to_first_token_ms`` < duration. A call slower than
  the service's client timeout becomes a timeout. Failures (429, 5xx, timeout) carry no usage.
- Embedding, retrieval and tool spans: heavy-tailed durations around per-kind medians.

The factory never reads the clock; :mod:`producers.simulator.traffic` anchors drafts to timestamps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Final

from producers.events import SpanKind
from producers.simulator.sampling import HeavyTail, hex_id, lognormal
from producers.simulator.scenario import CallPlan, ModelProfile, ServiceProfile, Variant

__all__ = [
    "ERROR_RATE_LIMIT",
    "ERROR_SERVER",
    "ERROR_TIMEOUT",
    "ERROR_TOOL",
    "TOOLS",
    "Draft",
    "SpanFactory",
    "TraceContext",
]

ERROR_RATE_LIMIT: Final = "rate_limit"
ERROR_SERVER: Final = "server_error"
ERROR_TIMEOUT: Final = "timeout"
ERROR_TOOL: Final = "tool_error"
HTTP_TOO_MANY_REQUESTS: Final = 429

INPUT_SIGMA: Final = 0.6
OUTPUT_SIGMA: Final = 0.7
SPEED_SIGMA: Final = 0.2
REASONING_RATIO: Final = 2.0  # median reasoning tokens per visible output token
TOOL_CALL_OUTPUT_SHARE: Final = 0.25  # a tool-call step writes short arguments, not an answer
PREFILL_TOKENS_PER_S: Final = 25_000.0
CACHE_MIN_TOKENS: Final = 1_024
CACHE_BLOCK_TOKENS: Final = 128
CACHE_HIT_SHARE: Final = 0.45
CACHE_WRITE_SHARE: Final = 0.06
RATE_LIMIT_MS: Final = 150.0
SERVER_ERROR_MS: Final = 800.0
EMBEDDING_QUERY_TOKENS: Final = 40.0
RETRIEVAL_MS: Final = 35.0
RETRIEVAL_TOP_K: Final = 8
TOOL_ERROR_SHARE: Final = 0.02
# tool name -> median duration in ms
TOOLS: Final[dict[str, float]] = {
    "search_code": 150.0,
    "read_file": 20.0,
    "run_tests": 4_000.0,
    "apply_patch": 60.0,
    "web_fetch": 700.0,
}
_TOOL_NAMES: Final = tuple(TOOLS)
_HEAVY_TAIL: Final = HeavyTail()


class Draft:
    """One span before it is anchored in time: event fields plus offsets (ms) from the trace start."""

    __slots__ = ("end_ms", "fields", "start_ms")

    def __init__(self, fields: dict[str, Any], start_ms: float, end_ms: float) -> None:
        self.fields = fields
        self.start_ms = start_ms
        self.end_ms = end_ms

    @property
    def error_type(self) -> str | None:
        error: str | None = self.fields.get("error_type")
        return error


@dataclass(slots=True)
class TraceContext:
    """What every span of one trace shares."""

    service: ServiceProfile
    model: ModelProfile
    embedding: ModelProfile | None
    plan: CallPlan
    variant: Variant
    base: dict[str, Any]  # service, environment, user/tenant/session ids, trace_id
    root_span_id: str | None = None


class SpanFactory:
    """Draws span drafts: content from ``rng``, ids (event, span, response) from ``ids``."""

    __slots__ = ("_ids", "_rng")

    def __init__(self, rng: random.Random, ids: random.Random) -> None:
        self._rng = rng
        self._ids = ids

    def _fields(self, ctx: TraceContext, kind: SpanKind, operation: str) -> dict[str, Any]:
        fields = dict(ctx.base)
        fields["event_id"] = hex_id(self._ids, 128)
        fields["span_id"] = hex_id(self._ids, 64)
        fields["parent_span_id"] = ctx.root_span_id
        fields["span_kind"] = kind.value
        fields["operation_name"] = operation
        return fields

    def root(self, ctx: TraceContext, kind: SpanKind) -> Draft:
        """The trace's root span; its end is set by :meth:`close_root` once children are laid out."""
        agent = kind is SpanKind.AGENT
        fields = self._fields(ctx, kind, "invoke_agent" if agent else "invoke_workflow")
        if agent:
            fields["agent_name"] = ctx.service.name
        ctx.root_span_id = fields["span_id"]
        return Draft(fields, 0.0, 0.0)

    @staticmethod
    def close_root(root: Draft, end_ms: float, error_type: str | None) -> None:
        root.end_ms = end_ms
        if error_type is not None:
            root.fields["error_type"] = error_type

    def retrieval(self, ctx: TraceContext, start_ms: float) -> Draft:
        fields = self._fields(ctx, SpanKind.RETRIEVAL, "retrieval")
        fields["metadata"] = {"db.system": "pgvector", "retrieval.top_k": RETRIEVAL_TOP_K}
        duration = lognormal(self._rng, RETRIEVAL_MS, 0.4) * _HEAVY_TAIL(self._rng)
        return Draft(fields, start_ms, start_ms + duration)

    def tool(self, ctx: TraceContext, start_ms: float) -> Draft:
        rng = self._rng
        name = _TOOL_NAMES[int(rng.random() * len(_TOOL_NAMES))]
        fields = self._fields(ctx, SpanKind.TOOL, "execute_tool")
        fields["tool_name"] = name
        if rng.random() < TOOL_ERROR_SHARE:
            fields["error_type"] = ERROR_TOOL
        duration = lognormal(rng, TOOLS[name], 0.5) * _HEAVY_TAIL(rng)
        return Draft(fields, start_ms, start_ms + duration)

    def embedding(self, ctx: TraceContext, start_ms: float) -> Draft:
        model = ctx.embedding
        if model is None:
            raise ValueError(f"service {ctx.service.name!r} has no embedding model, got None")
        fields = self._model_fields(ctx, model, SpanKind.EMBEDDING)
        fields["input_tokens"] = max(1, int(lognormal(self._rng, EMBEDDING_QUERY_TOKENS, 0.5)))
        duration = model.ttft_ms * _HEAVY_TAIL(self._rng)
        return Draft(fields, start_ms, start_ms + duration)

    def _model_fields(
        self, ctx: TraceContext, model: ModelProfile, kind: SpanKind
    ) -> dict[str, Any]:
        fields = self._fields(ctx, kind, model.operation)
        fields["provider_name"] = model.provider
        fields["request_model"] = model.model
        fields["server_address"] = model.server_address
        return fields

    def llm(
        self,
        ctx: TraceContext,
        start_ms: float,
        *,
        tool_step: bool = False,
        input_scale: float = 1.0,
    ) -> Draft:
        """One chat call; a tool step ends with a tool call and writes few output tokens."""
        rng, plan, model, service = self._rng, ctx.plan, ctx.model, ctx.service
        fields = self._model_fields(ctx, model, SpanKind.LLM)
        fields["prompt_name"] = plan.prompt_name or service.prompt.name
        fields["prompt_version"] = plan.prompt_version
        fields["variant"] = plan.variant or ctx.variant.name
        fields["temperature"] = service.temperature
        fields["max_tokens"] = service.max_tokens
        stream = rng.random() < service.stream_share
        fields["stream"] = stream
        failures = plan.failures
        draw = rng.random()
        if draw < failures.rate_limit:
            if model.rate_limited:
                return self._rate_limited(fields, model, start_ms)
        elif draw < failures.rate_limit + failures.server_error:
            return self._server_error(fields, model, plan, start_ms)
        elif draw < failures.rate_limit + failures.server_error + failures.timeout:
            return self._timeout(fields, service, start_ms)
        duration = self._usage(fields, ctx, stream, tool_step, input_scale)
        if duration > service.timeout_s * 1000.0:
            return self._timeout(_drop_usage(fields), service, start_ms)
        return Draft(fields, start_ms, start_ms + duration)

    def _usage(
        self,
        fields: dict[str, Any],
        ctx: TraceContext,
        stream: bool,
        tool_step: bool,
        input_scale: float,
    ) -> float:
        """Fills tokens, finish reason and headers of a successful call; returns its duration in ms."""
        rng, plan, model, service = self._rng, ctx.plan, ctx.model, ctx.service
        median_in = service.input_tokens * input_scale * plan.input_tokens_factor
        input_tokens = max(16, int(lognormal(rng, median_in, INPUT_SIGMA)))
        median_out = service.output_tokens * ctx.variant.output_tokens_factor
        median_out *= plan.output_tokens_factor * (TOOL_CALL_OUTPUT_SHARE if tool_step else 1.0)
        visible = max(1, int(lognormal(rng, median_out, OUTPUT_SIGMA)))
        reasoning = int(visible * lognormal(rng, REASONING_RATIO, 0.6)) if model.reasoning else 0
        finish = model.finish.tool if tool_step else model.finish.stop
        if visible + reasoning > service.max_tokens:
            reasoning = min(reasoning, service.max_tokens - 1)
            visible = service.max_tokens - reasoning
            finish = model.finish.length
        cached = self._cache(fields, model, input_tokens)
        speed = lognormal(rng, model.tokens_per_s, SPEED_SIGMA)
        prefill_ms = (input_tokens - cached) / PREFILL_TOKENS_PER_S * 1000.0
        first_ms = (model.ttft_ms * _HEAVY_TAIL(rng) + prefill_ms) * plan.latency_factor
        first_ms += reasoning / speed * 1000.0 * plan.latency_factor
        # latency_factor scales the whole call, including the time the incident's extra tokens take.
        scale = plan.latency_factor / plan.output_tokens_factor
        generate_ms = max(1.0, visible / speed * 1000.0 * scale)
        fields["input_tokens"] = input_tokens
        fields["output_tokens"] = visible + reasoning
        fields["reasoning_output_tokens"] = reasoning
        fields["finish_reasons"] = [finish]
        fields["response_model"] = model.response_model
        if model.response_id_prefix:
            fields["response_id"] = model.response_id_prefix + hex_id(self._ids, 96)
        if stream:
            fields["time_to_first_token_ms"] = round(first_ms, 3)
        if model.ratelimit_headers:
            fields["ratelimit_remaining_requests"] = _remaining(rng, model.requests_per_min)
            fields["ratelimit_remaining_tokens"] = _remaining(rng, model.tokens_per_min)
        return first_ms + generate_ms

    def _cache(self, fields: dict[str, Any], model: ModelProfile, input_tokens: int) -> int:
        """Sets cache-read or cache-creation tokens on some calls; returns the cache-read count."""
        if not model.prompt_cache or input_tokens < CACHE_MIN_TOKENS:
            return 0
        draw = self._rng.random()
        if draw >= CACHE_HIT_SHARE + CACHE_WRITE_SHARE:
            return 0
        prefix = int(input_tokens * (0.5 + 0.4 * self._rng.random()))
        prefix -= prefix % CACHE_BLOCK_TOKENS
        if draw < CACHE_HIT_SHARE:
            fields["cache_read_input_tokens"] = prefix
            return prefix
        if model.cache_writes:
            fields["cache_creation_input_tokens"] = prefix
        return 0

    def _rate_limited(self, fields: dict[str, Any], model: ModelProfile, start_ms: float) -> Draft:
        rng = self._rng
        fields["http_status"] = HTTP_TOO_MANY_REQUESTS
        fields["error_type"] = ERROR_RATE_LIMIT
        if model.ratelimit_headers:
            out_of_requests = rng.random() < 0.5
            fields["ratelimit_remaining_requests"] = (
                0 if out_of_requests else _remaining(rng, model.requests_per_min // 50)
            )
            fields["ratelimit_remaining_tokens"] = (
                _remaining(rng, model.tokens_per_min // 50) if out_of_requests else 0
            )
        return Draft(fields, start_ms, start_ms + lognormal(rng, RATE_LIMIT_MS, 0.5))

    def _server_error(
        self, fields: dict[str, Any], model: ModelProfile, plan: CallPlan, start_ms: float
    ) -> Draft:
        rng = self._rng
        statuses = model.server_error_statuses
        fields["http_status"] = statuses[int(rng.random() * len(statuses))]
        fields["error_type"] = ERROR_SERVER
        duration = lognormal(rng, SERVER_ERROR_MS, 0.8) * plan.latency_factor
        return Draft(fields, start_ms, start_ms + duration)

    def _timeout(self, fields: dict[str, Any], service: ServiceProfile, start_ms: float) -> Draft:
        fields["error_type"] = ERROR_TIMEOUT
        duration = service.timeout_s * 1000.0 + lognormal(self._rng, 5.0, 0.5)
        return Draft(fields, start_ms, start_ms + duration)


_USAGE_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "reasoning_output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "finish_reasons",
    "response_model",
    "response_id",
    "time_to_first_token_ms",
    "ratelimit_remaining_requests",
    "ratelimit_remaining_tokens",
)


def _drop_usage(fields: dict[str, Any]) -> dict[str, Any]:
    for name in _USAGE_FIELDS:
        fields.pop(name, None)
    return fields


def _remaining(rng: random.Random, limit: int) -> int:
    """A remaining-quota header value: usually plenty left, sometimes close to the limit."""
    return int(limit * (1.0 - rng.random() ** 3))
