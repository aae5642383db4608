"""What every ``llmwatch`` command shares: the consoles, the common options, settings and logging."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.console import Console

from llmwatch.settings import Settings

__all__ = [
    "BootstrapOpt",
    "DataDirOpt",
    "DsnOpt",
    "_logging",
    "_settings",
    "console",
    "err_console",
]

console = Console()
err_console = Console(stderr=True)

BootstrapOpt = Annotated[
    str | None,
    typer.Option("--bootstrap", "-b", help="Kafka bootstrap servers [LLMWATCH_BOOTSTRAP]."),
]
DsnOpt = Annotated[
    str | None, typer.Option("--dsn", help="ClickHouse DSN [LLMWATCH_CLICKHOUSE_DSN].")
]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Local data folder [LLMWATCH_DATA_DIR].")
]


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment, with explicit CLI options taking precedence."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except Exception as exc:  # pydantic ValidationError: show it plainly, no traceback
        err_console.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc


# HTTP client libraries log every request at INFO (the judge, eval run): too loud for a log.
QUIET_LOGGERS: Final = ("httpx", "httpx2", "httpcore")


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if settings.log_level != "DEBUG":
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
