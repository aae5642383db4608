"""Heartbeat files of the side consumers (``llmwatch analyze``, ``judge``, ``canary``), named once.

A process touches its file once per loop; ``llmwatch healthcheck <process>`` reads the file's age. A
file that cannot be written is logged at debug level and never stops the process. Touching a local
file is the only I/O.
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["touch_heartbeat"]

log = logging.getLogger(__name__)


def touch_heartbeat(path: Path | None) -> None:
    """Touch ``path`` (creating its folder); nothing when None."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        log.debug("cannot touch heartbeat file %s", path, exc_info=True)
