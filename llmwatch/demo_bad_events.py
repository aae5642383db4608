"""The demo's bad events: each breaks the event contract differently, so the demo shows them arriving in
``llm_dlq`` with their reasons (and the SDK shows it never raises into the app)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

__all__ = ["BAD_EVENTS", "bad_event"]

BAD_EVENTS: Final[tuple[dict[str, Any], ...]] = (
    {"input_tokens": -3},
    {"end_offset_s": -5},  # end_time before start_time
    {"span_kind": "robot"},
    {"provider_name": "Open AI"},
    {"start_time": "yesterday"},
)


def bad_event(index: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "event_id": f"demo-bad-{now.timestamp():.0f}-{index}",
        "service": "demo-bad-producer",
        "start_time": now.isoformat(),
        "end_time": now.isoformat(),
    }
    defect = dict(BAD_EVENTS[index % len(BAD_EVENTS)])
    shift = defect.pop("end_offset_s", None)
    if shift is not None:
        event["end_time"] = (now + timedelta(seconds=shift)).isoformat()
    event.update(defect)
    return event
