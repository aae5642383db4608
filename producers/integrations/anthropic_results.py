"""What an Anthropic message, stream event or header says, written onto the call's span.

Used by :mod:`producers.integrations.anthropic`. Usage is reported OpenTelemetry-style: input tokens are
``input_tokens + cache_read_input_tokens + cache_creation_input_tokens`` (Anthropic's ``input_tokens``
excludes both), with the cache reads and writes also in their own fields. In a stream, ``message_delta``
usage counts are cumulative totals, so each replaces the previous value (a count a delta leaves out keeps
its ``message_start`` value). Also: the stop reason as the finish reason, the first content delta as the
first token, the ``anthropic-ratelimit-*-remaining`` headers, the output text when captured. Every
function only reads attributes and stores values; the caller guards them, so nothing here reaches the app.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from producers.integrations.calls import USAGE_KEY, CallSpan, header_int

__all__ = [
    "REQUESTS_REMAINING_HEADER",
    "TOKENS_REMAINING_HEADER",
    "StreamCollector",
    "record_failure",
    "record_headers",
    "record_message",
    "set_usage",
    "token_count",
]

log = logging.getLogger("producers.integrations")

REQUESTS_REMAINING_HEADER: Final = "anthropic-ratelimit-requests-remaining"
TOKENS_REMAINING_HEADER: Final = "anthropic-ratelimit-tokens-remaining"


def token_count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def set_usage(
    span: CallSpan, input_tokens: int, output_tokens: int, cache_read: int, cache_creation: int
) -> None:
    span.recorder.set_usage(
        input_tokens=input_tokens + cache_read + cache_creation,
        output_tokens=output_tokens,
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_creation,
    )


def record_headers(span: CallSpan, headers: Any) -> None:
    try:
        span.set(
            ratelimit_remaining_requests=header_int(headers, REQUESTS_REMAINING_HEADER),
            ratelimit_remaining_tokens=header_int(headers, TOKENS_REMAINING_HEADER),
        )
    except Exception:
        log.debug("llmwatch: could not read anthropic rate-limit headers", exc_info=True)


def record_failure(span: CallSpan, exc: BaseException) -> None:
    """End the span with the app's exception (an ``APIStatusError`` also gives its headers)."""
    try:
        response = getattr(exc, "response", None)
        if response is not None:
            record_headers(span, getattr(response, "headers", None))
    except Exception:
        log.debug("llmwatch: could not read an anthropic error response", exc_info=True)
    span.end(exc)


def record_message(span: CallSpan, message: Any, capture: bool) -> None:
    """Fields of a finished (non-streamed) ``Message``."""
    try:
        stop = getattr(message, "stop_reason", None)
        span.set(
            response_model=getattr(message, "model", None),
            response_id=getattr(message, "id", None),
            finish_reasons=[stop] if isinstance(stop, str) else None,
        )
        usage = getattr(message, "usage", None)
        if usage is None:
            span.add_metadata(**{USAGE_KEY: "missing"})
        else:
            set_usage(
                span,
                token_count(getattr(usage, "input_tokens", 0)),
                token_count(getattr(usage, "output_tokens", 0)),
                token_count(getattr(usage, "cache_read_input_tokens", 0)),
                token_count(getattr(usage, "cache_creation_input_tokens", 0)),
            )
        if capture:
            texts = [
                block.text
                for block in getattr(message, "content", None) or ()
                if getattr(block, "type", None) == "text" and isinstance(block.text, str)
            ]
            span.recorder.set_text(output="".join(texts))
    except Exception:
        log.debug("llmwatch: could not read an anthropic message", exc_info=True)


class StreamCollector:
    """Reads a stream's raw events as they pass (``on_item``) and sets the fields at its end."""

    __slots__ = (
        "cache_creation",
        "cache_read",
        "first",
        "input_tokens",
        "output_tokens",
        "span",
        "started",
        "stop_reason",
        "texts",
    )

    def __init__(self, span: CallSpan, capture: bool) -> None:
        self.span = span
        self.texts: list[str] | None = [] if capture else None
        self.first = False
        self.started = False
        self.input_tokens = self.output_tokens = self.cache_read = self.cache_creation = 0
        self.stop_reason: str | None = None

    def item(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            if not self.first:
                self.first = True
                self.span.first_token()
            if self.texts is not None:
                delta = event.delta
                if getattr(delta, "type", None) == "text_delta":
                    self.texts.append(delta.text)
        elif kind == "message_start":
            message = event.message
            self.span.set(response_model=message.model, response_id=message.id)
            usage = message.usage
            if usage is not None:
                self.started = True
                self.input_tokens = token_count(usage.input_tokens)
                self.output_tokens = token_count(usage.output_tokens)
                self.cache_read = token_count(usage.cache_read_input_tokens)
                self.cache_creation = token_count(usage.cache_creation_input_tokens)
        elif kind == "message_delta":
            stop = getattr(event.delta, "stop_reason", None)
            if isinstance(stop, str):
                self.stop_reason = stop
            usage = event.usage
            if usage is not None:
                # Cumulative totals: replace; a count left out keeps its message_start value.
                self.started = True
                self.output_tokens = token_count(usage.output_tokens)
                if usage.input_tokens is not None:
                    self.input_tokens = token_count(usage.input_tokens)
                if usage.cache_read_input_tokens is not None:
                    self.cache_read = token_count(usage.cache_read_input_tokens)
                if usage.cache_creation_input_tokens is not None:
                    self.cache_creation = token_count(usage.cache_creation_input_tokens)

    def end(self) -> None:
        span = self.span
        if self.started:
            set_usage(
                span, self.input_tokens, self.output_tokens, self.cache_read, self.cache_creation
            )
        else:
            span.add_metadata(**{USAGE_KEY: "missing"})
        if self.stop_reason is not None:
            span.set(finish_reasons=[self.stop_reason])
        if self.texts is not None:
            span.recorder.set_text(output="".join(self.texts))
