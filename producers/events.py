"""The llmwatch event contract: one LLM call or chain step, schema version 1.

Guarantees:
- A validated :class:`LlmCallEvent` holds no impossible value: token counts are >= 0, cached tokens do not
  exceed input tokens, reasoning tokens do not exceed output tokens, ``end_time >= start_time``, time to
  first token fits inside the call, text fields are at most :data:`MAX_TEXT_CHARS` characters, and the span
  kind is one of :class:`SpanKind`. A rejected value raises ``pydantic.ValidationError`` whose message names
  the field and shows the bad value.
- Timestamps are timezone-aware UTC; a naive timestamp is taken as UTC.
- Parsing a dict accepts the OTel dotted names and the deprecated ones (see ``conventions.FIELD_ALIASES``).
- :meth:`LlmCallEvent.to_json` / :meth:`LlmCallEvent.to_wire` encode with orjson using the short field names.

Nothing here does I/O or blocks.
"""

from __future__ import annotations

import enum
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Final, Literal, Self

import orjson
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from producers.conventions import FIELD_ALIASES

__all__ = [
    "EVENT_SCHEMA_VERSION",
    "MAX_METADATA_ENTRIES",
    "MAX_TEXT_CHARS",
    "LlmCallEvent",
    "SpanKind",
    "Status",
    "TextCapture",
    "new_event_id",
    "new_span_id",
    "new_trace_id",
]

EVENT_SCHEMA_VERSION: Final = 1
# 1 MiB of characters: above the largest real prompts we have seen (~200k tokens), below Kafka's limits.
MAX_TEXT_CHARS: Final = 1_048_576
MAX_ID_CHARS: Final = 256
MAX_LABEL_CHARS: Final = 256
MAX_METADATA_ENTRIES: Final = 64
MAX_METADATA_VALUE_CHARS: Final = 4_096
MAX_FINISH_REASONS: Final = 16
# Token counts above this are not physically possible for one call (guards against unit mix-ups).
MAX_TOKENS_PER_CALL: Final = 100_000_000

_TOKEN_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


def is_identifier(value: object) -> bool:
    """Whether ``value`` is a lower-case identifier, as ``operation_name`` / ``provider_name`` must be."""
    return isinstance(value, str) and _TOKEN_RE.match(value) is not None


MetadataValue = str | int | float | bool | None


class SpanKind(enum.StrEnum):
    """What one event describes in a chain."""

    LLM = "llm"
    RETRIEVAL = "retrieval"
    TOOL = "tool"
    AGENT = "agent"
    CHAIN = "chain"
    EMBEDDING = "embedding"


class TextCapture(enum.StrEnum):
    """What may happen to a call's prompt and output text (``producers.texts``).

    - ``off``: no text leaves the app (the default).
    - ``analyze``: text travels on the short-retention texts topic, is analysed, and is never stored.
    - ``store``: text is analysed, then stored redacted, with the text TTL.
    """

    OFF = "off"
    ANALYZE = "analyze"
    STORE = "store"


class Status(enum.StrEnum):
    OK = "ok"
    ERROR = "error"


def new_event_id() -> str:
    return uuid.uuid4().hex


def new_trace_id() -> str:
    return uuid.uuid4().hex


def new_span_id() -> str:
    return uuid.uuid4().hex[:16]


def _alias(name: str) -> AliasChoices:
    return AliasChoices(name, *FIELD_ALIASES.get(name, ()))


def _text(name: str) -> Any:
    return Field(default=None, validation_alias=_alias(name))


