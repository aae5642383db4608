"""Builders of normalized call rows and dead letters for the sink tests (unit and integration).

Times derive from the wall clock at import (``BASE_TIME``: a day ago, on a whole minute), so rows stay
inside every table's TTL and the worker's accepted event window on any run date.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from producers.events import LlmCallEvent
from streams.ingest.records import DeadLetter
from streams.ingest.validate import CostFields, SourcePosition, to_call_row
from tests.clock import Clock, to_ms

__all__ = ["BASE_TIME", "call_event", "call_rows", "dead_letter"]

# call_rows(.., start=i * 1000) spans a few hours from here: all of it stays in the past.
BASE_TIME: Final = Clock.read().ago(days=1)


def call_event(index: int, **overrides: Any) -> LlmCallEvent:
    start = BASE_TIME + timedelta(seconds=index)
    fields: dict[str, Any] = {
        "event_id": f"evt-{index:06d}",
        "start_time": start,
        "end_time": start + timedelta(milliseconds=250 + index % 100),
        "service": f"svc-{index % 3}",
        "environment": "production",
        "provider_name": "openai",
        "request_model": f"gpt-{index % 2}",
        "input_tokens": 100 + index,
        "output_tokens": 20,
        "finish_reasons": ["stop"],
        "metadata": {"team": "search", "attempt": index % 4},
        "input_text": f"question {index}",
        "output_text": f"answer {index}",
    }
    fields.update(overrides)
    return LlmCallEvent(**fields)


def call_rows(
    count: int, *, start: int = 0, cost: CostFields | None = None, topic: str = "t.events"
) -> list[dict[str, Any]]:
    """``count`` normalized rows with distinct event ids ``evt-<start>`` .. (priced unless told)."""
    rows = []
    for index in range(start, start + count):
        event = call_event(index)
        priced = cost if cost is not None else CostFields(0.0001 * index, 0.0001 * index, "calc")
        rows.append(
            to_call_row(
                event,
                SourcePosition(topic, 0, index),
                sent_at_ms=None,
                cost=priced,
                input_text=event.input_text or "",
                output_text=event.output_text or "",
            )
        )
    return rows


def dead_letter(offset: int, payload: bytes = b'{"not": "an event"}') -> DeadLetter:
    return DeadLetter(
        failed_at=to_ms(BASE_TIME),
        reason="service: Field required",
        source_topic="t.events",
        source_partition=0,
        source_offset=offset,
        index_in_record=-1,
        payload=payload,
    )
