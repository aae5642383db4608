"""Front-door glue for the dashboard commands: building files, snapshots, time parsing.

The dashboards and rules themselves live in ``dashboards/``; this module only resolves names, paths
and times from the command line.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

__all__ = [
    "DASHBOARD_NAMES",
    "build_all_files",
    "parse_time",
    "resolve_dashboard",
    "write_snapshot",
]

DASHBOARD_NAMES: Final = {
    "overview": "llmwatch-overview",
    "cost": "llmwatch-cost",
    "slos": "llmwatch-slos",
    "pipeline": "llmwatch-pipeline",
    "safety": "llmwatch-safety",
    "traces": "llmwatch-traces",
    "quality": "llmwatch-quality",
    "prompts": "llmwatch-prompts",
    "drift": "llmwatch-drift",
}
_RELATIVE = re.compile(r"^now(?:-(\d+)([smhd]))?$")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """``now``, ``now-15m``, ``now-2h``, ``now-1d`` or an ISO time (naive = UTC)."""
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text.strip())
    if match:
        amount, unit = match.groups()
        return now if amount is None else now - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"time must be 'now', 'now-<N>[smhd]' or ISO 8601 like 2026-11-26T10:00, got {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def resolve_dashboard(name: str) -> str:
    return DASHBOARD_NAMES.get(name, name)


def build_all_files(slo_file: Path) -> list[Path]:
    """Write the dashboards' JSON and the alert rules generated from ``slo_file``."""
    from dashboards.alert_rules import RULES_PATH, write_rules
    from dashboards.build import write_all

    return [*write_all(), write_rules(slo_file, RULES_PATH)]


def write_snapshot(
    client: Any, database: str, dashboard: str, start: datetime, end: datetime, out: Path
) -> tuple[Path, list[str]]:
    """Render ``dashboard`` for [start, end] into ``out/<uid>/``; returns the HTML page and errors."""
    from dashboards.snapshot import render_snapshot

    if end <= start:
        raise ValueError(f"--to {end.isoformat()} must be after --from {start.isoformat()}")
    uid = resolve_dashboard(dashboard)
    result = render_snapshot(client, uid, start, end, out / uid, database=database)
    return result.html, [f"{title}: {message}" for title, message in result.errors.items()]
