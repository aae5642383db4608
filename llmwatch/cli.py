"""The ``llmwatch`` command line: one entry point for every process and on-call task.

Every option falls back to its ``LLMWATCH_*`` environment variable, then to the documented default
(see ``llmwatch.settings``). Commands that run forever stop cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmwatch.cli_chain import register as register_chain_commands
from llmwatch.cli_common import (
    BootstrapOpt,
    DataDirOpt,
    DsnOpt,
    _logging,
    _settings,
    console,
    err_console,
)
from llmwatch.cli_drift import register as register_drift_commands
from llmwatch.cli_eval import register as register_eval_commands
from llmwatch.cli_prompts import register as register_prompt_commands

__all__ = ["app", "main"]

app = typer.Typer(
    name="llmwatch",
    help="Monitor LLM applications: Kafka -> Faust -> ClickHouse -> Grafana.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(
    help="Create and inspect the pipeline's Kafka topics.", no_args_is_help=True
)
app.add_typer(topics_app, name="topics")
dashboards_app = typer.Typer(
    help="Grafana dashboards and alert rules as code.", no_args_is_help=True
)
app.add_typer(dashboards_app, name="dashboards")
guard_app = typer.Typer(
    help="Guardrail detectors: PII, prompt injection, content.", no_args_is_help=True
)
app.add_typer(guard_app, name="guard")


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 9092,
    engine: Annotated[str, typer.Option(help="tansu (default) or mock (librdkafka).")] = "tansu",
    create_topics: Annotated[bool, typer.Option(help="Create the pipeline's topics.")] = True,
) -> None:
    """Run the embedded Kafka-wire broker on 127.0.0.1 until interrupted."""
    settings = _settings(bootstrap=f"127.0.0.1:{port}")
    _logging(settings)
    from llmwatch.broker_engines import start_broker
    from streams.topics import faust_internal_specs

    specs = settings.layout.specs() + faust_internal_specs(settings.worker_id)
    running = start_broker(engine, port=port, specs=specs)
    if create_topics:
        from streams.admin import ensure_topics

        ensure_topics(running.bootstrap, settings.layout.specs())
    console.print(f"[green]{engine} broker ready[/green] on {running.bootstrap} (Ctrl-C to stop)")
    if engine == "mock":
        console.print("mock cluster: run the worker with LLMWATCH_DECLARE_TOPICS=false")
    try:
        running.wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


@topics_app.command("create")
def topics_create(bootstrap: BootstrapOpt = None) -> None:
    """Create missing topics with the configured partitions and retention."""
    from streams.admin import ensure_topics

    settings = _settings(bootstrap=bootstrap)
    created = ensure_topics(settings.bootstrap, settings.layout.specs())
    console.print(f"created: {', '.join(created) or 'nothing (all exist)'}")


@topics_app.command("list")
def topics_list(bootstrap: BootstrapOpt = None) -> None:
    """Show the pipeline's topics and their partition counts on the broker."""
    from confluent_kafka.admin import AdminClient

    settings = _settings(bootstrap=bootstrap)
    meta = AdminClient({"bootstrap.servers": settings.bootstrap}).list_topics(timeout=10)
    table = Table("topic", "configured partitions", "broker partitions")
    for spec in settings.layout.specs():
        found = meta.topics.get(spec.name)
        table.add_row(
            spec.name, str(spec.partitions), str(len(found.partitions)) if found else "missing"
        )
    console.print(table)


@app.command()
def worker(bootstrap: BootstrapOpt = None, data_dir: DataDirOpt = None) -> None:
    """Run the Faust stream worker (ingest, dead letters, analytics)."""
    from llmwatch.processes import run_worker

    settings = _settings(bootstrap=bootstrap, data_dir=data_dir)
    raise typer.Exit(run_worker(settings))


@app.command()
def sink(bootstrap: BootstrapOpt = None, dsn: DsnOpt = None, data_dir: DataDirOpt = None) -> None:
    """Run the ClickHouse sink (batched inserts, offsets committed after each insert)."""
    from llmwatch.processes import run_sink

    settings = _settings(bootstrap=bootstrap, clickhouse_dsn=dsn, data_dir=data_dir)
    _logging(settings)
    raise typer.Exit(run_sink(settings))


@app.command()
def analyze(bootstrap: BootstrapOpt = None, data_dir: DataDirOpt = None) -> None:
    """Run the text-analysis consumer: guardrails on captured texts, in its own consumer group."""
    from llmwatch.processes import run_analyzer

    settings = _settings(bootstrap=bootstrap, data_dir=data_dir)
    _logging(settings)
    raise typer.Exit(run_analyzer(settings))


