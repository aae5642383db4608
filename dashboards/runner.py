"""Run a dashboard's queries the way Grafana would, on any clickhouse-connect client (chdb or server).

- Variables are resolved in dashboard order, as Grafana does on load: a multi-value variable with a
  custom All value is All; any other query variable takes the first value its query returns (which
  may use the variables before it).
- A row with ``repeat`` is expanded like Grafana expands it: its panels (up to the next row) once per
  value of the repeat variable, with the variable set to that one value; panel titles are interpolated.
- The interval (``$__interval``) of a panel is the range divided into at most :data:`MAX_POINTS`
  points, rounded up to a whole "nice" step (1 m, 2 m, 5 m, ...) and never below the panel's minimum
  interval. Grafana derives it from the panel's pixel width instead, so points can differ; the SQL is
  the same.
- Queries name tables ``llmwatch.<table>``; :func:`with_database` retargets them to another database.

What can block: every query, for as long as ClickHouse takes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from dashboards.macros import (
    AllValue,
    QueryWindow,
    VariableValue,
    interpolate_variables,
    render_sql,
)
from dashboards.query import DATABASE
from dashboards.walk import ROW_TYPE, variables

__all__ = [
    "MAX_POINTS",
    "PanelInstance",
    "QueryResult",
    "panel_instances",
    "panel_interval_s",
    "parse_interval",
    "resolve_variables",
    "run_sql",
    "variable_values",
    "with_database",
]

MAX_POINTS: Final = 120
NICE_STEPS_S: Final = (60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400)
_INTERVAL_RE: Final = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
_TABLE_PREFIX_RE: Final = re.compile(rf"\b{DATABASE}\.(?=llm_)")

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    types: list[str]  # ClickHouse type names, e.g. "Nullable(Float64)"
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class PanelInstance:
    """A panel as shown: its JSON, its interpolated title and the variable values it runs with."""

    panel: Json
    title: str
    variables: Mapping[str, VariableValue]


def parse_interval(text: str) -> int:
    """Seconds in a Grafana interval such as ``"1m"``; raises ValueError otherwise."""
    match = _INTERVAL_RE.match(text)
    if match is None:
        raise ValueError(f"interval must look like 30s, 1m, 1h or 1d, got {text!r}")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def panel_interval_s(panel: Json, window_s: float, max_points: int = MAX_POINTS) -> int:
    """``$__interval`` in seconds for a panel over a range of ``window_s`` seconds."""
    floor = parse_interval(panel["interval"]) if panel.get("interval") else 1
    wanted = max(window_s / max_points, floor)
    step = next((s for s in NICE_STEPS_S if s >= wanted), math.ceil(wanted))
    return max(step, floor)


def with_database(sql: str, database: str) -> str:
    """``sql`` with ``llmwatch.llm_*`` table names moved to ``database``."""
    return sql if database == DATABASE else _TABLE_PREFIX_RE.sub(f"{database}.", sql)


def run_sql(client: Client, sql: str) -> QueryResult:
    result = client.query(sql)
    return QueryResult(
        columns=list(result.column_names),
        types=[t.name for t in result.column_types],
        rows=[tuple(r) for r in result.result_rows],
    )


def variable_values(
    client: Client,
    variable: Json,
    window: QueryWindow,
    known: Mapping[str, VariableValue],
    database: str = DATABASE,
) -> list[str]:
    """Every value a query variable offers (the first column of its query, as strings)."""
    sql = with_database(render_sql(str(variable["query"]), window, known), database)
    return [str(row[0]) for row in run_sql(client, sql).rows]


def resolve_variables(
    client: Client, doc: Json, window: QueryWindow, database: str = DATABASE
) -> dict[str, VariableValue]:
    """Each query variable's value on load: All when it has a custom All value, else the first."""
    resolved: dict[str, VariableValue] = {}
    for variable in variables(doc):
        if variable.get("type") != "query":
            raise ValueError(f"only query variables are supported, got {variable.get('type')!r}")
        if variable.get("includeAll") and variable.get("allValue"):
            resolved[variable["name"]] = AllValue(str(variable["allValue"]))
            continue
        values = variable_values(client, variable, window, resolved, database)
        resolved[variable["name"]] = values[:1]
    return resolved


def _row_blocks(doc: Json) -> list[tuple[Json | None, list[Json]]]:
    """(row or None before the first row, the panels under it) in layout order."""
    blocks: list[tuple[Json | None, list[Json]]] = [(None, [])]
    for panel in doc.get("panels", []):
        if panel.get("type") == ROW_TYPE:
            blocks.append((panel, list(panel.get("panels") or [])))
        else:
            blocks[-1][1].append(panel)
    return blocks


def panel_instances(
    client: Client,
    doc: Json,
    window: QueryWindow,
    resolved: Mapping[str, VariableValue],
    database: str = DATABASE,
) -> list[PanelInstance]:
    """The panels as Grafana lays them out, repeated rows expanded (module docstring)."""
    by_name = {v["name"]: v for v in variables(doc)}
    instances: list[PanelInstance] = []
    for row, panels in _row_blocks(doc):
        repeats: list[Mapping[str, VariableValue]] = [resolved]
        name = row.get("repeat") if row is not None else None
        if name:
            options = variable_values(client, by_name[name], window, resolved, database)
            repeats = [{**resolved, name: [option]} for option in options]
        for values in repeats:
            for panel in panels:
                title = interpolate_variables(str(panel.get("title", "")), values)
                instances.append(PanelInstance(panel, title, values))
    return instances
