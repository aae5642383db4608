"""Producers: the llmwatch event contract, the wire format and the SDK that applications call."""

from producers.events import EVENT_SCHEMA_VERSION, LlmCallEvent, SpanKind, Status

__all__ = ["EVENT_SCHEMA_VERSION", "LlmCallEvent", "SpanKind", "Status"]