@guard_app.command("scan")
def guard_scan(
    input_file: Annotated[
        Path | None, typer.Option("--input", "-i", help="JSONL input (default: stdin).")
    ] = None,
    output_file: Annotated[
        Path | None, typer.Option("--output", "-o", help="JSONL output (default: stdout).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per detector call.")] = 64,
    guardrails_file: Annotated[
        Path | None, typer.Option("--guardrails-file", help="Guardrail policy YAML.")
    ] = None,
) -> None:
    """Scan JSONL texts ({"text": ...} per line) for PII, injection and content; JSONL out, in order."""
    from rich.progress import Progress

    from llmwatch.guard_scan import scan_lines
    from streams.text.detectors import build_analyzer, load_guardrails_file

    settings = _settings(guardrails_file=guardrails_file)
    try:
        analyzer = build_analyzer(load_guardrails_file(settings.guardrails_file))
    except (ImportError, ValueError) as exc:
        err_console.print(f"[red]cannot build the detectors:[/red] {exc}")
        raise typer.Exit(2) from exc
    total = None
    if input_file is not None:
        if not input_file.is_file():
            err_console.print(f"[red]no such input file:[/red] {input_file}")
            raise typer.Exit(2)
        with input_file.open(encoding="utf-8") as counted:
            total = sum(1 for line in counted if line.strip())
    source = sys.stdin if input_file is None else input_file.open(encoding="utf-8")
    sink = sys.stdout.buffer if output_file is None else output_file.open("wb")
    show = err_console.is_terminal
    try:
        with Progress(console=err_console, disable=not show, transient=True) as progress:
            task = progress.add_task("scanning", total=total)
            summary = scan_lines(
                analyzer,
                source,
                sink,
                batch_size=batch_size,
                warn=lambda message: err_console.print(f"[yellow]skipped:[/yellow] {message}"),
                progress=lambda n: progress.advance(task, n),
            )
    finally:
        sink.flush()
        if output_file is not None:
            sink.close()
        if input_file is not None:
            source.close()
    err_console.print(
        f"scanned {summary.lines} lines: {summary.pii_spans} PII spans, "
        f"{summary.flagged_injection} injection flags, {summary.errors} bad lines"
    )
    raise typer.Exit(1 if summary.errors else 0)


@app.command()
def migrate(dsn: DsnOpt = None, data_dir: DataDirOpt = None) -> None:
    """Apply the ClickHouse schema migrations (idempotent)."""
    from sinks.clickhouse import connect
    from sinks.migrate import apply_migrations

    settings = _settings(clickhouse_dsn=dsn, data_dir=data_dir)
    client = connect(settings.dsn)
    try:
        applied = apply_migrations(client, settings.database)
    finally:
        client.close()
    console.print(f"applied: {', '.join(applied) or 'nothing (schema is current)'}")


@app.command()
def healthcheck(
    process: Annotated[str, typer.Argument(help="worker, sink, analyze, judge, canary or drift")],
    max_age_s: Annotated[float, typer.Option(help="Oldest acceptable heartbeat.")] = 30.0,
    data_dir: DataDirOpt = None,
) -> None:
    """Exit 0 if the process's heartbeat is fresh (for container healthchecks)."""
    from llmwatch.processes import heartbeat_age_s

    if process not in {"worker", "sink", "analyze", "judge", "canary", "drift"}:
        err_console.print(
            f"unknown process {process!r}; expected 'worker', 'sink', 'analyze', 'judge', "
            "'canary' or 'drift'"
        )
        raise typer.Exit(2)
    settings = _settings(data_dir=data_dir)
    age = heartbeat_age_s(settings.heartbeat_path(process))
    if age is None or age > max_age_s:
        shown = "missing" if age is None else f"{age:.0f} s old"
        err_console.print(f"{process} unhealthy: heartbeat {shown} (limit {max_age_s:.0f} s)")
        raise typer.Exit(1)
    console.print(f"{process} healthy: heartbeat {age:.1f} s old")


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A ClickHouse SQL query.")],
    dsn: DsnOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run one SQL query against llmwatch's ClickHouse and print the result as a table."""
    from sinks.clickhouse import connect

    settings = _settings(clickhouse_dsn=dsn, data_dir=data_dir)
    client = connect(settings.dsn)
    try:
        result = client.query(query)
    finally:
        client.close()
    table = Table(*result.column_names)
    for row in result.result_rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)


