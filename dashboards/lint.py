"""Cross-reference checks of dashboard JSON that Grafana's schema cannot express.

:func:`lint_dashboards` returns one message per problem (empty when all is well), naming the dashboard,
the panel, variable or annotation, and the bad value:
- dashboard uids are unique, at most 40 characters of ``[A-Za-z0-9_-]``;
- panel ids are unique integers within a dashboard, and panels fit the 24-column grid;
- every datasource reference (panels, targets, variables, annotations) names a provisioned datasource
  by uid, with the provisioned type;
- every template variable used in a query, a panel title or a row repeat is defined, and a variable
  query uses only variables defined before it (Grafana resolves them in order);
- variable names are unique;
- every panel has a description with on-call guidance (``dashboards.panels.WHEN_RED``);
- every ReplacingMergeTree table a query reads (given by the caller) is read with FINAL, or grouped by
  its whole dedup key (:data:`DEDUP_KEYS`), which collapses the copies just as well.

Alert-rule checks come with the alert rules. Only :func:`provisioned_datasources` does I/O (it reads
the provisioning YAML).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from dashboards.macros import referenced_variables
from dashboards.panels import WHEN_RED
from dashboards.query import DATABASE
from dashboards.walk import ROW_TYPE, datasource_refs, iter_panels, queries, variables
from sinks.schema import CALLS_ORDER_BY, CALLS_TABLE

__all__ = [
    "DATASOURCES_DIR",
    "DEDUP_KEYS",
    "GRID_COLUMNS",
    "MAX_UID_LENGTH",
    "lint_dashboard",
    "lint_dashboards",
    "provisioned_datasources",
]

MAX_UID_LENGTH: Final = 40
GRID_COLUMNS: Final = 24
DATASOURCES_DIR: Final = Path(__file__).resolve().parent / "provisioning" / "datasources"
_UID_RE: Final = re.compile(r"^[A-Za-z0-9_-]+$")
_TABLE_RE: Final = re.compile(rf"\b{DATABASE}\.(\w+)(\s+FINAL\b)?")
# A read without FINAL that groups by the table's whole dedup key (its ORDER BY) sees each row once
# (e.g. the pipeline dashboard's freshness: each call's first copy, which FINAL would not keep).
DEDUP_KEYS: Final[Mapping[str, tuple[str, ...]]] = {CALLS_TABLE: CALLS_ORDER_BY}

Json = dict[str, Any]


def provisioned_datasources(directory: Path = DATASOURCES_DIR) -> dict[str, str]:
    """uid -> plugin type of every datasource in the provisioning YAML files of ``directory``."""
    found: dict[str, str] = {}
    for path in sorted(directory.glob("*.y*ml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for source in doc.get("datasources", []) or []:
            uid, kind = source.get("uid"), source.get("type")
            if not isinstance(uid, str) or not isinstance(kind, str):
                raise ValueError(
                    f"{path}: a datasource needs a string uid and type, got {source!r}"
                )
            found[uid] = kind
    return found


def _check_uid(uid: Any) -> list[str]:
    if not isinstance(uid, str) or not _UID_RE.match(uid) or len(uid) > MAX_UID_LENGTH:
        return [f"uid must be 1-{MAX_UID_LENGTH} characters of [A-Za-z0-9_-], got {uid!r}"]
    return []


def _check_panels(doc: Json) -> list[str]:
    problems, seen = [], set()
    for panel in iter_panels(doc):
        title, pid = panel.get("title"), panel.get("id")
        if not isinstance(pid, int) or pid in seen:
            problems.append(f"panel {title!r}: id must be a unique integer, got {pid!r}")
        seen.add(pid)
        grid = panel.get("gridPos") or {}
        if grid.get("x", 0) + grid.get("w", 0) > GRID_COLUMNS:
            problems.append(f"panel {title!r}: gridPos overflows {GRID_COLUMNS} columns: {grid!r}")
        if panel.get("type") != ROW_TYPE and WHEN_RED not in str(panel.get("description", "")):
            problems.append(f"panel {title!r}: description lacks on-call guidance ({WHEN_RED!r})")
    return problems


def _check_datasources(doc: Json, datasources: Mapping[str, str]) -> list[str]:
    problems = []
    for where, ref in datasource_refs(doc):
        uid, kind = str(ref.get("uid")), ref.get("type")
        if uid not in datasources:
            problems.append(
                f"{where}: datasource uid {uid!r} is not provisioned ({sorted(datasources)})"
            )
        elif kind != datasources[uid]:
            problems.append(
                f"{where}: datasource {uid!r} has type {datasources[uid]!r}, got {kind!r}"
            )
    return problems


def _check_variables(doc: Json) -> list[str]:
    names = [str(v.get("name")) for v in variables(doc)]
    problems = [
        f"variable {n!r} is defined twice" for n in sorted({n for n in names if names.count(n) > 1})
    ]
    defined = set(names)
    for query in queries(doc):
        allowed = set(names[: names.index(query.owner)]) if query.kind == "variable" else defined
        for name in sorted(referenced_variables(query.sql) - allowed):
            problems.append(f"{query.kind} {query.owner!r}: uses undefined variable ${name}")
    for panel in iter_panels(doc):
        used = referenced_variables(str(panel.get("title", "")))
        if panel.get("repeat"):
            used.add(str(panel["repeat"]))
        for name in sorted(used - defined):
            problems.append(f"panel {panel.get('title')!r}: uses undefined variable ${name}")
    return problems


def _check_final(doc: Json, replacing_tables: Collection[str]) -> list[str]:
    problems = []
    for query in queries(doc):
        for match in _TABLE_RE.finditer(query.sql):
            table, final = match.group(1), match.group(2)
            key = DEDUP_KEYS.get(table)
            if key is not None and f"GROUP BY {', '.join(key)}" in query.sql:
                continue
            if table in replacing_tables and final is None:
                problems.append(
                    f"{query.kind} {query.owner!r}: ReplacingMergeTree table "
                    f"{DATABASE}.{match.group(1)} must be read with FINAL"
                )
    return problems


def lint_dashboard(
    doc: Json, datasources: Mapping[str, str], replacing_tables: Collection[str] = ()
) -> list[str]:
    """The problems of one dashboard, each prefixed with its uid."""
    problems = [
        *_check_uid(doc.get("uid")),
        *_check_panels(doc),
        *_check_datasources(doc, datasources),
        *_check_variables(doc),
        *_check_final(doc, replacing_tables),
    ]
    return [f"dashboard {doc.get('uid')!r}: {p}" for p in problems]


def lint_dashboards(
    dashboards: Mapping[str, Json],
    datasources: Mapping[str, str],
    replacing_tables: Collection[str] = (),
) -> list[str]:
    """The problems of every dashboard (``uid -> JSON``), plus uid mismatches and duplicates."""
    problems = []
    uids = [doc.get("uid") for doc in dashboards.values()]
    for uid in sorted({str(u) for u in uids if uids.count(u) > 1}):
        problems.append(f"dashboard uid {uid!r} is used by more than one dashboard")
    for key, doc in dashboards.items():
        if doc.get("uid") != key:
            problems.append(f"dashboard keyed {key!r} has uid {doc.get('uid')!r}")
        problems += lint_dashboard(doc, datasources, replacing_tables)
    return problems
