"""Shared pieces of the llmwatch dashboards: filter variables, SQL filter clauses and panel builders.

Conventions every dashboard follows (checked by ``tests/unit/dashboards``):
- Every query names its table as ``llmwatch.<table>`` and reads ReplacingMergeTree tables with FINAL.
- Every panel has a description written for on-call: what the panel shows, then "When red:" and what
  to do.
- Filter variables are multi-value with All. All is the custom value :data:`ALL_VALUE` (a quoted SQL
  literal that Grafana inserts verbatim), so "All" means "no filter" rather than "every value seen in
  the time range", and a filter clause is ``('__all__' IN (${v:singlequote}) OR col IN (...))``.
- Rollup panels set a 1-minute minimum interval: the rollups are 1-minute windows, so a finer
  ``$__timeInterval`` would only produce empty buckets and wrong per-minute rates.

Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import gauge, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dashboard_model

from dashboards.query import ClickHouseQueryBuilder, Format, datasource_ref

__all__ = [
    "ALL_VALUE",
    "CALLS_MODEL",
    "DASHBOARD_TAG",
    "FILTER_VARIABLES",
    "LLM_SPANS",
    "MIN_INTERVAL",
    "PROVIDER_SPANS",
    "WHEN_RED",
    "FilterVariable",
    "PanelBuilder",
    "Section",
    "calls_filters",
    "doc",
    "filter_variables",
    "gauge_panel",
    "new_dashboard",
    "query_variable",
    "rollup_filters",
    "rollup_where",
    "row",
    "stat_panel",
    "table_panel",
    "thresholds",
    "timeseries_panel",
    "var_filter",
    "with_sections",
]

ALL_VALUE: Final = "'__all__'"
ALL_OPTION: Final = "$__all"
MIN_INTERVAL: Final = "1m"
WHEN_RED: Final = "When red:"
DASHBOARD_TAG: Final = "llmwatch"
DEFAULT_RANGE: Final = ("now-6h", "now")
REFRESH: Final = "1m"
# span_kind values: model calls that go to a provider, and the generative ones among them.
PROVIDER_SPANS: Final = "span_kind IN ('llm', 'embedding')"
LLM_SPANS: Final = "span_kind = 'llm'"
# llm_calls has no single model column; the rollups use the request model, else the response model.
CALLS_MODEL: Final = "if(request_model != '', request_model, response_model)"


# What every panel helper returns and a dashboard's with_panel takes.
PanelBuilder = cogbuilder.Builder[dashboard_model.Panel]


@dataclass(frozen=True, slots=True)
class FilterVariable:
    """A dashboard filter: variable name, label and the column it filters in each table."""

    name: str
    label: str
    rollup_column: str
    calls_column: str


FILTER_VARIABLES: Final = (
    FilterVariable("environment", "Environment", "environment", "environment"),
    FilterVariable("service", "Service", "service", "service"),
    FilterVariable("provider", "Provider", "provider_name", "provider_name"),
    FilterVariable("model", "Model", "model", CALLS_MODEL),
    FilterVariable("prompt_version", "Prompt version", "prompt_version", "prompt_version"),
)


def doc(meaning: str, when_red: str) -> str:
    """A panel description: what it shows, then what to do when it is red."""
    return f"{meaning.strip()}\n\n{WHEN_RED} {when_red.strip()}"


def var_filter(variable: str, column: str) -> str:
    """SQL true for every row when ``$variable`` is All, else when ``column`` is a selected value."""
    values = f"${{{variable}:singlequote}}"
    return f"({ALL_VALUE} IN ({values}) OR {column} IN ({values}))"


def rollup_filters() -> str:
    """The filter variables' clauses on ``llm_rollup_1m``, AND-joined."""
    return " AND ".join(var_filter(v.name, v.rollup_column) for v in FILTER_VARIABLES)


def rollup_where(spans: str | None = None) -> str:
    """The time filter, an optional span-kind clause and the filter variables, on the rollups."""
    span_clause = f" AND {spans}" if spans else ""
    return f"$__timeFilter(window_start){span_clause} AND {rollup_filters()}"


def calls_filters() -> str:
    """The filter variables' clauses on ``llm_calls``, AND-joined."""
    return " AND ".join(var_filter(v.name, v.calls_column) for v in FILTER_VARIABLES)


def query_variable(
    name: str, label: str, sql: str, description: str, *, multi_all: bool = True
) -> dashboard_builder.QueryVariable:
    """A ClickHouse query variable refreshed with the time range (multi-value with All by default)."""
    variable = (
        dashboard_builder.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(datasource_ref())
        .query(sql)
        .refresh(dashboard_model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_model.VariableSort.ALPHABETICAL_ASC)
    )
    if multi_all:
        variable = (
            variable.multi(True)
            .include_all(True)
            .all_value(ALL_VALUE)
            .current(dashboard_model.VariableOption(text="All", value=ALL_OPTION, selected=True))
        )
    return variable


def filter_variables() -> list[dashboard_builder.QueryVariable]:
    """environment, service, provider, model, prompt_version: each lists the values of its column in
    the rollups over the time range, narrowed by the variables before it."""
    variables = []
    for index, var in enumerate(FILTER_VARIABLES):
        narrowing = "".join(
            f" AND {var_filter(parent.name, parent.rollup_column)}"
            for parent in FILTER_VARIABLES[:index]
        )
        sql = (
            f"SELECT DISTINCT {var.rollup_column} FROM llmwatch.llm_rollup_1m FINAL "
            f"WHERE $__timeFilter(window_start) AND {var.rollup_column} != ''{narrowing} "
            f"ORDER BY {var.rollup_column}"
        )
        description = f"Only count calls of these {var.label.lower()}s (All: no filter)."
        variables.append(query_variable(var.name, var.label, sql, description))
    return variables


