"""Validate all the events of one record in one pydantic-core call, with the per-event outcome.

The worker's hot path: ``TypeAdapter(list[LlmCallEvent])`` over a record's whole events list, so the
contract (``producers.events.LlmCallEvent``, still the one source of truth) runs in Rust but for one
Python step per event (its cross-field check) instead of one Python round trip per field check.

Guarantees:
- :func:`validate_events` gives, for every position, exactly what the per-event reference
  (``streams.ingest.validate._validate``) gives: an equal ``LlmCallEvent`` or the same reason string.
  Reasons always come from the reference itself (a failing position is looked up in the batch error's
  ``loc``, then described by ``_validate``), so the two cannot drift; the same ``TimeBounds`` apply.
- Ids an event lacks are derived from its position exactly as the reference derives them
  (``_with_derived_ids``); events that carry all three ids, as the SDK sends them, are not copied.
- A record with invalid events costs one more batch call over the valid rest (plus one reference call
  per invalid event); a record of valid events costs one call. Never raises for JSON-decoded input;
  nothing here does I/O or blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from producers.events import LlmCallEvent
from streams.ingest.validate import (
    _DERIVED_IDS,
    DEFAULT_TIME_BOUNDS,
    WHOLE_RECORD,
    SourcePosition,
    TimeBounds,
    _validate,
    _with_derived_ids,
)

__all__ = ["BatchOutcome", "validate_events"]

_EVENTS: Final = TypeAdapter(list[LlmCallEvent])
_IDS: Final = frozenset(_DERIVED_IDS)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Events this far inside both time bounds skip TimeBounds.reason: it compares float-derived epoch ms,
# which can differ from an exact datetime comparison by about a millisecond at the bound itself.
_BOUND_MARGIN: Final = timedelta(milliseconds=2)


@dataclass(slots=True)
class BatchOutcome:
    """The valid events with their positions (ascending), and why each other position was rejected."""

    events: list[LlmCallEvent] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)


def validate_events(
    raws: list[Any],
    source: SourcePosition,
    record_ms: int,
    bounds: TimeBounds = DEFAULT_TIME_BOUNDS,
    *,
    whole_record: bool = False,
) -> BatchOutcome:
    """Validate ``raws`` (one record's decoded events) as the per-event path would, in one batch call.

    ``whole_record``: the record is one bare event, addressed (and its ids derived) as index -1.
    """

    def reference(position: int) -> LlmCallEvent | str:
        index = WHOLE_RECORD if whole_record else position
        return _validate(raws[position], index, source, record_ms, bounds)

    # Outcomes the reference decides (items that are not objects, events the batch rejects) and
    # time-bound rejections, by position; they override the batch's.
    alone: dict[int, LlmCallEvent | str] = {}
    # The only per-event Python before validation: which items are not objects or lack an id.
    odd = [i for i, raw in enumerate(raws) if not (isinstance(raw, dict) and raw.keys() >= _IDS)]
    prepared: list[Any] = raws
    positions = list(range(len(raws)))
    if odd:
        prepared = list(raws)
        for i in odd:
            raw = raws[i]
            if isinstance(raw, dict):
                prepared[i] = _with_derived_ids(raw, source, WHOLE_RECORD if whole_record else i)
            else:
                alone[i] = reference(i)
        if alone:
            positions = [i for i in positions if i not in alone]
            prepared = [prepared[i] for i in positions]
    try:
        events = _EVENTS.validate_python(prepared)
    except ValidationError as exc:
        failed = _failed_items(exc, len(prepared))
        for k in sorted(failed):
            alone[positions[k]] = reference(positions[k])
        positions = [p for k, p in enumerate(positions) if k not in failed]
        prepared = [item for k, item in enumerate(prepared) if k not in failed]
        try:
            events = _EVENTS.validate_python(prepared)
        except ValidationError:  # never expected: an event's outcome depends on itself alone
            alone.update((p, reference(p)) for p in positions)
            positions, events = [], []
    for k in _out_of_bounds(events, record_ms, bounds):
        reason = bounds.reason(events[k], record_ms)
        if reason is not None:
            alone[positions[k]] = reason
    if not alone:
        return BatchOutcome(events=events, positions=positions)
    merged: dict[int, LlmCallEvent | str] = dict(zip(positions, events, strict=True))
    merged.update(alone)
    outcome = BatchOutcome()
    for position in sorted(merged):
        result = merged[position]
        if isinstance(result, str):
            outcome.rejected[position] = result
        else:
            outcome.positions.append(position)
            outcome.events.append(result)
    return outcome


def _failed_items(exc: ValidationError, count: int) -> set[int]:
    """The list indexes a batch error names; all of them if one error names none."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    failed = {err["loc"][0] if err["loc"] else None for err in errors}
    if all(isinstance(k, int) and 0 <= k < count for k in failed):
        return failed  # type: ignore[return-value]
    return set(range(count))


def _out_of_bounds(events: list[LlmCallEvent], record_ms: int, bounds: TimeBounds) -> list[int]:
    """Indexes of ``events`` for which ``bounds.reason`` must be asked (a superset of the rejected)."""
    if type(bounds) is not TimeBounds:  # a subclass may judge differently: ask it about every event
        return list(range(len(events)))
    try:
        oldest = _EPOCH + timedelta(milliseconds=record_ms - bounds.max_age_ms) + _BOUND_MARGIN
        newest = _EPOCH + timedelta(milliseconds=record_ms + bounds.max_future_ms) - _BOUND_MARGIN
    except OverflowError:
        return list(range(len(events)))
    return [
        k for k, event in enumerate(events) if event.start_time < oldest or event.end_time > newest
    ]
