"""``llmwatch drift``: run the drift monitor, and pin or clear its baseline (``drift baseline ...``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from llmwatch.cli_common import BootstrapOpt, DataDirOpt, _logging, _settings, console, err_console

__all__ = ["register"]

drift_app = typer.Typer(
    help="Run the drift monitor (no subcommand): drift of the calls' shape and of prompt/output "
    "embeddings per scope, against a trailing reference or the pinned baseline.",
    invoke_without_command=True,
)
baseline_app = typer.Typer(
    help="The pinned reference: a known-good period every window is compared with.",
    no_args_is_help=True,
)
drift_app.add_typer(baseline_app, name="baseline")

FromOpt = Annotated[
    str, typer.Option("--from", help="Start of the period: now-2h, now-1d or an ISO time (UTC).")
]
ToOpt = Annotated[str, typer.Option("--to", help="End of the period: now, now-30m or an ISO time.")]


def register(app: typer.Typer) -> None:
    app.add_typer(drift_app, name="drift")


@drift_app.callback()
def drift(ctx: typer.Context, bootstrap: BootstrapOpt = None) -> None:
    """Run the drift monitor (no subcommand): shape and embedding drift against a trailing reference,
    or the pinned baseline when one is set."""
    if ctx.invoked_subcommand is not None:
        return
    from llmwatch.processes import run_drift

    settings = _settings(bootstrap=bootstrap)
    _logging(settings)
    raise typer.Exit(run_drift(settings))


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@baseline_app.command("set")
def baseline_set(
    from_: FromOpt = "now-2h",
    to: ToOpt = "now",
    bootstrap: BootstrapOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Pin the calls and texts of a period as the drift reference (the running monitor picks it up)."""
    from llmwatch.grafana import parse_time
    from llmwatch.processes import drift_configs, drift_encoder
    from streams.drift.baseline import save_baseline
    from streams.drift.baseline_build import build_baseline

    settings = _settings(bootstrap=bootstrap, data_dir=data_dir)
    now = datetime.now(UTC)
    try:
        start_at, end_at = parse_time(from_, now), parse_time(to, now)
    except ValueError as exc:
        err_console.print(f"[red]bad period:[/red] {exc}")
        raise typer.Exit(2) from exc
    start, end = int(start_at.timestamp() * 1000), int(end_at.timestamp() * 1000)
    if end <= start:
        err_console.print(f"[red]bad period:[/red] --from {from_!r} is not before --to {to!r}")
        raise typer.Exit(2)
    _shape, embedding = drift_configs(settings)
    encoder = drift_encoder(settings) if embedding is not None else None
    with console.status(f"reading {_when(start)} .. {_when(end)}"):
        baseline = build_baseline(
            settings.bootstrap, settings.layout, start, end, embedding=embedding, encoder=encoder
        )
    baseline.set_at_ms = int(now.timestamp() * 1000)
    baseline.set_by = settings.prompt_user or ""
    baseline.encoder = settings.drift_encoder if encoder is not None else ""
    save_baseline(settings.drift_baseline_dir, baseline)
    _print(baseline.summary())
    console.print(f"pinned: {settings.drift_baseline_dir}")


@baseline_app.command("show")
def baseline_show(data_dir: DataDirOpt = None) -> None:
    """Show the pinned baseline: its period and the scopes it covers."""
    from streams.drift.baseline import load_baseline

    settings = _settings(data_dir=data_dir)
    try:
        baseline = load_baseline(settings.drift_baseline_dir, settings.drift_sample_size)
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if baseline is None:
        console.print("no baseline pinned: windows are compared with the trailing reference")
        return
    _print(baseline.summary())


@baseline_app.command("clear")
def baseline_clear(data_dir: DataDirOpt = None) -> None:
    """Remove the pinned baseline: the trailing reference returns."""
    from streams.drift.baseline import clear_baseline

    settings = _settings(data_dir=data_dir)
    found = clear_baseline(settings.drift_baseline_dir)
    console.print("baseline cleared" if found else "no baseline was pinned")


def _print(summary: dict[str, object]) -> None:
    from rich.table import Table

    start, end = int(str(summary["start_ms"])), int(str(summary["end_ms"]))
    console.print(f"period: {_when(start)} .. {_when(end)}, encoder: {summary['encoder'] or '-'}")
    table = Table("scope", "kind", "calls / texts sampled")
    for key, kind in (("shape_scopes", "shape"), ("text_scopes", "texts")):
        for scope, count in dict(summary[key]).items():  # type: ignore[call-overload]
            table.add_row(str(scope), kind, str(count))
    console.print(table)
