"""The Traces dashboard: whole chains (agent steps, retrieval, tool calls, LLM calls) as traces.

Source: ``llm_calls FINAL`` (one row per span; a replayed span counts once), grouped by ``trace_id``. A
trace is in the range when one of its spans starts in it, and matches the filters when one of its spans
does; its figures then cover all its spans in the range: duration (first start to last end), steps,
LLM and tool calls, errors, time spent in retrieval, tokens and cost (unpriced spans count 0). Sessions
(``session_id``, a conversation) sum their traces' cost and tokens.

One trace: the ``trace_id`` variable (the slowest trace of the range on load; the "Slowest traces" and
"Costliest traces" tables link each row to it) selects the span table at the bottom, which lists the
spans in start order with their parent, offset and duration. A table rather than the ClickHouse
plugin's trace view: it is checked offline on chdb like every other panel, and it shows cost and tokens
per span, which the trace view has no columns for. ``llmwatch trace <id>`` prints the same as a tree.

The overview links here with the last hour selected (``OVERVIEW_LINK``). Nothing here does I/O.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.models import dashboard as dashboard_model

from dashboards.panels import (
    PanelBuilder,
    calls_filters,
    doc,
    filter_variables,
    new_dashboard,
    query_variable,
    row,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
)
from dashboards.query import DATABASE
from streams.storage import CALLS_TABLE

__all__ = ["OVERVIEW_LINK", "TOP_TRACES", "UID", "build", "trace_link"]

UID: Final = "llmwatch-traces"
CALLS: Final = f"{DATABASE}.{CALLS_TABLE} FINAL"
TOP_TRACES: Final = 20
TRACE_CHOICES: Final = 200
SLOW_TRACE_MS: Final = 30_000
COSTLY_TRACE_USD: Final = 0.5
OVERVIEW_LINK: Final = f"/d/{UID}?from=now-1h&to=now"

# Per-trace figures of the traces with a span in the range that matches the filters.
TRACES: Final = (
    "SELECT trace_id,\n"
    "    min(start_time) AS trace_start,\n"
    "    toUnixTimestamp64Milli(max(end_time)) - toUnixTimestamp64Milli(min(start_time)) AS trace_ms,\n"
    "    count() AS steps,\n"
    "    countIf(span_kind = 'llm') AS llm_calls,\n"
    "    countIf(span_kind = 'tool') AS tool_calls,\n"
    "    countIf(status = 'error') AS errors,\n"
    "    sumIf(duration_ms, span_kind = 'retrieval') AS retrieval_ms,\n"
    "    sum(input_tokens + output_tokens) AS tokens,\n"
    "    sum(ifNull(cost_usd, 0)) AS trace_cost_usd,\n"
    "    anyIf(session_id, session_id != '') AS session,\n"
    "    argMin(service, start_time) AS entry_service\n"
    f"FROM {CALLS}\n"
    "WHERE $__timeFilter(start_time) AND trace_id IN (\n"
    f"    SELECT trace_id FROM {CALLS}\n"
    f"    WHERE $__timeFilter(start_time) AND {calls_filters()})\n"
    "GROUP BY trace_id"
)


def trace_link(title: str) -> dashboard_model.DynamicConfigValue:
    """A data link on a table's ``trace_id`` column that selects that trace (keeping the range)."""
    url = f"/d/{UID}?var-trace_id=${{__data.fields.trace_id}}&${{__url_time_range}}"
    return dashboard_model.DynamicConfigValue(id_val="links", value=[{"title": title, "url": url}])


def _trace_variable() -> dashboard_builder.QueryVariable:
    sql = (
        f"SELECT trace_id FROM ({TRACES})\nORDER BY trace_ms DESC, trace_id\nLIMIT {TRACE_CHOICES}"
    )
    return query_variable(
        "trace_id",
        "Trace",
        sql,
        f"The trace shown in 'Spans of the selected trace' (the {TRACE_CHOICES} slowest of the "
        "range; a row of the slowest or costliest table selects its trace).",
        multi_all=False,
    ).sort(dashboard_model.VariableSort.DISABLED)


def _stats() -> list[PanelBuilder]:
    count = stat_panel(
        "Traces",
        f"SELECT count() AS traces FROM ({TRACES})",
        doc(
            "Traces (whole chains: an agent run, a RAG answer) with a span in the range that "
            "matches the filters.",
            "zero while calls arrive: the apps send no trace ids (every call is its own trace); "
            "open spans with watch.track() around the chain.",
        ),
        "short",
        thresholds((None, "red"), (1, "blue")),
    )
    duration = stat_panel(
        "Trace duration p95",
        f"SELECT quantile(0.95)(trace_ms) AS p95_ms FROM ({TRACES})",
        doc(
            "95th percentile of trace duration, first span start to last span end.",
            f"above {SLOW_TRACE_MS / 1000:.0f} s: open 'Slowest traces' and the trace's spans; "
            "a long tool or retrieval step, or many LLM calls, is the usual cause.",
        ),
        "ms",
        thresholds((None, "green"), (SLOW_TRACE_MS, "red")),
    )
    cost = stat_panel(
        "Cost per trace p95",
        f"SELECT quantile(0.95)(trace_cost_usd) AS p95_usd FROM ({TRACES})",
        doc(
            "95th percentile of a trace's total cost (priced spans only).",
            f"above ${COSTLY_TRACE_USD}: open 'Costliest traces'; an agent looping on a tool or "
            "a prompt that grew is the usual cause.",
        ),
        "currencyUSD",
        thresholds((None, "green"), (COSTLY_TRACE_USD, "red")),
        decimals=4,
    )
    calls = stat_panel(
        "LLM calls per trace",
        f"SELECT avg(llm_calls) AS llm_calls_per_trace FROM ({TRACES})",
        doc(
            "Mean number of LLM calls per trace.",
            "a jump after a release: an agent retries or loops; compare the slowest traces' "
            "steps before and after.",
        ),
        "short",
        thresholds((None, "blue")),
        decimals=2,
    )
    return [count, duration, cost, calls]


