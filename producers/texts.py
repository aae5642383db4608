"""The text record: a call's captured prompt and output, on the short-retention ``texts`` topic.

Why a topic of its own: the metrics path (events -> worker -> calls) never carries text, so text
neither slows it nor outlives the texts topic's retention (``streams.topics.DEFAULT_TEXT_RETENTION_HOURS``,
24 h by default) on the broker. The SDK writes one text record per event whose text capture is
``analyze`` or ``store`` (``producers.events.TextCapture``); the text-analysis consumer
(``streams.text.consumer``) reads them, and stores text only when the mode is ``store``, redacted.

Format: UTF-8 JSON, batched like events (``producers.wire``). A record carries the event's ids and the
labels the guardrail rollups and the judge sampling rules filter on (service, model, prompt version and
variant, span kind, status), never the event's metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field

from producers.events import (
    MAX_ID_CHARS,
    MAX_LABEL_CHARS,
    MAX_TEXT_CHARS,
    SpanKind,
    TextCapture,
)

__all__ = [
    "TEXT_FIELDS",
    "TEXT_RECORD_VERSION",
    "TextRecord",
    "capture_of",
    "split_text_record",
]

TEXT_RECORD_VERSION: Final = 1
TEXT_FIELDS: Final = ("input_text", "output_text", "reference_text")
# Event fields copied into the text record, so that analysis can be grouped without the event.
_LABEL_FIELDS: Final = (
    "event_id",
    "trace_id",
    "span_id",
    "span_kind",
    "service",
    "environment",
    "provider_name",
    "request_model",
    "response_model",
    "response_id",
    "prompt_name",
    "prompt_version",
    "variant",
    "status",
    "error_type",
    "user_id",
    "tenant_id",
    "start_time",
)


class TextRecord(BaseModel):
    """One call's captured text, as the text-analysis consumer reads it."""

    model_config = ConfigDict(extra="ignore", frozen=True, use_enum_values=False)

    text_record: int = TEXT_RECORD_VERSION
    capture: TextCapture
    event_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    trace_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    span_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    span_kind: SpanKind = SpanKind.LLM
    service: str = Field(min_length=1, max_length=MAX_LABEL_CHARS)
    environment: str = Field(default="production", max_length=MAX_LABEL_CHARS)
    provider_name: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    request_model: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    response_model: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    prompt_name: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    prompt_version: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    variant: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    response_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    status: str = Field(default="ok", max_length=MAX_LABEL_CHARS)  # the call's status: ok or error
    error_type: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    user_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    tenant_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    start_time: datetime
    input_text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    output_text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    # The expected answer (``LlmCallEvent.reference_text``): for the evaluation path, never analysed.
    reference_text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    truncated: bool = False  # a text was cut to MAX_TEXT_CHARS

    @property
    def start_ms(self) -> int:
        """``start_time`` in epoch milliseconds (UTC)."""
        return int(self.start_time.timestamp() * 1000)

    @property
    def model(self) -> str:
        """The model that answered, else the one asked for, else ``""``."""
        return self.response_model or self.request_model or ""

    @classmethod
    def from_json(cls, data: bytes | str) -> TextRecord:
        return cls.model_validate_json(data)


def split_text_record(data: dict[Any, Any], capture: TextCapture) -> bytes | None:
    """Take the text fields out of an event's wire dict and return its text record's JSON.

    ``data`` is modified: the text fields are removed, and ``text_capture`` records the mode that
    applied. Returns None when the mode is ``off`` or there is no text. Text longer than
    ``MAX_TEXT_CHARS`` is cut to it (and the record says so in ``truncated``)."""
    texts = {name: data.pop(name, None) for name in TEXT_FIELDS}
    data["text_capture"] = capture.value
    if capture is TextCapture.OFF:
        return None
    kept = {n: t for n, t in texts.items() if isinstance(t, str) and t}
    if not kept:
        return None
    record: dict[str, Any] = {"text_record": TEXT_RECORD_VERSION, "capture": capture.value}
    for name in _LABEL_FIELDS:
        value = data.get(name)
        if value is not None:
            record[name] = value
    truncated = False
    for name, text in kept.items():
        if len(text) > MAX_TEXT_CHARS:
            text, truncated = text[:MAX_TEXT_CHARS], True
        record[name] = text
    if truncated:
        record["truncated"] = True
    return orjson.dumps(record, option=orjson.OPT_NAIVE_UTC)


def capture_of(data: Mapping[Any, Any], default: TextCapture) -> TextCapture:
    """The text capture that applies to one event's wire dict: its own, else ``default``.

    An unknown per-event value falls back to ``off``: a typo never sends text."""
    value = data.get("text_capture")
    if value is None:
        return default
    try:
        return TextCapture(value)
    except ValueError:
        return TextCapture.OFF