class LlmCallEvent(BaseModel):
    """One LLM call or chain step (span). Field names mirror the OTel GenAI conventions."""

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        str_strip_whitespace=False,
        use_enum_values=True,
        validate_default=False,
    )

    schema_version: Literal[1] = EVENT_SCHEMA_VERSION
    event_id: str = Field(default_factory=new_event_id, min_length=1, max_length=MAX_ID_CHARS)
    start_time: datetime
    end_time: datetime

    # Who and where.
    service: str = Field(min_length=1, max_length=MAX_LABEL_CHARS)
    environment: str = Field(default="production", min_length=1, max_length=MAX_LABEL_CHARS)
    user_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    tenant_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    session_id: str | None = Field(
        default=None, max_length=MAX_ID_CHARS, validation_alias=_alias("session_id")
    )

    # Trace structure.
    trace_id: str = Field(default_factory=new_trace_id, min_length=1, max_length=MAX_ID_CHARS)
    span_id: str = Field(default_factory=new_span_id, min_length=1, max_length=MAX_ID_CHARS)
    parent_span_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    span_kind: SpanKind = SpanKind.LLM

    # What was called (OTel gen_ai.*).
    operation_name: str = Field(
        default="chat", max_length=MAX_LABEL_CHARS, validation_alias=_alias("operation_name")
    )
    provider_name: str | None = Field(
        default=None, max_length=MAX_LABEL_CHARS, validation_alias=_alias("provider_name")
    )
    request_model: str | None = Field(
        default=None, max_length=MAX_LABEL_CHARS, validation_alias=_alias("request_model")
    )
    response_model: str | None = Field(
        default=None, max_length=MAX_LABEL_CHARS, validation_alias=_alias("response_model")
    )
    response_id: str | None = Field(
        default=None, max_length=MAX_ID_CHARS, validation_alias=_alias("response_id")
    )
    server_address: str | None = Field(
        default=None, max_length=MAX_LABEL_CHARS, validation_alias=_alias("server_address")
    )
    agent_name: str | None = Field(
        default=None, max_length=MAX_LABEL_CHARS, validation_alias=_alias("agent_name")
    )
    tool_name: str | None = Field(
        default=None, max_length=MAX_LABEL_CHARS, validation_alias=_alias("tool_name")
    )

    # Prompt management.
    prompt_name: str | None = Field(
        default=None, max_length=MAX_LABEL_CHARS, validation_alias=_alias("prompt_name")
    )
    prompt_version: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    variant: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)

    # Request parameters.
    temperature: float | None = Field(
        default=None, ge=0.0, le=10.0, validation_alias=_alias("temperature")
    )
    top_p: float | None = Field(default=None, ge=0.0, le=1.0, validation_alias=_alias("top_p"))
    max_tokens: int | None = Field(
        default=None, ge=0, le=MAX_TOKENS_PER_CALL, validation_alias=_alias("max_tokens")
    )
    seed: int | None = Field(default=None, validation_alias=_alias("seed"))
    stream: bool = Field(default=False, validation_alias=_alias("stream"))

    # Usage (OTel: cache tokens are included in input, reasoning tokens in output).
    input_tokens: int = Field(
        default=0, ge=0, le=MAX_TOKENS_PER_CALL, validation_alias=_alias("input_tokens")
    )
    output_tokens: int = Field(
        default=0, ge=0, le=MAX_TOKENS_PER_CALL, validation_alias=_alias("output_tokens")
    )
    cache_read_input_tokens: int = Field(
        default=0, ge=0, le=MAX_TOKENS_PER_CALL, validation_alias=_alias("cache_read_input_tokens")
    )
    cache_creation_input_tokens: int = Field(
        default=0,
        ge=0,
        le=MAX_TOKENS_PER_CALL,
        validation_alias=_alias("cache_creation_input_tokens"),
    )
    reasoning_output_tokens: int = Field(
        default=0, ge=0, le=MAX_TOKENS_PER_CALL, validation_alias=_alias("reasoning_output_tokens")
    )

    # Response.
    finish_reasons: list[str] = Field(
        default_factory=list,
        max_length=MAX_FINISH_REASONS,
        validation_alias=_alias("finish_reasons"),
    )
    time_to_first_token_ms: float | None = Field(default=None, ge=0.0)

    # Outcome. An error_type or an HTTP status >= 400 makes the status "error".
    status: Status = Status.OK
    error_type: str | None = Field(
        default=None, max_length=MAX_LABEL_CHARS, validation_alias=_alias("error_type")
    )
    http_status: int | None = Field(
        default=None, ge=100, le=599, validation_alias=_alias("http_status")
    )

    # Provider rate-limit headers (x-ratelimit-remaining-*), when the app passes them on.
    ratelimit_remaining_requests: int | None = Field(default=None, ge=0)
    ratelimit_remaining_tokens: int | None = Field(default=None, ge=0)
    # Cost the provider itself reported for this call, in USD, when it does.
    reported_cost_usd: float | None = Field(default=None, ge=0.0)

    # Content: opt-in. The SDK moves captured text to the texts topic (``producers.texts``); the worker
    # never stores text that arrives on the events topic.
    input_text: str | None = _text("input_text")
    output_text: str | None = _text("output_text")
    # The expected answer, when the app knows it (golden traffic, a labelled replay): enables the
    # reference metrics and the correctness rubric of the evaluation path. Travels like the texts.
    reference_text: str | None = _text("reference_text")
    # Per-call text capture; None takes the SDK's setting. On the events topic: the mode that applied.
    text_capture: TextCapture | None = None

    metadata: dict[str, MetadataValue] = Field(default_factory=dict)

    @field_validator("start_time", "end_time", mode="after")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @field_validator("operation_name", "provider_name", mode="after")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and not is_identifier(value):
            raise ValueError(
                f"must be a lower-case identifier like 'chat' or 'openai', got {value!r}"
            )
        return value

    @field_validator("input_text", "output_text", "reference_text", mode="after")
    @classmethod
    def _text_size(cls, value: str | None) -> str | None:
        if value is not None and len(value) > MAX_TEXT_CHARS:
            raise ValueError(
                f"text of {len(value)} characters exceeds the limit of {MAX_TEXT_CHARS}"
            )
        return value

    @field_validator("metadata", mode="after")
    @classmethod
    def _metadata_size(cls, value: dict[str, MetadataValue]) -> dict[str, MetadataValue]:
        if len(value) > MAX_METADATA_ENTRIES:
            raise ValueError(
                f"{len(value)} metadata entries exceed the limit of {MAX_METADATA_ENTRIES}"
            )
        for key, item in value.items():
            if isinstance(item, str) and len(item) > MAX_METADATA_VALUE_CHARS:
                raise ValueError(
                    f"metadata[{key!r}] has {len(item)} characters, "
                    f"over the limit of {MAX_METADATA_VALUE_CHARS}"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.end_time < self.start_time:
            raise ValueError(
                f"end_time {self.end_time.isoformat()} is before "
                f"start_time {self.start_time.isoformat()}"
            )
        cached = self.cache_read_input_tokens + self.cache_creation_input_tokens
        if cached > self.input_tokens:
            raise ValueError(
                f"cache_read_input_tokens + cache_creation_input_tokens = {cached} exceeds "
                f"input_tokens = {self.input_tokens} (OTel counts cached tokens inside input)"
            )
        if self.reasoning_output_tokens > self.output_tokens:
            raise ValueError(
                f"reasoning_output_tokens = {self.reasoning_output_tokens} exceeds "
                f"output_tokens = {self.output_tokens} (OTel counts reasoning inside output)"
            )
        if self.time_to_first_token_ms is not None and self.time_to_first_token_ms > (
            self.duration_ms + 1.0
        ):
            raise ValueError(
                f"time_to_first_token_ms = {self.time_to_first_token_ms} exceeds the call's "
                f"duration of {self.duration_ms:.1f} ms"
            )
        failed = self.error_type is not None or (
            self.http_status is not None and self.http_status >= 400
        )
        if failed and self.status != Status.ERROR:
            object.__setattr__(self, "status", Status.ERROR.value)
        if self.status == Status.ERROR and self.error_type is None:
            fallback = str(self.http_status) if self.http_status is not None else "_OTHER"
            object.__setattr__(self, "error_type", fallback)
        return self

    @property
    def duration_ms(self) -> float:
        return (self.end_time - self.start_time).total_seconds() * 1000.0

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict sent on the wire (short names, no None values)."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_wire())

    @classmethod
    def from_json(cls, data: bytes | str) -> LlmCallEvent:
        return cls.model_validate_json(data)