def thresholds(*steps: tuple[float | None, str]) -> dashboard_builder.ThresholdsConfig:
    """Absolute thresholds; the first step's value must be None (the base color)."""
    if not steps or steps[0][0] is not None:
        raise ValueError(f"the first threshold step must have value None, got {steps!r}")
    return (
        dashboard_builder.ThresholdsConfig()
        .mode(dashboard_model.ThresholdsMode.ABSOLUTE)
        .steps([dashboard_model.Threshold(value=v, color=c) for v, c in steps])
    )


def timeseries_panel(
    title: str,
    sql: str,
    description: str,
    unit: str,
    *,
    span: int = 12,
    height: int = 8,
    stacked: bool = False,
    limits: dashboard_builder.ThresholdsConfig | None = None,
    min_interval: str = MIN_INTERVAL,
) -> timeseries.Panel:
    """A time series panel: the query returns ``time`` first, then numeric columns (one series
    each), or ``time, <label string>, <value>`` rows that Grafana pivots into one series per label."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(datasource_ref())
        .with_target(ClickHouseQueryBuilder(sql, Format.TIME_SERIES))
        .unit(unit)
        .span(span)
        .height(height)
        .interval(min_interval)
        .fill_opacity(20 if stacked else 8)
        .line_width(1)
        .legend(
            common_builder.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
        .tooltip(
            common_builder.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if stacked:
        panel = panel.stacking(common_builder.StackingConfig().mode(common.StackingMode.NORMAL))
    if limits is not None:
        panel = panel.thresholds(limits).thresholds_style(
            common_builder.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE)
        )
    return panel


def stat_panel(
    title: str,
    sql: str,
    description: str,
    unit: str,
    limits: dashboard_builder.ThresholdsConfig,
    *,
    span: int = 6,
    height: int = 4,
    decimals: int | None = None,
) -> stat.Panel:
    """A big number: the query returns one row with one numeric column."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(datasource_ref())
        .with_target(ClickHouseQueryBuilder(sql, Format.TABLE))
        .unit(unit)
        .span(span)
        .height(height)
        .thresholds(limits)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    return panel.decimals(decimals) if decimals is not None else panel


def gauge_panel(
    title: str,
    sql: str,
    description: str,
    unit: str,
    limits: dashboard_builder.ThresholdsConfig,
    *,
    low: float,
    high: float,
    span: int = 6,
    height: int = 6,
) -> gauge.Panel:
    """A gauge between ``low`` and ``high``: the query returns numeric columns (one gauge each)."""
    return (
        gauge.Panel()
        .title(title)
        .description(description)
        .datasource(datasource_ref())
        .with_target(ClickHouseQueryBuilder(sql, Format.TABLE))
        .unit(unit)
        .min(low)
        .max(high)
        .span(span)
        .height(height)
        .thresholds(limits)
        .show_threshold_markers(True)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(True))
    )


def table_panel(
    title: str, sql: str, description: str, *, span: int = 24, height: int = 8
) -> table.Panel:
    """A table of whatever the query returns."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(datasource_ref())
        .with_target(ClickHouseQueryBuilder(sql, Format.TABLE))
        .span(span)
        .height(height)
        .show_header(True)
    )


def row(title: str, *, repeat: str | None = None) -> dashboard_builder.Row:
    """A row header; the panels added after it (until the next row) belong to it."""
    built = dashboard_builder.Row(title).collapsed(False)
    return built.repeat(repeat) if repeat is not None else built


def new_dashboard(uid: str, title: str, description: str) -> dashboard_builder.Dashboard:
    """A dashboard with llmwatch's defaults: last 6 h, 1-minute refresh, shared crosshair and a
    dropdown linking the other llmwatch dashboards (keeping the time range and variables)."""
    return (
        dashboard_builder.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([DASHBOARD_TAG])
        .time(*DEFAULT_RANGE)
        .refresh(REFRESH)
        .timezone("browser")
        .tooltip(dashboard_model.DashboardCursorSync.CROSSHAIR)
        .link(
            dashboard_builder.DashboardLink("llmwatch")
            .type(dashboard_model.DashboardLinkType.DASHBOARDS)
            .tags([DASHBOARD_TAG])
            .as_dropdown(True)
            .keep_time(True)
            .include_vars(True)
        )
    )


Section = tuple[dashboard_builder.Row, Sequence[Any]]


def with_sections(
    dashboard: dashboard_builder.Dashboard,
    variables: Sequence[Any],
    sections: Sequence[Section],
    annotation: Any | None = None,
) -> dashboard_builder.Dashboard:
    """``dashboard`` with its variables, an optional annotation, then each row and its panels."""
    for variable in variables:
        dashboard = dashboard.with_variable(variable)
    if annotation is not None:
        dashboard = dashboard.annotation(annotation)
    for header, panels in sections:
        dashboard = dashboard.with_row(header)
        for panel in panels:
            dashboard = dashboard.with_panel(panel)
    return dashboard
