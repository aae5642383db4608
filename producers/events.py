"""The llmwatch event contract: one LLM call or chain step, schema version 1.

Guarantees:
- A validated :class:`LlmCallEvent` holds no impossible value: token counts are >= 0, cached tokens do not
  exceed input tokens, reasoning tokens do not exceed output tokens, ``end_time >= start_time``, time to
  first token fits inside the call, text fields are at most :data:`MAX_TEXT_CHARS` characters, and the span
  kind is one of :class:`SpanKind`. A rejected value raises ``pydantic.ValidationError`` whose message names
  the field and shows the bad value.
- Timestamps are timezone-aware UTC; a naive timestamp is taken as UTC.
- Every per-field check runs inside pydantic-core (types, ranges, lengths, the identifier pattern, enum
  values, the metadata limits); Python runs only for text fields that are present (their length check
  names the length) and once per event for what spans fields (``_consistent``: UTC, time order, token
  sums, status). So a ``TypeAdapter(list[LlmCallEvent])`` validates a batch mostly in Rust, with
  exactly the outcome of validating each event alone (``streams.ingest.batch_validate``).
- Parsing a dict accepts the OTel dotted names and the deprecated ones (see ``conventions.FIELD_ALIASES``).
- :meth:`LlmCallEvent.to_json` / :meth:`LlmCallEvent.to_wire` encode with orjson using the short field names.

Nothing here does I/O or blocks.
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, Self

import orjson
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema

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

# A lower-case identifier, as operation_name / provider_name must be. Anchored with \A..\z semantics in
# both engines: pydantic-core's Rust regex ``$`` and Python's ``fullmatch`` (``re``'s ``$`` would also
# match before a trailing newline).
_IDENTIFIER: Final = r"[a-z0-9][a-z0-9_.\-]*"
_IDENTIFIER_RE: Final = re.compile(_IDENTIFIER)
_IDENTIFIER_MESSAGE: Final = "must be a lower-case identifier like 'chat' or 'openai'"


def is_identifier(value: object) -> bool:
    """Whether ``value`` is a lower-case identifier, as ``operation_name`` / ``provider_name`` must be."""
    return isinstance(value, str) and _IDENTIFIER_RE.fullmatch(value) is not None


MetadataValue = str | int | float | bool | None


@dataclass(frozen=True, eq=False)
class _Then:
    """Annotated marker: after the annotated type's own validation, a second pydantic-core check whose
    failure is reported as one error of ``error_type`` with ``message`` (the input is the value).

    ``eq=False``: core schemas are dicts, and ``Annotated`` metadata must hash.
    """

    schema: CoreSchema
    error_type: str
    message: str

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        check = core_schema.custom_error_schema(
            self.schema, self.error_type, custom_error_message=self.message
        )
        return core_schema.chain_schema([handler(source), check])


class _EnumValues:
    """Annotated marker: an enum field validated as a literal of its values, giving the value (a str),
    as ``use_enum_values`` does, without the Python call that setting makes per field. The rejection
    reads the same ("Input should be 'llm', 'retrieval', ...")."""

    def __get_pydantic_core_schema__(
        self, source: type[enum.Enum], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.literal_schema([member.value for member in source])


_ENUM_VALUES: Final = _EnumValues()


def _text_size(value: str) -> str:
    # Python only for a present text: the message names the length, which a core error cannot.
    if len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"text of {len(value)} characters exceeds the limit of {MAX_TEXT_CHARS}")
    return value


Identifier = Annotated[
    str,
    StringConstraints(max_length=MAX_LABEL_CHARS),
    _Then(core_schema.str_schema(pattern=f"^{_IDENTIFIER}$"), "identifier", _IDENTIFIER_MESSAGE),
]
Text = Annotated[str, AfterValidator(_text_size)]
# A metadata value parses as MetadataValue always did (a lax union); then, its exact type now known, a
# string is held to MAX_METADATA_VALUE_CHARS (a bounded string inside the lax union would let a long
# numeric string fall through to int or float instead of being rejected).
_BOUNDED_METADATA_VALUE: Final = core_schema.nullable_schema(
    core_schema.union_schema(
        [
            core_schema.str_schema(strict=True, max_length=MAX_METADATA_VALUE_CHARS),
            core_schema.int_schema(strict=True),
            core_schema.float_schema(strict=True),
            core_schema.bool_schema(strict=True),
        ]
    )
)
BoundedMetadataValue = Annotated[
    MetadataValue,
    _Then(
        _BOUNDED_METADATA_VALUE,
        "metadata_value_too_long",
        f"metadata string values are limited to {MAX_METADATA_VALUE_CHARS} characters",
    ),
]


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


_ERROR: Final = Status.ERROR.value  # a plain str: no enum attribute lookup per event


def new_event_id() -> str:
    return uuid.uuid4().hex


def new_trace_id() -> str:
    return uuid.uuid4().hex


def new_span_id() -> str:
    return uuid.uuid4().hex[:16]


def _as_utc(name: str, value: datetime) -> datetime:
    """``value`` in UTC (naive: taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{name} {value.isoformat()} cannot be expressed in UTC (out of the datetime range)"
        ) from None


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
    span_kind: Annotated[SpanKind, _ENUM_VALUES] = SpanKind.LLM

    # What was called (OTel gen_ai.*).
    operation_name: Identifier = Field(default="chat", validation_alias=_alias("operation_name"))
    provider_name: Identifier | None = Field(default=None, validation_alias=_alias("provider_name"))
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
    status: Annotated[Status, _ENUM_VALUES] = Status.OK
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
    input_text: Text | None = _text("input_text")
    output_text: Text | None = _text("output_text")
    # The expected answer, when the app knows it (golden traffic, a labelled replay): enables the
    # reference metrics and the correctness rubric of the evaluation path. Travels like the texts.
    reference_text: Text | None = _text("reference_text")
    # Per-call text capture; None takes the SDK's setting. On the events topic: the mode that applied.
    text_capture: Annotated[TextCapture, _ENUM_VALUES] | None = None

    metadata: dict[str, BoundedMetadataValue] = Field(
        default_factory=dict, max_length=MAX_METADATA_ENTRIES
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # The one Python step per event: what spans fields. Reads and writes __dict__ directly (the
        # model is frozen; this runs for every event the worker ingests).
        values = self.__dict__
        start, end = values["start_time"], values["end_time"]
        if start.tzinfo is not UTC:
            start = values["start_time"] = _as_utc("start_time", start)
        if end.tzinfo is not UTC:
            end = values["end_time"] = _as_utc("end_time", end)
        if end < start:
            raise ValueError(f"end_time {end.isoformat()} is before start_time {start.isoformat()}")
        input_tokens = values["input_tokens"]
        cached = values["cache_read_input_tokens"] + values["cache_creation_input_tokens"]
        if cached > input_tokens:
            raise ValueError(
                f"cache_read_input_tokens + cache_creation_input_tokens = {cached} exceeds "
                f"input_tokens = {input_tokens} (OTel counts cached tokens inside input)"
            )
        reasoning, output_tokens = values["reasoning_output_tokens"], values["output_tokens"]
        if reasoning > output_tokens:
            raise ValueError(
                f"reasoning_output_tokens = {reasoning} exceeds "
                f"output_tokens = {output_tokens} (OTel counts reasoning inside output)"
            )
        first_token = values["time_to_first_token_ms"]
        if first_token is not None and first_token > self.duration_ms + 1.0:
            raise ValueError(
                f"time_to_first_token_ms = {first_token} exceeds the call's "
                f"duration of {self.duration_ms:.1f} ms"
            )
        error_type, http_status = values["error_type"], values["http_status"]
        if error_type is not None or (http_status is not None and http_status >= 400):
            values["status"] = _ERROR
        if error_type is None and values["status"] == _ERROR:
            values["error_type"] = str(http_status) if http_status is not None else "_OTHER"
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
