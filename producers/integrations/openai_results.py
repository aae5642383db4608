"""What an OpenAI response, stream chunk or header says, written onto the call's span.

Used by :mod:`producers.integrations.openai`: usage (OpenTelemetry style: cached tokens inside input
tokens, reasoning tokens inside output tokens; a response without usage is marked ``llmwatch.usage`` =
``missing``), finish reasons (derived from the status for the Responses API), rate-limit headroom from
the ``x-ratelimit-remaining-*`` headers, output text when captured, and the stream recorders that
collect all of it chunk by chunk and mark the first token. Every function only reads attributes and
stores values; the caller guards them, so nothing here reaches the app.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from producers.integrations.calls import USAGE_KEY, CallSpan, header_int

__all__ = [
    "REMAINING_REQUESTS_HEADER",
    "REMAINING_TOKENS_HEADER",
    "ChatStream",
    "ResponsesStream",
    "StreamRecorder",
    "record_chat",
    "record_embeddings",
    "record_headers",
    "record_response",
    "record_usage",
]

log = logging.getLogger("producers.integrations")

REMAINING_REQUESTS_HEADER: Final = "x-ratelimit-remaining-requests"
REMAINING_TOKENS_HEADER: Final = "x-ratelimit-remaining-tokens"
_INCOMPLETE_REASONS: Final = {"max_output_tokens": "length"}


def record_headers(span: CallSpan, headers: Any) -> None:
    if headers is None:
        return
    span.set(
        ratelimit_remaining_requests=header_int(headers, REMAINING_REQUESTS_HEADER),
        ratelimit_remaining_tokens=header_int(headers, REMAINING_TOKENS_HEADER),
    )


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def record_usage(span: CallSpan, usage: Any) -> None:
    """Chat / embeddings usage (prompt_tokens...) or Responses usage (input_tokens...)."""
    if usage is None:
        span.add_metadata(**{USAGE_KEY: "missing"})
        return
    if hasattr(usage, "input_tokens"):
        input_tokens = _count(usage.input_tokens)
        output_tokens = _count(getattr(usage, "output_tokens", None))
        in_details = getattr(usage, "input_tokens_details", None)
        out_details = getattr(usage, "output_tokens_details", None)
    else:
        input_tokens = _count(getattr(usage, "prompt_tokens", None))
        output_tokens = _count(getattr(usage, "completion_tokens", None))
        in_details = getattr(usage, "prompt_tokens_details", None)
        out_details = getattr(usage, "completion_tokens_details", None)
    cached = _count(getattr(in_details, "cached_tokens", None))
    written = _count(getattr(in_details, "cache_write_tokens", None))
    reasoning = _count(getattr(out_details, "reasoning_tokens", None))
    # The event contract rejects details larger than their totals; drop such a detail, keep the rest.
    room = input_tokens or 0
    if cached is not None and cached > room:
        cached = None
    if written is not None and written + (cached or 0) > room:
        written = None
    if reasoning is not None and reasoning > (output_tokens or 0):
        reasoning = None
    span.recorder.set_usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_input_tokens=cached,
        cache_creation_input_tokens=written,
        reasoning_output_tokens=reasoning,
    )


def _text_of(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def record_chat(span: CallSpan, completion: Any, capture: bool) -> None:
    choices = list(getattr(completion, "choices", None) or ())
    span.recorder.set_response(
        model=_text_of(getattr(completion, "model", None)),
        response_id=_text_of(getattr(completion, "id", None)),
        finish_reasons=[str(c.finish_reason) for c in choices if c.finish_reason],
    )
    record_usage(span, getattr(completion, "usage", None))
    if capture:
        parts = [getattr(c.message, "content", None) or "" for c in choices]
        if any(parts):
            span.recorder.set_text(output="\n".join(parts))


def _response_finish(response: Any) -> list[str]:
    status = getattr(response, "status", None)
    if status == "completed":
        calls = any(
            getattr(item, "type", "") in ("function_call", "custom_tool_call")
            for item in getattr(response, "output", None) or ()
        )
        return ["tool_calls" if calls else "stop"]
    if status == "incomplete":
        reason = getattr(getattr(response, "incomplete_details", None), "reason", None)
        reason = str(reason or "incomplete")
        return [_INCOMPLETE_REASONS.get(reason, reason)]
    if status == "failed":
        return ["error"]
    return [str(status)] if isinstance(status, str) and status else []


def record_response(span: CallSpan, response: Any, capture: bool, text: str | None = None) -> None:
    """A Responses API ``Response`` (the body, or the one a stream's final event carries)."""
    span.recorder.set_response(
        model=_text_of(getattr(response, "model", None)),
        response_id=_text_of(getattr(response, "id", None)),
        finish_reasons=_response_finish(response),
    )
    record_usage(span, getattr(response, "usage", None))
    if getattr(response, "status", None) == "failed":
        error = getattr(response, "error", None)
        span.set(status="error", error_type=str(getattr(error, "code", None) or "response_failed"))
    if capture:
        output = text if text is not None else _text_of(getattr(response, "output_text", None))
        if output:
            span.recorder.set_text(output=output)


def record_embeddings(span: CallSpan, result: Any) -> None:
    span.recorder.set_response(model=_text_of(getattr(result, "model", None)))
    record_usage(span, getattr(result, "usage", None))


class StreamRecorder:
    """Per-stream state; ``item`` runs on the app's thread for every chunk, ``end`` once."""

    def __init__(self, span: CallSpan, capture: bool) -> None:
        self.span = span
        self.texts: dict[int, list[str]] | None = {} if capture else None
        self.first = False

    def mark_first(self) -> None:
        if not self.first:
            self.first = True
            self.span.first_token()

    def joined(self) -> str | None:
        if not self.texts:
            return None
        return "\n".join("".join(self.texts[index]) for index in sorted(self.texts))

    def item(self, chunk: Any) -> None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError


class ChatStream(StreamRecorder):
    def __init__(self, span: CallSpan, capture: bool) -> None:
        super().__init__(span, capture)
        self.model: str | None = None
        self.id: str | None = None
        self.usage: Any = None
        self.finish: dict[int, str] = {}

    def item(self, chunk: Any) -> None:
        if self.id is None and chunk.id:  # Azure's first chunk (content filter results) has none
            self.id, self.model = chunk.id, chunk.model or None
        usage = chunk.usage
        if usage is not None:
            self.usage = usage
        for choice in chunk.choices:
            delta = choice.delta
            if delta is not None:
                content = delta.content
                if content:
                    self.mark_first()
                    if self.texts is not None:
                        self.texts.setdefault(choice.index, []).append(content)
                elif delta.tool_calls or delta.refusal or delta.function_call:
                    self.mark_first()
            if choice.finish_reason:
                self.finish[choice.index] = choice.finish_reason

    def end(self) -> None:
        span = self.span
        span.recorder.set_response(
            model=self.model,
            response_id=self.id,
            finish_reasons=[self.finish[i] for i in sorted(self.finish)] if self.finish else None,
        )
        record_usage(span, self.usage)
        text = self.joined()
        if text:
            span.recorder.set_text(output=text)


_RESPONSE_CONTENT_DELTAS: Final = frozenset(
    {"response.output_text.delta", "response.refusal.delta"}
)
_RESPONSE_TOOL_DELTAS: Final = frozenset(
    {
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.code_interpreter_call_code.delta",
        "response.mcp_call_arguments.delta",
    }
)
_RESPONSE_FINAL: Final = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesStream(StreamRecorder):
    def __init__(self, span: CallSpan, capture: bool) -> None:
        super().__init__(span, capture)
        self.started: Any = None
        self.final: Any = None
        self.error: str | None = None

    def item(self, event: Any) -> None:
        kind = event.type
        if kind in _RESPONSE_CONTENT_DELTAS:
            self.mark_first()
            if self.texts is not None and event.delta:
                self.texts.setdefault(event.output_index, []).append(event.delta)
        elif kind in _RESPONSE_TOOL_DELTAS:
            self.mark_first()
        elif kind in _RESPONSE_FINAL:
            self.final = event.response
        elif kind == "response.created":
            self.started = event.response
        elif kind == "error":
            self.error = str(getattr(event, "code", None) or "error")

    def end(self) -> None:
        span = self.span
        if self.final is not None:
            record_response(span, self.final, self.texts is not None, self.joined() or "")
        else:
            if self.started is not None:
                span.recorder.set_response(
                    model=_text_of(getattr(self.started, "model", None)),
                    response_id=_text_of(getattr(self.started, "id", None)),
                )
            span.add_metadata(**{USAGE_KEY: "missing"})
            text = self.joined()
            if text:
                span.recorder.set_text(output=text)
        if self.error is not None:
            span.set(status="error", error_type=self.error)
