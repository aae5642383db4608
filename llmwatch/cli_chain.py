"""The ``llmwatch`` commands for chains and model servers: ``otlp``, ``scrape`` and ``trace``.

Registered on the main app by :func:`register` (``llmwatch.cli``); each reads its settings like every
other command (options, then ``LLMWATCH_*`` variables, then defaults).
"""

from __future__ import annotations

from typing import Annotated

import typer

from llmwatch.cli_common import (
    BootstrapOpt,
    DataDirOpt,
    DsnOpt,
    _logging,
    _settings,
    console,
    err_console,
)

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``otlp``, ``scrape`` and ``trace`` to ``app``."""
    app.command()(otlp)
    app.command()(scrape)
    app.command()(trace)


def otlp(
    bootstrap: BootstrapOpt = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Bind address [LLMWATCH_OTLP_HOST: 127.0.0.1].")
    ] = None,
    http_port: Annotated[
        int | None,
        typer.Option(
            "--http-port", help="OTLP/HTTP port, 0 for off [LLMWATCH_OTLP_HTTP_PORT: 4318]."
        ),
    ] = None,
    grpc_port: Annotated[
        int | None,
        typer.Option(
            "--grpc-port", help="OTLP/gRPC port, 0 for off [LLMWATCH_OTLP_GRPC_PORT: 4317]."
        ),
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Receive OpenTelemetry trace exports (OTLP/HTTP and gRPC) and publish their GenAI spans.

    Set LLMWATCH_OTLP_TOKEN to require 'Authorization: Bearer <token>' (kept out of the command line)."""
    from llmwatch.processes import run_otlp

    settings = _settings(
        bootstrap=bootstrap,
        otlp_host=host,
        otlp_http_port=http_port,
        otlp_grpc_port=grpc_port,
        data_dir=data_dir,
    )
    _logging(settings)
    raise typer.Exit(run_otlp(settings))


def scrape(
    urls: Annotated[
        list[str], typer.Argument(help="vLLM or TGI metrics URLs, e.g. http://gpu-1:8000/metrics.")
    ],
    interval: Annotated[
        float, typer.Option("--interval", min=1.0, help="Seconds between scrapes.")
    ] = 15.0,
    bootstrap: BootstrapOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Scrape self-hosted model servers' /metrics (queue depth, KV cache, tokens/s) into pipeline metrics."""
    from llmwatch.processes import stop_event_on_signals
    from llmwatch.scrape import run_scrape

    settings = _settings(bootstrap=bootstrap, data_dir=data_dir)
    _logging(settings)
    try:
        code = run_scrape(
            urls,
            bootstrap=settings.bootstrap,
            topic=settings.layout.metrics,
            interval_s=interval,
            stop=stop_event_on_signals(),
        )
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    raise typer.Exit(code)


def trace(
    trace_id: Annotated[str, typer.Argument(help="The trace id (as the SDK or OTLP sent it).")],
    dsn: DsnOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print one trace's span tree with timings, tokens and cost."""
    from llmwatch.trace_view import fetch_trace, render_trace
    from sinks.clickhouse import connect

    settings = _settings(clickhouse_dsn=dsn, data_dir=data_dir)
    client = connect(settings.dsn)
    try:
        spans = fetch_trace(client, settings.database, trace_id)
    finally:
        client.close()
    if not spans:
        err_console.print(f"no spans stored for trace {trace_id!r}")
        raise typer.Exit(1)
    console.print(render_trace(trace_id, spans))
