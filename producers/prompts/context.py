"""The prompt in use in this context, stamped on every event emitted inside ``with handle:``.

Guarantees:
- The active prompt lives in a ``contextvars.ContextVar`` (a stack: the innermost ``with`` wins), so it
  follows the thread, the asyncio task and tasks created inside it, like ``producers.sdk.tracking``'s
  current span.
- :func:`stamp` fills ``prompt_name`` / ``prompt_version`` / ``variant`` only where the event leaves
  them unset (missing or None). An event that names a *different* prompt or version is left entirely
  alone, so a call made for another prompt never gets this one's version or variant.
- :func:`with_prompt` (what ``Publisher.emit`` calls) costs one ``ContextVar.get()`` when no prompt is
  active and returns the event itself; otherwise a stamped copy (the caller's dict or model is never
  mutated). It never raises: an event it cannot read is returned unchanged, for ``emit`` to reject.

Nothing here blocks or does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Final

from producers.events import LlmCallEvent

__all__ = ["PROMPT_FIELDS", "active_prompt", "enter_prompt", "exit_prompt", "stamp", "with_prompt"]

PROMPT_FIELDS: Final = ("prompt_name", "prompt_version", "variant")

_ACTIVE: ContextVar[tuple[Mapping[str, str], ...]] = ContextVar("llmwatch_prompt", default=())


def active_prompt() -> Mapping[str, str] | None:
    """The innermost active prompt's event fields, if any."""
    stack = _ACTIVE.get()
    return stack[-1] if stack else None


def enter_prompt(fields: Mapping[str, str]) -> None:
    """Make ``fields`` the active prompt until the matching :func:`exit_prompt`."""
    _ACTIVE.set((*_ACTIVE.get(), dict(fields)))


def exit_prompt() -> None:
    """End the innermost active prompt (nothing happens if none is active)."""
    stack = _ACTIVE.get()
    if stack:
        _ACTIVE.set(stack[:-1])


def stamp(fields: dict[str, Any]) -> None:
    """Fill the active prompt's fields into ``fields`` where they are unset (in place)."""
    active = active_prompt()
    if active is not None:
        _fill(fields, active)


def _fill(fields: dict[str, Any], active: Mapping[str, str]) -> None:
    for name in ("prompt_name", "prompt_version"):
        given = fields.get(name)
        if given is not None and given != active.get(name):
            return  # the event is about another prompt or version
    for name, value in active.items():
        if fields.get(name) is None:
            fields[name] = value


def with_prompt(event: object) -> object:
    """``event`` stamped with the active prompt; ``event`` itself when none is active."""
    stack = _ACTIVE.get()
    if not stack:
        return event
    try:
        if isinstance(event, LlmCallEvent):
            current = {name: getattr(event, name) for name in PROMPT_FIELDS}
            _fill(current, stack[-1])
            update = {k: v for k, v in current.items() if getattr(event, k) is None and v}
            return event.model_copy(update=update) if update else event
        if isinstance(event, Mapping):
            data = dict(event)
            _fill(data, stack[-1])
            return data
    except Exception:  # a foreign Mapping that raises: emit rejects and counts it
        return event
    return event
