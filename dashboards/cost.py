"""The cost dashboard: USD per call, spend by model / prompt version / variant, top users, budgets.

Spend comes from the rollups (sum over priced calls; calls without a known price are counted in
``unpriced_requests`` and add 0 USD). Top users come from the stream's top-K snapshots
(``llm_top_users``: Space-Saving, so a user's cost may be overestimated by at most ``error_bound_usd``),
one user's hourly history from ``llm_user_cost_1h``, tenants from ``llm_tenant_cost_1m``, budget
burn from the cost SLOs' status rows (``llm_slo_status``). Nothing here does I/O.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard as dashboard_builder

from dashboards.panels import (
    PanelBuilder,
    doc,
    filter_variables,
    new_dashboard,
    query_variable,
    rollup_where,
    row,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
    var_filter,
)
from dashboards.sql import ROLLUP

__all__ = ["UID", "build"]

UID: Final = "llmwatch-cost"
TOP_USERS: Final = 20
UNPRICED_WARN: Final = 1.0
# Top-user snapshots: the latest one of each worker instance within the range, kept only while that
# instance is the newest publisher of at least one of the source partitions it covers. A dead
# instance's last snapshot stops counting once another instance publishes for its partitions (rows
# from before migration 0008 carry no partitions and are kept, as before).
_LATEST_SNAPSHOTS: Final = """(snapshot_minute, instance) IN (
    WITH latest AS (
        SELECT instance, max(published_at) AS at, argMax(snapshot_minute, published_at) AS minute,
            argMax(partitions, published_at) AS parts
        FROM llmwatch.llm_top_users FINAL
        WHERE $__timeFilter(snapshot_minute) GROUP BY instance)
    SELECT minute, instance FROM latest
    WHERE empty(parts) OR instance IN (
        SELECT argMax(instance, at) FROM latest ARRAY JOIN parts AS p GROUP BY p))"""


def _stats() -> list[PanelBuilder]:
    spend = stat_panel(
        "Spend",
        f"SELECT sum(cost_usd) AS spend_usd FROM {ROLLUP} WHERE {rollup_where()}",
        doc(
            "USD spent on priced calls in the range and filters.",
            "never red by itself; compare with the budgets in 'Budget burn' below.",
        ),
        "currencyUSD",
        thresholds((None, "blue")),
        decimals=2,
    )
    per_call = stat_panel(
        "USD per priced call",
        f"SELECT sum(cost_usd) / nullIf(sum(priced_requests), 0) AS usd_per_call "
        f"FROM {ROLLUP} WHERE {rollup_where()}",
        doc(
            "Average USD per priced call in the range (spend / priced calls).",
            "never red by itself; a jump means more tokens per call or a pricier model: see "
            "'Spend by model' and 'Spend by prompt version'.",
        ),
        "currencyUSD",
        thresholds((None, "blue")),
        decimals=5,
    )
    rate = stat_panel(
        "Spend per hour",
        f"SELECT sum(cost_usd) / (dateDiff('second', $__fromTime, $__toTime) / 3600) "
        f"AS usd_per_hour FROM {ROLLUP} WHERE {rollup_where()}",
        doc(
            "Average USD per hour over the selected range.",
            "never red by itself; the cost SLOs compare this rate with their budgets (see "
            "'Budget burn').",
        ),
        "currencyUSD",
        thresholds((None, "blue")),
        decimals=2,
    )
    unpriced = stat_panel(
        "Calls without a price",
        f"SELECT sum(unpriced_requests) AS unpriced_calls FROM {ROLLUP} "
        f"WHERE {rollup_where()} AND model != ''",
        doc(
            "Model calls whose price llmwatch does not know (their cost counts as 0 USD, so spend "
            "is understated).",
            "add the models listed in 'Calls without a price, by model' to a price-overrides file "
            "(see config/prices.example.yaml) and point the worker at it.",
        ),
        "short",
        thresholds((None, "green"), (UNPRICED_WARN, "red")),
    )
    return [spend, per_call, rate, unpriced]


def _by(title: str, label: str, description: str, extra_where: str = "") -> PanelBuilder:
    return timeseries_panel(
        title,
        f"SELECT $__timeInterval(window_start) AS time, {label} AS series,\n"
        f"    sum(cost_usd) / ($__interval_s / 60) AS usd_per_min\n"
        f"FROM {ROLLUP}\nWHERE {rollup_where()}{extra_where}\n"
        f"GROUP BY time, series\nORDER BY time, series",
        description,
        "currencyUSD",
        stacked=True,
    ).axis_label("USD / min")


def _trends() -> list[PanelBuilder]:
    per_call = timeseries_panel(
        "USD per priced call by service",
        f"SELECT $__timeInterval(window_start) AS time, service,\n"
        f"    sum(cost_usd) / nullIf(sum(priced_requests), 0) AS usd_per_call\n"
        f"FROM {ROLLUP}\nWHERE {rollup_where()}\nGROUP BY time, service\nORDER BY time, service",
        doc(
            "Average USD per priced call, per interval and service.",
            "a step up right after a deploy is a prompt or model change: compare prompt versions "
            "below and roll back if the quality gain does not pay for it.",
        ),
        "currencyUSD",
    ).axis_label("USD / call")
    by_model = _by(
        "Spend by model",
        "concat(provider_name, '/', model)",
        doc(
            "USD per minute by provider and model (stacked).",
            "one model growing faster than its traffic: check its output tokens and whether a "
            "cheaper model would do.",
        ),
        " AND model != ''",
    )
    by_prompt = _by(
        "Spend by prompt version",
        "concat(prompt_name, ' ', prompt_version)",
        doc(
            "USD per minute by prompt name and version (calls that carry a prompt version).",
            "a new version spending more per minute at the same traffic writes longer answers or "
            "sends more context: roll it back or trim it.",
        ),
        " AND prompt_version != ''",
    )
    return [per_call, by_model, by_prompt]


def _variants() -> PanelBuilder:
    return table_panel(
        "Cost by variant",
        f"SELECT prompt_name, variant, sum(requests) AS calls,\n"
        f"    round(sum(cost_usd), 4) AS spend_usd,\n"
        f"    sum(cost_usd) / nullIf(sum(priced_requests), 0) AS usd_per_call,\n"
        f"    sum(errors) / nullIf(sum(requests), 0) AS error_rate\n"
        f"FROM {ROLLUP}\nWHERE {rollup_where()} AND variant != ''\n"
        f"GROUP BY prompt_name, variant\nORDER BY prompt_name, spend_usd DESC",
        doc(
            "Spend, USD per call and error rate of each experiment variant, per prompt.",
            "a variant costing much more per call than its siblings for no better error rate is a "
            "candidate to stop.",
        ),
        span=12,
    )


def _users() -> list[PanelBuilder]:
    top = table_panel(
        "Top users by cost (trailing hour)",
        f"SELECT tenant_id, user_id, round(sum(cost_usd), 4) AS cost_usd, sum(requests) AS calls,\n"
        f"    round(sum(error_bound_usd), 4) AS max_overestimate_usd\n"
        f"FROM llmwatch.llm_top_users FINAL\nWHERE {_LATEST_SNAPSHOTS}\n"
        f"GROUP BY tenant_id, user_id\nORDER BY cost_usd DESC\nLIMIT {TOP_USERS}",
        doc(
            "The stream's latest top users by USD over the hour before the end of the range, "
            "merged over worker instances. Space-Saving counts: a cost may be overestimated by at "
            "most max_overestimate_usd. Not narrowed by the filters above.",
            "one user far above the rest is usually a runaway integration or loop: pick them in "
            "the 'User' variable for their history, and rate-limit or contact the tenant.",
        ),
        span=12,
    )
    history = timeseries_panel(
        "Hourly cost of the selected user",
        "SELECT hour_start AS time, sum(cost_usd) AS usd, sum(requests) AS calls\n"
        "FROM llmwatch.llm_user_cost_1h FINAL\n"
        "WHERE hour_start >= toStartOfHour($__fromTime) AND hour_start <= $__toTime\n"
        "  AND user_id IN (${user:singlequote})\nGROUP BY time\nORDER BY time",
        doc(
            "USD and calls per hour of the user chosen in the 'User' variable (every tenant).",
            "a user whose hourly cost keeps climbing: check their calls in llm_calls "
            "(user_id) and apply a per-user limit.",
        ),
        "currencyUSD",
        min_interval="1h",
    ).axis_label("USD / hour")
    return [top, history]


def _budgets() -> list[PanelBuilder]:
    burn = timeseries_panel(
        "Budget burn rate (cost SLOs)",
        "SELECT $__timeInterval(evaluated_at) AS time, slo,\n"
        "    argMax(burn_rate, evaluated_at) AS burn_rate\n"
        "FROM llmwatch.llm_slo_status FINAL\n"
        "WHERE $__timeFilter(evaluated_at) AND sli_type = 'cost' AND window_kind = 'long'\n"
        "GROUP BY time, slo\nORDER BY time, slo",
        doc(
            "Spend rate over each cost SLO's long window divided by its USD-per-hour budget "
            "(config/slos.yaml): 1 spends exactly the budget. Not narrowed by the filters above.",
            "above 1 the budget will be exceeded: open 'Spend by model' and 'Top users' for the "
            "cause; the cost SLO's alert fires when both of its windows stay above the line.",
        ),
        "none",
        limits=thresholds((None, "transparent"), (1.0, "red")),
    ).axis_label("x budget")
    remaining = table_panel(
        "Cost budgets",
        "SELECT slo, any(usd_per_hour) AS budget_usd_per_hour, any(budget_period) AS period,\n"
        "    argMax(budget_remaining, evaluated_at) AS budget_remaining,\n"
        "    argMax(burn_rate, evaluated_at) AS burn_rate_now,\n"
        "    argMax(unpriced, evaluated_at) AS unpriced_calls_in_window\n"
        "FROM llmwatch.llm_slo_status FINAL\n"
        "WHERE $__timeFilter(evaluated_at) AND sli_type = 'cost' AND window_kind = 'long'\n"
        "GROUP BY slo\nORDER BY budget_remaining",
        doc(
            "Each cost SLO at the end of the range: budget, share of the period's budget left "
            "(1 = untouched, below 0 = overspent), current burn rate and unpriced calls.",
            "budget_remaining near or below 0: the period's money is spent; cut the biggest "
            "spender or agree on a higher budget.",
        ),
        span=12,
    )
    return [burn, remaining]


def _tenants() -> PanelBuilder:
    scope = " AND ".join(var_filter(name, name) for name in ("environment", "service"))
    return table_panel(
        "Spend by tenant",
        f"SELECT tenant_id, sum(requests) AS calls, round(sum(cost_usd), 4) AS spend_usd,\n"
        f"    sum(cost_usd) / nullIf(sum(requests) - sum(unpriced_requests), 0) AS usd_per_priced_call,\n"
        f"    sum(unpriced_requests) AS unpriced_calls,\n"
        f"    sum(errors) / nullIf(sum(requests), 0) AS error_rate\n"
        f"FROM llmwatch.llm_tenant_cost_1m FINAL\n"
        f"WHERE $__timeFilter(window_start) AND {scope}\n"
        f"GROUP BY tenant_id\nORDER BY spend_usd DESC\nLIMIT {TOP_USERS}",
        doc(
            "The tenants spending most in the range (every span kind), with calls, USD per priced "
            "call, unpriced calls and error rate. Narrowed by the environment and service filters "
            "only (tenant costs are kept per service, not per model).",
            "a tenant far above its usual share: look at its top users above and at its cost SLO "
            "on the SLO dashboard; agree on a limit with the tenant.",
        ),
        span=12,
    )


def _unpriced() -> PanelBuilder:
    return table_panel(
        "Calls without a price, by model",
        f"SELECT provider_name, model, sum(unpriced_requests) AS unpriced_calls,\n"
        f"    sum(requests) AS calls, unpriced_calls / calls AS unpriced_share\n"
        f"FROM {ROLLUP}\nWHERE {rollup_where()} AND model != ''\n"
        f"GROUP BY provider_name, model\nORDER BY unpriced_calls DESC, calls DESC",
        doc(
            "Every model in the range with how many of its calls had no known price (these add 0 "
            "USD to every spend figure).",
            "a model with unpriced calls: add it to the price overrides (config/prices.example.yaml "
            "shows the format); self-hosted models need an explicit price too.",
        ),
        span=12,
    )


def build() -> dashboard_builder.Dashboard:
    dashboard = new_dashboard(
        UID, "LLM cost", "Where the money goes: per call, per model, prompt, variant and user."
    )
    for variable in filter_variables():
        dashboard = dashboard.with_variable(variable)
    dashboard = dashboard.with_variable(
        query_variable(
            "user",
            "User",
            f"SELECT DISTINCT user_id FROM llmwatch.llm_top_users FINAL "
            f"WHERE {_LATEST_SNAPSHOTS} ORDER BY user_id",
            "A user from the latest top-users snapshots, for 'Hourly cost of the selected user'.",
            multi_all=False,
        )
    ).with_row(row("Totals"))
    for panel in _stats():
        dashboard = dashboard.with_panel(panel)
    dashboard = dashboard.with_row(row("Trends"))
    for panel in [*_trends(), _variants()]:
        dashboard = dashboard.with_panel(panel)
    dashboard = dashboard.with_row(row("Users and budgets"))
    for panel in [*_users(), _tenants(), *_budgets(), _unpriced()]:
        dashboard = dashboard.with_panel(panel)
    return dashboard
