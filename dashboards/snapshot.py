"""Offline snapshots of a dashboard: every panel's query run for [start, end], drawn to PNG, plus HTML.

:func:`render_snapshot` takes a clickhouse-connect client (chdb or a server), builds the dashboard from
code (``dashboards.build``), resolves its variables and repeated rows as Grafana does on load
(``dashboards.runner``), expands the ClickHouse plugin's macros for the range (``dashboards.macros``),
runs each panel's query and draws it (``dashboards.render``; a text panel shows its content). It
writes ``panel-NN.png`` files and one ``index.html`` that embeds them by relative path with each
panel's title and description, so the folder can be zipped or attached to an incident ticket.

Guarantees: a panel whose query fails does not stop the snapshot: its PNG shows the error and the
error is listed in :attr:`SnapshotResult.errors` (and logged). Files are overwritten, others in
``out_dir`` are left alone. What can block: the queries (sequential) and the disk writes.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from dashboards.build import build_all
from dashboards.macros import QueryWindow, render_sql
from dashboards.query import DATABASE
from dashboards.render import render_error, render_panel, render_text
from dashboards.runner import (
    PanelInstance,
    panel_instances,
    panel_interval_s,
    resolve_variables,
    run_sql,
    with_database,
)

__all__ = ["HTML_NAME", "SnapshotResult", "render_snapshot"]

log = logging.getLogger(__name__)

HTML_NAME: Final = "index.html"
TEXT_TYPE: Final = "text"  # a panel without a query: drawn from its content
_STYLE: Final = (
    "body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}"
    "section{margin-bottom:2.5em}img{max-width:100%;border:1px solid #ddd}"
    "p.desc{white-space:pre-line;color:#444;font-size:0.92em}.err{color:#c00}"
)


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    """The PNGs (one per panel as shown, in layout order), the HTML page and failed panels."""

    pngs: list[Path]
    html: Path
    errors: dict[str, str] = field(default_factory=dict)  # panel title -> error message


def _window(start: datetime, end: datetime) -> QueryWindow:
    return QueryWindow(start.astimezone(UTC), end.astimezone(UTC), 60.0)


def _draw(client: Client, instance: PanelInstance, window: QueryWindow, database: str) -> bytes:
    panel = instance.panel
    if panel.get("type") == TEXT_TYPE:
        return render_text(panel, instance.title)
    span_s = (window.end - window.start).total_seconds()
    panel_window = QueryWindow(window.start, window.end, panel_interval_s(panel, span_s))
    target = (panel.get("targets") or [{}])[0]
    sql = with_database(
        render_sql(str(target.get("rawSql", "")), panel_window, instance.variables), database
    )
    return render_panel(panel, run_sql(client, sql), instance.title)


def _section(instance: PanelInstance, png: Path, error: str | None) -> str:
    description = html.escape(str(instance.panel.get("description", "")))
    failed = f'<p class="err">Query failed: {html.escape(error)}</p>' if error else ""
    return (
        f"<section><h2>{html.escape(instance.title)}</h2>{failed}"
        f'<img src="{html.escape(png.name)}" alt="{html.escape(instance.title)}">'
        f'<p class="desc">{description}</p></section>'
    )


def _page(doc: dict[str, Any], window: QueryWindow, sections: list[str]) -> str:
    title = html.escape(str(doc.get("title", doc.get("uid"))))
    span = f"{window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{title}</h1>"
        f"<p>{html.escape(str(doc.get('description', '')))}<br>Range: {span}. Variables at their "
        f"defaults (All).</p>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def render_snapshot(
    client: Client,
    dashboard_uid: str,
    start: datetime,
    end: datetime,
    out_dir: Path,
    database: str = DATABASE,
) -> SnapshotResult:
    """Render every panel of ``dashboard_uid`` for ``[start, end]`` into ``out_dir``."""
    dashboards = build_all()
    if dashboard_uid not in dashboards:
        raise ValueError(f"unknown dashboard uid {dashboard_uid!r}; known: {sorted(dashboards)}")
    doc = dashboards[dashboard_uid]
    window = _window(start, end)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    resolved = resolve_variables(client, doc, window, database)
    pngs: list[Path] = []
    sections: list[str] = []
    errors: dict[str, str] = {}
    for number, instance in enumerate(panel_instances(client, doc, window, resolved, database), 1):
        path = out_dir / f"panel-{number:02d}.png"
        error = None
        try:
            image = _draw(client, instance, window, database)
        except Exception as exc:  # driver and SQL errors: show them in the snapshot, keep going
            error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("snapshot panel %r of %s failed: %s", instance.title, dashboard_uid, error)
            errors[instance.title] = error
            image = render_error(instance.panel, instance.title, error)
        path.write_bytes(image)
        pngs.append(path)
        sections.append(_section(instance, path, error))
    page = out_dir / HTML_NAME
    page.write_text(_page(doc, window, sections), encoding="utf-8")
    return SnapshotResult(pngs=pngs, html=page, errors=errors)
