"""What ``watch.prompts.get(...)`` returns: one resolved prompt version, rendered, and a context that
stamps it on every event emitted inside it.

Guarantees:
- A :class:`PromptHandle` is immutable and safe to share between threads and tasks.
- ``with handle:`` / ``async with handle:`` makes it the active prompt (``producers.prompts.context``):
  every event emitted inside (``Publisher.emit``, ``track()``, the instrumented clients) gets
  ``prompt_name`` / ``prompt_version`` / ``variant`` unless it sets them itself. Entering and leaving
  never raise; the app's exceptions pass through.
- A fallback handle (``source == "fallback"``: the registry knew nothing) has variant ``"fallback"``;
  a template-string fallback has version ``""`` and number 0, and its :meth:`PromptHandle.fields` carry
  only ``prompt_name`` and ``variant``. A ``PromptVersionRecord`` fallback of the same prompt keeps
  its content-addressed version (its events then name that version, under variant ``"fallback"``).

Nothing here blocks or does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Literal

from producers.prompts.context import enter_prompt, exit_prompt
from producers.prompts.records import LabelMove, ParamValue, PromptVersionRecord
from producers.prompts.render import render

__all__ = ["CANARY_VARIANT", "FALLBACK_VARIANT", "PromptHandle", "Source", "fallback_handle"]

CANARY_VARIANT: Final = "canary"
FALLBACK_VARIANT: Final = "fallback"

Source = Literal["registry", "cache", "fallback"]


@dataclass(frozen=True, slots=True)
class PromptHandle:
    """One prompt version as served to the app, with its rendered text."""

    name: str
    version: str
    number: int  # the version's position in the prompt's history (1 = first), 0 if unknown
    label: str
    variant: str  # "canary", the label's name, or "fallback"
    template: str
    text: str
    model: str = ""
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    missing_variables: tuple[str, ...] = ()
    source: Source = "registry"

    @classmethod
    def of(
        cls,
        record: PromptVersionRecord,
        move: LabelMove,
        number: int,
        variables: Mapping[str, object],
        source: Source,
    ) -> PromptHandle:
        rendered = render(record.template, variables)
        variant = CANARY_VARIANT if record.version == move.canary else move.label
        return cls(
            name=record.name,
            version=record.version,
            number=number,
            label=move.label,
            variant=variant,
            template=record.template,
            text=rendered.text,
            model=record.model,
            params=dict(record.params),
            missing_variables=rendered.missing,
            source=source,
        )

    def fields(self) -> dict[str, str]:
        """The event fields naming this prompt: ``prompt_name``, ``prompt_version``, ``variant``."""
        if not self.version:
            return {"prompt_name": self.name, "variant": self.variant}
        return {"prompt_name": self.name, "prompt_version": self.version, "variant": self.variant}

    def __enter__(self) -> PromptHandle:
        enter_prompt(self.fields())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        exit_prompt()

    async def __aenter__(self) -> PromptHandle:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        exit_prompt()


def fallback_handle(
    name: str, label: str, fallback: str | PromptVersionRecord, variables: Mapping[str, object]
) -> PromptHandle:
    """The handle for the caller's fallback: a template string or a prompt version."""
    if isinstance(fallback, PromptVersionRecord):
        template, model, params = fallback.template, fallback.model, dict(fallback.params)
        version = fallback.version if fallback.name == name else ""
    else:
        template, model, params, version = str(fallback), "", {}, ""
    rendered = render(template, variables)
    return PromptHandle(
        name=name,
        version=version,
        number=0,
        label=label,
        variant=FALLBACK_VARIANT,
        template=template,
        text=rendered.text,
        model=model,
        params=params,
        missing_variables=rendered.missing,
        source="fallback",
    )
