"""Read the parts of a dashboard's JSON that the checks and the snapshot renderer need.

Works on plain JSON data (``dashboards.build.build_all`` output or a file from ``dashboards/generated``),
never on SDK objects, so it checks exactly what Grafana will load. Pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ROW_TYPE",
    "Query",
    "datasource_refs",
    "iter_panels",
    "queries",
    "variables",
    "visual_panels",
]

ROW_TYPE: Final = "row"

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Query:
    """One SQL statement of a dashboard: a panel target, a variable query or an annotation query."""

    kind: str  # "panel", "variable" or "annotation"
    owner: str  # panel title, variable name or annotation name
    sql: str
    format: int | None  # the target's format (0 time series, 1 table); None for variables
    panel_type: str | None  # the panel's type for panel targets


def iter_panels(doc: Json) -> Iterator[Json]:
    """Every panel, rows included, in layout order (panels nested in collapsed rows too)."""
    for panel in doc.get("panels", []):
        yield panel
        yield from panel.get("panels", []) or []


def visual_panels(doc: Json) -> list[Json]:
    """The panels that show data (not rows)."""
    return [p for p in iter_panels(doc) if p.get("type") != ROW_TYPE]


def variables(doc: Json) -> list[Json]:
    """The templating variables, in dashboard order."""
    return list(doc.get("templating", {}).get("list", []) or [])


def _annotations(doc: Json) -> list[Json]:
    return list(doc.get("annotations", {}).get("list", []) or [])


def queries(doc: Json) -> list[Query]:
    """Every SQL statement: variable queries first (dashboard order), then panels, then annotations."""
    found = [
        Query("variable", v["name"], str(v.get("query", "")), None, None)
        for v in variables(doc)
        if v.get("type") == "query"
    ]
    for panel in visual_panels(doc):
        for target in panel.get("targets", []) or []:
            found.append(
                Query(
                    "panel",
                    str(panel.get("title", "")),
                    str(target.get("rawSql", "")),
                    target.get("format"),
                    panel.get("type"),
                )
            )
    for annotation in _annotations(doc):
        target = annotation.get("target") or {}
        if "rawSql" in target:
            found.append(Query("annotation", annotation["name"], target["rawSql"], 1, None))
    return found


def datasource_refs(doc: Json) -> list[tuple[str, Json]]:
    """(where, datasource ref) for every reference in panels, targets, variables and annotations."""
    refs: list[tuple[str, Json]] = []
    for panel in iter_panels(doc):
        title = panel.get("title", "")
        if panel.get("datasource"):
            refs.append((f"panel {title!r}", panel["datasource"]))
        for target in panel.get("targets", []) or []:
            if target.get("datasource"):
                refs.append((f"panel {title!r} target {target.get('refId')}", target["datasource"]))
    for variable in variables(doc):
        if variable.get("datasource"):
            refs.append((f"variable {variable['name']!r}", variable["datasource"]))
    for annotation in _annotations(doc):
        where = f"annotation {annotation.get('name')!r}"
        if annotation.get("datasource"):
            refs.append((where, annotation["datasource"]))
        target = annotation.get("target") or {}
        if target.get("datasource"):
            refs.append((f"{where} target", target["datasource"]))
    return refs