def _trends() -> list[PanelBuilder]:
    durations = timeseries_panel(
        "Trace duration p50 / p95 / p99",
        "SELECT $__timeInterval(trace_start) AS time,\n"
        "    quantile(0.5)(trace_ms) AS p50, quantile(0.95)(trace_ms) AS p95,\n"
        f"    quantile(0.99)(trace_ms) AS p99\nFROM ({TRACES})\nGROUP BY time\nORDER BY time",
        doc(
            "Percentiles of trace duration by the trace's start time.",
            "p99 far above p95: a few chains hang (a tool timeout, a retry loop); see 'Slowest "
            "traces'.",
        ),
        "ms",
    )
    costs = timeseries_panel(
        "Cost per trace p50 / p95",
        "SELECT $__timeInterval(trace_start) AS time,\n"
        "    quantile(0.5)(trace_cost_usd) AS p50, quantile(0.95)(trace_cost_usd) AS p95\n"
        f"FROM ({TRACES})\nGROUP BY time\nORDER BY time",
        doc(
            "Percentiles of a trace's total cost by the trace's start time.",
            "a rising p95: longer contexts or more LLM calls per chain; see 'Costliest traces'.",
        ),
        "currencyUSD",
    )
    return [durations, costs]


def _top(title: str, order: str, meaning: str, when_red: str) -> table.Panel:
    sql = (
        "SELECT trace_id, trace_start, entry_service, trace_ms, steps, llm_calls, tool_calls,\n"
        "    errors, retrieval_ms, tokens, round(trace_cost_usd, 6) AS cost_usd, session\n"
        f"FROM ({TRACES})\nORDER BY {order} DESC, trace_id\nLIMIT {TOP_TRACES}"
    )
    return table_panel(title, sql, doc(meaning, when_red), span=12, height=9).override_by_name(
        "trace_id", [trace_link("Show this trace's spans")]
    )


def _tables() -> list[PanelBuilder]:
    slowest = _top(
        "Slowest traces",
        "trace_ms",
        f"The {TOP_TRACES} longest traces of the range: steps, LLM and tool calls, errors, time "
        "in retrieval, tokens and cost. Click a trace id to see its spans.",
        "a trace whose retrieval_ms or tool_calls stands out: that step is the bottleneck.",
    )
    costliest = _top(
        "Costliest traces",
        "trace_cost_usd",
        f"The {TOP_TRACES} most expensive traces of the range. Click a trace id to see its spans.",
        "one session or entry service dominating: a user or feature driving cost; check $/user.",
    )
    sessions = table_panel(
        "Costliest sessions",
        "SELECT session, count() AS traces, sum(llm_calls) AS session_llm_calls,\n"
        "    sum(tokens) AS session_tokens, round(sum(trace_cost_usd), 6) AS session_cost_usd,\n"
        "    max(trace_ms) AS longest_trace_ms\n"
        f"FROM ({TRACES})\nWHERE session != ''\nGROUP BY session\n"
        f"ORDER BY session_cost_usd DESC, session\nLIMIT {TOP_TRACES}",
        doc(
            "Conversations (session_id) by total cost of their traces in the range.",
            "a session far above the others: a runaway conversation or abuse; find its user.",
        ),
    )
    return [slowest, costliest, sessions]


def _spans() -> PanelBuilder:
    sql = (
        "SELECT toUnixTimestamp64Milli(start_time)\n"
        "        - toUnixTimestamp64Milli(min(start_time) OVER ()) AS offset_ms,\n"
        "    duration_ms, span_kind,\n"
        "    multiIf(tool_name != '', tool_name, agent_name != '', agent_name,\n"
        "        request_model != '', request_model, operation_name) AS step,\n"
        "    service, span_id, parent_span_id, input_tokens, output_tokens,\n"
        "    round(cost_usd, 6) AS span_cost_usd, status, error_type\n"
        f"FROM {CALLS}\nWHERE trace_id = '${{trace_id}}'\nORDER BY start_time, span_id"
    )
    return table_panel(
        "Spans of the selected trace",
        sql,
        doc(
            "Every span of the trace chosen above, in start order: offset from the trace start, "
            "duration, kind, step (tool, agent, model or operation), parent, tokens, cost, status.",
            "an error span: its error_type says what failed; a long span: that step is the "
            "bottleneck. `llmwatch trace <id>` prints the same as a tree.",
        ),
        height=12,
    ).sort_by([common_builder.TableSortByFieldState().display_name("offset_ms")])


def build() -> dashboard_builder.Dashboard:
    dashboard = new_dashboard(
        UID,
        "LLM traces",
        "Whole chains (agent steps, retrieval, tool and LLM calls): duration and cost per trace, "
        "the slowest and costliest traces and sessions, and one trace's spans.",
    )
    for variable in [*filter_variables(), _trace_variable()]:
        dashboard = dashboard.with_variable(variable)
    dashboard = dashboard.with_row(row("Traces"))
    for panel in [*_stats(), *_trends()]:
        dashboard = dashboard.with_panel(panel)
    dashboard = dashboard.with_row(row("Slowest and costliest"))
    for panel in _tables():
        dashboard = dashboard.with_panel(panel)
    return dashboard.with_row(row("One trace")).with_panel(_spans())
