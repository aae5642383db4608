"""The LLM overview dashboard: traffic, errors and 429s, latency and TTFT quantiles, spend, alerts.

Everything but the alerts comes from the 1-minute rollups (``llm_rollup_1m``, read with FINAL), so a
panel costs the same whatever the call volume. Quantiles are merged DDSketch states (1% relative
accuracy, ``streams.analytics.sketches``). "Calls" are provider calls (span kinds llm and embedding); latency,
TTFT and error rates use LLM calls only (span kind llm). Nothing here does I/O.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.models import dashboard as dashboard_model

from dashboards import traces
from dashboards.panels import (
    FILTER_VARIABLES,
    LLM_SPANS,
    PROVIDER_SPANS,
    PanelBuilder,
    doc,
    filter_variables,
    new_dashboard,
    rollup_filters,
    rollup_where,
    row,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
    var_filter,
)
from dashboards.query import annotation_target, datasource_ref
from dashboards.sql import ALERT_ANNOTATION_SQL, FIRING_ALERTS_SQL, ROLLUP, sketch_quantiles

__all__ = ["UID", "alert_annotation", "build", "firing_alerts_panel"]

UID: Final = "llmwatch-overview"
ERROR_RATE_WARN: Final = 0.01
ERROR_RATE_RED: Final = 0.05
P95_WARN_MS: Final = 5_000.0
P95_RED_MS: Final = 15_000.0
TTFT_RED_MS: Final = 2_000.0


HEADROOM_FILTERS: Final = frozenset({"environment", "service"})


def _stats() -> list[PanelBuilder]:
    calls = stat_panel(
        "LLM calls",
        f"SELECT sum(requests) AS calls FROM {ROLLUP} WHERE {rollup_where(PROVIDER_SPANS)}",
        doc(
            "Provider calls (LLM and embedding spans) in the selected range and filters.",
            "no call arrived at all: check the Pipeline health dashboard (ingest rate, consumer "
            "lag, DLQ) before suspecting the applications.",
        ),
        "short",
        thresholds((None, "red"), (1, "green")),
    )
    errors = stat_panel(
        "Error rate",
        f"SELECT sum(errors) / nullIf(sum(requests), 0) AS error_rate FROM {ROLLUP} "
        f"WHERE {rollup_where(LLM_SPANS)}",
        doc(
            "Share of LLM calls that failed (any error: 429, timeout, 5xx, ...) in the range.",
            "look at 'Errors and rate limits' below for the kind; 429s call for a quota raise or "
            "more backoff, 5xx and timeouts for a provider failover.",
        ),
        "percentunit",
        thresholds((None, "green"), (ERROR_RATE_WARN, "orange"), (ERROR_RATE_RED, "red")),
        decimals=2,
    )
    p95 = stat_panel(
        "p95 latency",
        f"SELECT llmwatch_quantile(0.95, sumMap(latency_bins), sum(latency_zero_count)) AS p95 "
        f"FROM {ROLLUP} WHERE {rollup_where(LLM_SPANS)}",
        doc(
            "95th percentile duration of LLM calls over the whole range (merged sketches, 1% "
            "relative accuracy).",
            "find the model or prompt version with the filters above; a new prompt version with "
            "longer answers is the usual cause (roll it back), else a slow provider (fail over).",
        ),
        "ms",
        thresholds((None, "green"), (P95_WARN_MS, "orange"), (P95_RED_MS, "red")),
    )
    spend = stat_panel(
        "Spend",
        f"SELECT sum(cost_usd) AS spend_usd FROM {ROLLUP} "
        f"WHERE $__timeFilter(window_start) AND {rollup_filters()}",
        doc(
            "USD spent on priced calls in the range (unpriced calls count 0; see the Cost "
            "dashboard).",
            "this panel never turns red by itself; budgets and their burn are on the Cost and "
            "SLO dashboards.",
        ),
        "currencyUSD",
        thresholds((None, "blue")),
        decimals=2,
    )
    return [calls, errors, p95, spend]


def _traffic() -> list[PanelBuilder]:
    traffic = timeseries_panel(
        "Traffic by service",
        f"SELECT $__timeInterval(window_start) AS time, service,\n"
        f"    sum(requests) / ($__interval_s / 60) AS calls_per_min\n"
        f"FROM {ROLLUP}\nWHERE {rollup_where(PROVIDER_SPANS)}\n"
        f"GROUP BY time, service\nORDER BY time, service",
        doc(
            "Provider calls per minute by service (LLM and embedding spans, retries included).",
            "a drop to zero means the app or the pipeline stopped (see Pipeline health); a spike "
            "is usually a retry storm, so check the 429 rate next to it.",
        ),
        "short",
        stacked=True,
    ).axis_label("calls / min")
    errors = timeseries_panel(
        "Errors and rate limits",
        f"SELECT $__timeInterval(window_start) AS time,\n"
        f"    sum(errors) / nullIf(sum(requests), 0) AS error_rate,\n"
        f"    sum(rate_limited) / nullIf(sum(requests), 0) AS rate_limited_429,\n"
        f"    sum(timeouts) / nullIf(sum(requests), 0) AS timeouts\n"
        f"FROM {ROLLUP}\nWHERE {rollup_where(LLM_SPANS)}\nGROUP BY time\nORDER BY time",
        doc(
            "Share of LLM calls that failed, that were rate limited (HTTP 429) and that timed "
            "out, per interval. The red line is 5%.",
            "429s above the line: raise the provider quota or slow the callers (backoff, "
            "queueing); errors or timeouts without 429s: check the provider's status and fail "
            "over to another model.",
        ),
        "percentunit",
        limits=thresholds((None, "transparent"), (ERROR_RATE_RED, "red")),
    ).axis_label("share of calls")
    return [traffic, errors]


def _latency() -> list[PanelBuilder]:
    latency = timeseries_panel(
        "LLM call latency p50 / p95 / p99",
        sketch_quantiles("latency", f"{LLM_SPANS} AND {rollup_filters()}"),
        doc(
            "Duration of LLM calls per interval: median, 95th and 99th percentiles from the merged "
            "DDSketch sketches (1% relative accuracy).",
            "p95 above the line: narrow it down with the model and prompt version filters; roll "
            "back a new prompt version, or fail over a slow provider.",
        ),
        "ms",
        limits=thresholds((None, "transparent"), (P95_RED_MS, "red")),
    ).axis_label("latency")
    ttft = timeseries_panel(
        "Time to first token p50 / p95 / p99",
        sketch_quantiles("ttft", f"{LLM_SPANS} AND {rollup_filters()}"),
        doc(
            "Time to the first streamed token of LLM calls (streamed calls only) per interval.",
            "users wait on a blank screen: compare providers and models with the filters and fail "
            "over the slow one; a longer system prompt also raises TTFT.",
        ),
        "ms",
        limits=thresholds((None, "transparent"), (TTFT_RED_MS, "red")),
    ).axis_label("time to first token")
    return [latency, ttft]


def _cost() -> PanelBuilder:
    return timeseries_panel(
        "Spend per minute by service",
        f"SELECT $__timeInterval(window_start) AS time, service,\n"
        f"    sum(cost_usd) / ($__interval_s / 60) AS usd_per_min\n"
        f"FROM {ROLLUP}\nWHERE $__timeFilter(window_start) AND {rollup_filters()}\n"
        f"GROUP BY time, service\nORDER BY time, service",
        doc(
            "USD per minute spent on priced calls, by service (unpriced calls count 0).",
            "a service spending faster than usual: open the Cost dashboard for the model, prompt "
            "version and users behind it.",
        ),
        "currencyUSD",
        stacked=True,
    ).axis_label("USD / min")


def _headroom_filters() -> str:
    """Environment and service only: the panel itself breaks headroom down by provider and model."""
    return " AND ".join(
        var_filter(v.name, v.rollup_column) for v in FILTER_VARIABLES if v.name in HEADROOM_FILTERS
    )


def _headroom() -> PanelBuilder:
    return timeseries_panel(
        "Rate-limit headroom (requests left)",
        f"SELECT $__timeInterval(window_start) AS time,\n"
        f"    concat(provider_name, ' ', model) AS provider_model,\n"
        f"    min(ratelimit_remaining_requests_min) AS requests_left\n"
        f"FROM {ROLLUP}\nWHERE $__timeFilter(window_start) AND {LLM_SPANS} AND {_headroom_filters()}\n"
        f"GROUP BY time, provider_model\nORDER BY time, provider_model",
        doc(
            "Lowest x-ratelimit-remaining-requests the providers reported per interval, by provider "
            "and model (only calls whose app passes the rate-limit headers on).",
            "headroom falling toward zero precedes a 429 storm: spread load to another model or "
            "region, add backoff, or ask the provider for a higher quota before it hits.",
        ),
        "short",
    ).axis_label("requests left")


def _lifecycle() -> PanelBuilder:
    return table_panel(
        "Traffic to deprecated or retiring models",
        f"SELECT provider_name AS provider, model, lifecycle, service,\n"
        f"    sum(requests) AS calls, max(window_start) AS last_call\n"
        f"FROM {ROLLUP}\nWHERE $__timeFilter(window_start) AND lifecycle NOT IN ('', 'ok')\n"
        f"GROUP BY provider, model, lifecycle, service\nORDER BY calls DESC",
        doc(
            "Calls to models whose provider has announced (or passed) a deprecation or retirement "
            "date, from streams/analytics/data/model_deprecations.yaml and genai-prices' flags. The worker "
            "also raises a model-lifecycle alert the first time it sees each.",
            "any 'retired' or 'retiring_soon' row will start failing: move that service to the "
            "replacement model now; 'deprecated' rows need a migration ticket.",
        ),
        height=6,
    )


def firing_alerts_panel() -> PanelBuilder:
    """Alerts firing at the end of the range (shared with the SLO dashboard)."""
    return table_panel(
        "Firing SLO alerts",
        FIRING_ALERTS_SQL,
        doc(
            "Burn-rate alerts of the SLOs in config/slos.yaml that are firing at the end of the "
            "selected range, newest first, with their burn rates when they fired and the runbook. "
            "Not narrowed by the filters above.",
            "any row here is an incident: page-severity rows first; follow the runbook column and "
            "open the SLO dashboard for the burn-rate history.",
        ),
        height=7,
    )


def alert_annotation() -> dashboard_builder.AnnotationQuery:
    """SLO alerts as regions on the time series (from llm_alerts)."""
    return (
        dashboard_builder.AnnotationQuery()
        .name("SLO alerts")
        .datasource(datasource_ref())
        .enable(True)
        .icon_color("red")
        .target(annotation_target(ALERT_ANNOTATION_SQL))
    )


def build() -> dashboard_builder.Dashboard:
    dashboard = new_dashboard(
        UID,
        "LLM overview",
        "Traffic, errors, latency and spend of every LLM call llmwatch sees, with firing SLO alerts.",
    ).link(
        # One click to the slowest and costliest traces of the last hour.
        dashboard_builder.DashboardLink("Slowest and costliest traces (last hour)")
        .type(dashboard_model.DashboardLinkType.LINK)
        .url(traces.OVERVIEW_LINK)
        .icon("dashboard")
        .include_vars(True)
    )
    for variable in filter_variables():
        dashboard = dashboard.with_variable(variable)
    dashboard = dashboard.annotation(alert_annotation()).with_row(row("Now"))
    for panel in _stats():
        dashboard = dashboard.with_panel(panel)
    dashboard = dashboard.with_panel(firing_alerts_panel()).with_row(row("Traffic and errors"))
    for panel in [*_traffic(), *_latency()]:
        dashboard = dashboard.with_panel(panel)
    dashboard = dashboard.with_row(row("Spend and headroom")).with_panel(_cost())
    return dashboard.with_panel(_headroom()).with_panel(_lifecycle())