@app.command()
def simulate(
    events: Annotated[int, typer.Option("--events", "-n", min=1, help="Events to emit.")] = 10_000,
    rate: Annotated[
        float, typer.Option("--rate", "-r", help="Events per second (0: unpaced).")
    ] = 1_000.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same traffic).")] = 7,
    incidents: Annotated[
        bool, typer.Option(help="Include the demo incidents (429 storm, outage, deprecated model).")
    ] = True,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Emit realistic LLM traffic through the SDK into the events topic."""
    from rich.progress import Progress

    from producers.sdk import Publisher
    from producers.simulator import default_scenario, demo_scenario, run_simulation

    settings = _settings(bootstrap=bootstrap)
    publisher = Publisher(
        settings.bootstrap,
        settings.layout.events,
        text_capture=settings.text_capture,
        queue_max_bytes=settings.sdk_queue_max_bytes,
    )
    with Progress(console=console) as progress:
        task = progress.add_task("emitting", total=events)
        report = run_simulation(
            publisher.emit,
            events=events,
            rate=rate,
            seed=seed,
            scenario=demo_scenario() if incidents else default_scenario(),
            on_progress=lambda n: progress.update(task, completed=n),
        )
    delivered = publisher.flush(30.0)
    publisher.close()
    stats = publisher.stats
    console.print(
        f"emitted {report.emitted}, accepted {stats.emitted}, delivered {stats.delivered}, "
        f"delivery failures {stats.delivery_failed}"
    )
    if not delivered:
        err_console.print(f"[red]not every event was delivered to {settings.bootstrap}[/red]")
        raise typer.Exit(1)


@app.command()
def demo(
    events: Annotated[
        int, typer.Option("--events", "-n", min=1, help="Events to simulate.")
    ] = 20_000,
    rate: Annotated[float, typer.Option("--rate", "-r", help="Events per second.")] = 2_000.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    data_dir: DataDirOpt = None,
) -> None:
    """Run broker, worker, sink and simulator on embedded defaults, then print a summary."""
    from llmwatch.embedded import DemoOptions, run_demo
    from llmwatch.report import print_demo_summary

    settings = _settings(data_dir=data_dir)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    summary = run_demo(settings, DemoOptions(events=events, rate=rate, seed=seed), console)
    print_demo_summary(summary, console)
    if not summary.complete:
        raise typer.Exit(1)


@dashboards_app.command("build")
def dashboards_build() -> None:
    """Regenerate dashboards/generated/*.json and the provisioned alert rules (deterministic)."""
    from llmwatch.grafana import build_all_files

    settings = _settings()
    for path in build_all_files(settings.slo_file):
        console.print(f"wrote {path}")


@dashboards_app.command("push")
def dashboards_push(
    url: Annotated[str, typer.Option(envvar="GRAFANA_URL", help="Grafana base URL [GRAFANA_URL].")],
    token: Annotated[
        str | None,
        typer.Option(envvar="GRAFANA_TOKEN", help="Service-account token [GRAFANA_TOKEN]."),
    ] = None,
    user: Annotated[
        str | None, typer.Option(envvar="GRAFANA_USER", help="Basic-auth user.")
    ] = None,
    password: Annotated[
        str | None, typer.Option(envvar="GRAFANA_PASSWORD", help="Basic-auth password.")
    ] = None,
) -> None:
    """Sync the llmwatch folder, dashboards and alert rule groups into a running Grafana."""
    from dashboards.alert_rules import RULES_PATH
    from dashboards.build import GENERATED_DIR
    from dashboards.push import PushError, push_from_files

    auth: str | tuple[str, str] | None = token
    if auth is None and user is not None:
        auth = (user, password or "")
    try:
        report = push_from_files(url, auth, GENERATED_DIR, RULES_PATH)
    except PushError as exc:
        err_console.print(f"[red]push failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(report.summary())


@app.command()
def snapshot(
    dashboard: Annotated[
        str, typer.Option(help="overview, cost, slos, pipeline or safety (or a dashboard uid).")
    ] = "overview",
    from_: Annotated[
        str, typer.Option("--from", help="Start: ISO time or now-<N>[smhd], e.g. now-1h.")
    ] = "now-1h",
    to: Annotated[str, typer.Option(help="End: ISO time or now.")] = "now",
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("snapshots"),
    dsn: DsnOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Render a dashboard's panels to PNG files and one HTML page, without Grafana."""
    from llmwatch.grafana import parse_time, write_snapshot
    from sinks.clickhouse import connect

    settings = _settings(clickhouse_dsn=dsn, data_dir=data_dir)
    try:
        start, end = parse_time(from_), parse_time(to)
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    client = connect(settings.dsn)
    try:
        html, errors = write_snapshot(client, settings.database, dashboard, start, end, out)
    finally:
        client.close()
    console.print(f"snapshot: {html}")
    for error in errors:
        err_console.print(f"[yellow]panel failed:[/yellow] {error}")


register_chain_commands(app)  # otlp, scrape, trace: listed after the commands above
register_eval_commands(app)  # eval run / agreement, judge
register_prompt_commands(app)  # prompts push / list / show / diff / label / rollback, canary
register_drift_commands(app)  # drift (the monitor), drift baseline set / show / clear


def _operational_errors() -> tuple[type[Exception], ...]:
    """Errors an operator can fix from the message alone: shown as one line, no traceback."""
    from llmwatch.broker import BrokerError
    from sinks.clickhouse import ClickHouseConnectError
    from sinks.migrate import MigrationError
    from streams.admin import KafkaUnavailableError, TopicMismatchError
    from streams.slo.config import SloFileError

    return (
        BrokerError,
        ClickHouseConnectError,
        KafkaUnavailableError,
        MigrationError,
        SloFileError,
        TopicMismatchError,
    )


def main() -> None:
    try:
        app()
    except _operational_errors() as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
