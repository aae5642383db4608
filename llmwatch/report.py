"""Terminal rendering of the demo summary (rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from llmwatch.demo_drift import SHIFT_SERVICE
from llmwatch.embedded import DemoSummary

__all__ = ["print_demo_summary"]


def _counts_table(title: str, headers: tuple[str, ...], rows: list[tuple[object, ...]]) -> Table:
    table = Table(*headers, title=title, title_justify="left")
    for row in rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    return table


def _guardrails_table(summary: DemoSummary) -> Table:
    """Per service: texts analysed and flagged, and found / planted per kind of content."""

    def planted(service: str, *kinds: str) -> int:
        return sum(summary.planted.get((service, kind), 0) for kind in kinds)

    rows: list[tuple[object, ...]] = [
        (
            service,
            texts,
            flagged,
            f"{pii:,} / {planted(service, 'pii'):,}",
            f"{injection:,} / {planted(service, 'attack', 'indirect'):,}",
            f"{toxic:,} / {planted(service, 'toxic'):,}",
        )
        for service, texts, flagged, pii, injection, toxic, _leaks in summary.guardrails
    ]
    late = "" if summary.guardrails_drained else " [analysis still catching up]"
    return _counts_table(
        "guardrails per service (llm_guardrail_rollup_1m): found / planted by the simulator" + late,
        ("service", "texts analysed", "flagged", "PII", "injection", "toxic"),
        rows,
    )


def print_demo_summary(summary: DemoSummary, console: Console) -> None:
    overview = Table("", "count", title="llmwatch demo summary (read back from ClickHouse)")
    overview.add_row("events emitted", f"{summary.events_emitted:,}")
    overview.add_row("accepted by the SDK", f"{summary.events_accepted:,}")
    overview.add_row("delivered to Kafka", f"{summary.events_delivered:,}")
    overview.add_row("dropped or lost in the SDK", f"{summary.sdk_dropped:,}")
    overview.add_row("deliberately invalid events sent", f"{summary.bad_events_sent:,}")
    overview.add_row("rows stored (llm_calls)", f"{summary.rows_stored:,}")
    overview.add_row("dead letters (llm_dlq)", f"{summary.dlq_rows:,}")
    overview.add_row("elapsed", f"{summary.elapsed_s:.1f} s")
    console.print(overview)
    if summary.client_calls is not None:
        per_provider = ", ".join(
            f"{name} {n:,}"
            for name, n in sorted(summary.client_calls.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        total = sum(summary.client_calls.values())
        console.print(f"through real clients: {total:,} calls ({per_provider or 'none'})")
    console.print(_counts_table("rows per service", ("service", "rows"), list(summary.per_service)))
    console.print(
        _counts_table(
            "LLM calls per model", ("provider", "model", "calls"), list(summary.per_model)
        )
    )
    if summary.dlq_reasons:
        console.print(
            _counts_table("top dead-letter reasons", ("reason", "rows"), list(summary.dlq_reasons))
        )
    if summary.rate_limits:
        console.print(
            _counts_table(
                "rate limits (HTTP 429) by service and provider",
                ("service", "provider", "429s", "calls"),
                list(summary.rate_limits),
            )
        )
    if summary.guardrails:
        console.print(_guardrails_table(summary))
    if summary.quality:
        late = "" if summary.quality_drained else " [judge still catching up]"
        console.print(
            _counts_table(
                "judge scores (llm_scores): mean per service, prompt version and rubric" + late,
                ("service", "prompt version", "rubric", "scores", "mean"),
                [(s, v, r, n, f"{m:.2f}") for s, v, r, n, m in summary.quality],
            )
        )
        console.print(f"the judge's own calls (service llmwatch-judge): {summary.judge_calls:,}")
    if summary.eval_gate is not None:
        for output in summary.eval_gate.output:
            console.print(output.rstrip())
        verdict = (
            "[green]gated:[/green] v7 passed (exit 0), v8 stopped as a significant regression "
            "(exit 1)"
            if summary.eval_gate.gated
            else f"[red]not gated as expected:[/red] exit codes {summary.eval_gate.baseline_code}"
            f" / {summary.eval_gate.candidate_code}"
        )
        console.print(f"llmwatch eval run: {verdict}")
    if summary.canary is not None:
        _print_canary(console, summary)
    if summary.drift is not None:
        _print_drift(console, summary)
    alerts = Table(title="alerts that fired")
    for header in ("SLO / watch", "rule", "severity", "now", "max burn"):
        alerts.add_column(header, overflow="fold")
    for slo, rule, severity, state, burn, _ in summary.alerts:
        alerts.add_row(slo, rule, severity, state, burn)
    console.print(alerts if summary.alerts else "[yellow]no alerts fired[/yellow]")
    for path in summary.snapshots:
        console.print(f"snapshot: {path}")
    for error in summary.snapshot_errors:
        console.print(f"[yellow]snapshot panel failed:[/yellow] {error}")
    console.print(f"data kept in {summary.dsn} (query it: llmwatch sql 'SELECT ...')")
    if summary.complete:
        console.print("[green]complete:[/green] every accepted event is stored or dead-lettered")
    else:
        console.print(
            "[red]incomplete:[/red] "
            f"{summary.events_delivered - summary.bad_events_sent - summary.rows_stored:,} valid events "
            f"missing, drained={summary.drained}; see the logs in the data folder"
        )


def _print_canary(console: Console, summary: DemoSummary) -> None:
    canary = summary.canary
    if canary is None:
        return
    looks = Table(title=f"prompt canary: support-bot v8 {canary.v8} (10%) against v7 {canary.v7}")
    for header in (
        "look",
        "canary calls",
        "baseline calls",
        "verdict",
        "score",
        "failed",
        "action",
    ):
        looks.add_column(header, overflow="fold")
    for row in canary.looks:
        colour = {"fail": "red", "pass": "green"}.get(row.verdict, "yellow")
        looks.add_row(
            str(row.look), f"{row.canary_calls:,}", f"{row.baseline_calls:,}",
            f"[{colour}]{row.verdict}[/{colour}]", f"{row.score:.0f}",
            ", ".join(row.failed_metrics) or "-", row.action,
        )  # fmt: skip
    console.print(looks if canary.looks else "[red]no canary verdict was stored[/red]")
    for revision, action, by, reason in canary.moves:
        console.print(f"  production r{revision}: {action} by {by}: {reason}")
    served = canary.served.get(canary.v8, 0)
    total = sum(canary.served.values())
    if canary.rolled_back and canary.rolled_back_ms is not None:
        last = canary.last_served_ms.get(canary.v8)
        gap = None if last is None else (last - canary.rolled_back_ms) / 1000
        after = (
            ""
            if gap is None
            else (
                f"; v8 last served {-gap:.1f} s before the rollback, none after"
                if gap <= 0
                else f"; v8 still served {gap:.1f} s after it (SDK refresh)"
            )
        )
        console.print(
            f"[green]rolled back automatically[/green]: v8 served {served:,} of {total:,} support-bot "
            f"traces{after}"
        )
    else:
        console.print(f"[red]not rolled back[/red]: v8 served {served:,} of {total:,} traces")


def _print_drift(console: Console, summary: DemoSummary) -> None:
    drift = summary.drift
    if drift is None:
        return
    table = Table(title="embedding drift: the shifted window against the trailing reference")
    for header in ("scope", "test", "effect", "what moved"):
        table.add_column(header, overflow="fold")
    for service, direction, feature, effect, top in drift.flagged:
        table.add_row(f"{service}/llm/{direction}", feature, f"{effect:.3f}", top or "-")
    console.print(table if drift.flagged else "[red]no drift was flagged[/red]")
    quiet = [
        s for s in drift.scopes_tested if not any(s.startswith(f[0] + "/") for f in drift.flagged)
    ]
    console.print(f"  not flagged: {', '.join(quiet) or '-'}")
    if drift.shifted_scope_only:
        console.print(
            f"[green]drift alert on {SHIFT_SERVICE} only[/green] (llm_alerts rule 'drift')"
        )
    else:
        console.print("[red]drift was flagged outside the shifted scope or not at all[/red]")
