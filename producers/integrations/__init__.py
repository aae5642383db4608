"""One-line instrumentation of provider clients: ``watch.instrument(client)``.

:func:`instrument` patches a client object in place (only that object: other clients of the same class
are untouched) and returns it. It recognises the client by its package: ``openai`` clients go to
:mod:`producers.integrations.openai`, ``anthropic`` clients to :mod:`producers.integrations.anthropic`;
the package is imported only then, so an app installs only the clients it uses.

Guarantees: instrumenting never raises into the app. An object it does not know, or a failure while
patching, is logged as a warning and the client is returned unchanged; instrumenting a client twice
patches it once. The app's own calls, results and exceptions pass through unchanged (see each module).
"""

from __future__ import annotations

import logging
from typing import Any, Final, TypeVar

from producers.sdk.tracking import EventSink

__all__ = ["INSTRUMENTED_MARK", "instrument"]

log = logging.getLogger("producers.integrations")

# Set on an instrumented client, so a second instrument() call is a no-op.
INSTRUMENTED_MARK: Final = "_llmwatch_instrumented"

C = TypeVar("C")


def _package(client: object) -> str:
    return type(client).__module__.split(".", 1)[0]


def instrument(sink: EventSink, client: C, **options: Any) -> C:
    """Instrument ``client`` in place and return it; never raises (see the module docstring)."""
    try:
        if getattr(client, INSTRUMENTED_MARK, False):
            return client
        package = _package(client)
        if package == "openai":
            from producers.integrations.openai import instrument_openai

            instrument_openai(sink, client, **options)
        elif package == "anthropic":
            from producers.integrations.anthropic import instrument_anthropic

            instrument_anthropic(sink, client, **options)
        else:
            log.warning(
                "llmwatch: cannot instrument a %s client (%r): only openai and anthropic clients",
                package,
                type(client).__qualname__,
            )
            return client
        setattr(client, INSTRUMENTED_MARK, True)
    except Exception:
        log.warning(
            "llmwatch: could not instrument %r; it is left as it was", client, exc_info=True
        )
    return client
