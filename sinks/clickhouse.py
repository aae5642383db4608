"""Open a ClickHouse client from the one DSN setting.

DSN forms (``clickhouse_connect.get_client(dsn=...)`` understands both):

- ``chdb:///abs/path`` (the embedded default): an in-process chdb engine on a data folder. chdb allows
  one data folder per process at a time, so close a client before opening another folder.
  ``chdb://memory`` is an in-memory engine (tests, throwaway demos).
- ``http(s)://user:password@host:8123/db``: a ClickHouse server.

Guarantees: :func:`connect` either returns a client that answered the handshake, or raises
:class:`ClickHouseConnectError` whose message names the DSN with its password masked (never the
password), chained to the driver's exception. A malformed DSN raises ``ValueError`` before any I/O.

:func:`connect_retrying` is the sink's start-up: while ClickHouse is unavailable (a chdb folder
locked by another process, a server restarting) it retries :func:`connect` with exponential backoff
(:data:`RETRY_INITIAL_S` doubling up to :data:`RETRY_MAX_S`) for up to ``patience_s``, then raises the
last error; it returns None as soon as ``stop`` is set. Nothing is consumed before it returns, so
waiting loses nothing: the topics keep the records.

What can block: connecting to a server waits up to the driver's connect timeout (10 s by default);
:func:`connect_retrying` up to ``patience_s`` plus one connect.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

__all__ = [
    "CHDB_MEMORY",
    "CONNECT_PATIENCE_S",
    "RETRY_INITIAL_S",
    "RETRY_MAX_S",
    "SCHEMES",
    "ClickHouseConnectError",
    "Client",
    "connect",
    "connect_retrying",
    "mask_dsn",
]

log = logging.getLogger(__name__)

CHDB_SCHEME: Final = "chdb"
CHDB_MEMORY: Final = "memory"
SCHEMES: Final = frozenset({CHDB_SCHEME, "http", "https"})
_MASK: Final = "***"
RETRY_INITIAL_S: Final = 0.5
RETRY_MAX_S: Final = 5.0
# Long enough for a server restart or a folder held by a migration; a wrong DSN still fails in minutes.
CONNECT_PATIENCE_S: Final = 120.0


class ClickHouseConnectError(RuntimeError):
    """The ClickHouse client could not be created or did not answer."""


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ``***`` (safe to log)."""
    try:
        parts = urlsplit(dsn)
        password = parts.password
    except ValueError:
        return "<unparseable DSN>"
    if password is None:
        return dsn
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:{_MASK}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _check_dsn(dsn: str) -> None:
    parts = urlsplit(dsn)
    if parts.scheme not in SCHEMES:
        raise ValueError(
            f"ClickHouse DSN scheme must be one of {sorted(SCHEMES)}, got {mask_dsn(dsn)!r}"
        )
    if parts.scheme == CHDB_SCHEME:
        absolute = parts.netloc == "" and parts.path.startswith("/")
        if not (absolute or (parts.netloc == CHDB_MEMORY and parts.path in ("", "/"))):
            raise ValueError(
                "a chdb DSN is chdb:///absolute/path or chdb://memory, "
                f"got {mask_dsn(dsn)!r} (a relative path would be read as a database name)"
            )
    elif not parts.hostname:
        raise ValueError(f"ClickHouse DSN has no host, got {mask_dsn(dsn)!r}")


def connect(dsn: str) -> Client:
    """A client for ``dsn``; raises ClickHouseConnectError (masked DSN) if it cannot connect."""
    _check_dsn(dsn)
    try:
        return clickhouse_connect.get_client(dsn=dsn)
    except Exception as exc:  # driver errors: OperationalError, DatabaseError, ProgrammingError
        raise ClickHouseConnectError(
            f"cannot connect to ClickHouse at {mask_dsn(dsn)!r}: {_scrub(str(exc), dsn)}"
        ) from exc


def connect_retrying(
    dsn: str, stop: threading.Event, patience_s: float = CONNECT_PATIENCE_S
) -> Client | None:
    """:func:`connect`, retried with backoff while ClickHouse is unavailable; None once ``stop`` is set.

    A malformed DSN raises ValueError at once; after ``patience_s`` the last ClickHouseConnectError.
    """
    if patience_s < 0:
        raise ValueError(f"patience_s must be >= 0, got {patience_s!r}")
    deadline = time.monotonic() + patience_s
    delay = RETRY_INITIAL_S
    attempt = 1
    while not stop.is_set():
        try:
            return connect(dsn)
        except ClickHouseConnectError as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            wait = min(delay, left)
            log.warning(
                "ClickHouse unavailable (attempt %d), retrying in %.1f s: %s", attempt, wait, exc
            )
            stop.wait(wait)
            delay = min(delay * 2, RETRY_MAX_S)
            attempt += 1
    return None


def _scrub(message: str, dsn: str) -> str:
    """Driver messages may echo the URL; never let the password through."""
    password = urlsplit(dsn).password
    return message.replace(password, _MASK) if password else message
