"""The Quality dashboard: judge, metric and human scores of free-text answers, and whether to trust them.

Sources: ``llm_scores_1m`` (a per-minute view over ``llm_scores FINAL``: one score per call, rubric and
judge, a replayed judge request counting once), ``llm_scores FINAL`` for the lowest-scored calls and the
agreement pairs, ``llm_rollup_1m FINAL`` for the calls judged out of all calls and for the judge's own
cost (its calls are LLM calls of service ``llmwatch-judge``), ``llm_judge_agreement FINAL`` for the
bootstrap intervals of ``llmwatch eval agreement``, and ``llm_texts FINAL`` for the redacted text of the
lowest-scored calls when text storage is on, and ``llm_pipeline_metrics`` for the sampler's counters
(process ``analyze``: sampled and capped per rule, budgets that bit). The filters (environment,
service, provider, model, prompt version) apply to the scored calls' labels.

The alert rule "Rubric score drop" (``dashboards.quality_alerts``) runs ``dashboards.quality_sql``'s drop
test every minute; the "Score drop test" table shows the same figures. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard as dashboard_builder

from dashboards.panels import (
    LLM_SPANS,
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
)
from dashboards.quality_sql import (
    AGREEMENT_DAYS,
    DROP_Z,
    MIN_PAIRS,
    MIN_SCORES,
    agreement_sql,
    drop_stats_sql,
)
from dashboards.query import DATABASE
from dashboards.sql import ROLLUP
from streams.storage import (
    AGREEMENT_TABLE,
    PIPELINE_METRICS_TABLE,
    SCORES_1M_VIEW,
    SCORES_TABLE,
    TEXTS_TABLE,
)

__all__ = ["JUDGE_SERVICE", "LOWEST", "UID", "build"]

UID: Final = "llmwatch-quality"
JUDGE_SERVICE: Final = "llmwatch-judge"
SCORES_1M: Final = f"{DATABASE}.{SCORES_1M_VIEW}"
SCORES: Final = f"{DATABASE}.{SCORES_TABLE} FINAL"
AGREEMENT: Final = f"{DATABASE}.{AGREEMENT_TABLE} FINAL"
TEXTS: Final = f"{DATABASE}.{TEXTS_TABLE} FINAL"
PIPELINE_METRICS: Final = f"{DATABASE}.{PIPELINE_METRICS_TABLE}"
LOWEST: Final = 20
LOW_JUDGED_SHARE: Final = 0.001
KAPPA_FAIR: Final = 0.4
KAPPA_GOOD: Final = 0.6


def _source(source: str) -> str:
    return f"{rollup_where()} AND source = '{source}'"


def _scores() -> list[PanelBuilder]:
    judge = timeseries_panel(
        "Judge score by rubric",
        "SELECT $__timeInterval(window_start) AS time, name,\n"
        "    sum(score_sum) / nullIf(sum(valued), 0) AS mean_score\n"
        f"FROM {SCORES_1M}\nWHERE {_source('judge')}\n"
        "GROUP BY time, name\nORDER BY time, name",
        doc(
            "Mean LLM-as-judge score per rubric (on the rubric's own scale, e.g. 1-5) per interval, "
            "over the sampled calls of the selected services, models and prompt versions.",
            "a rubric falling: pick the prompt version and model filters to find which release "
            "did it (see 'Judge score by prompt version'), then the lowest-scored calls below.",
        ),
        "short",
        span=12,
    )
    by_version = timeseries_panel(
        "Judge score by prompt version",
        "SELECT $__timeInterval(window_start) AS time,\n"
        "    concat(prompt_version, ' / ', model) AS version_model,\n"
        "    sum(score_sum) / nullIf(sum(valued), 0) AS mean_score\n"
        f"FROM {SCORES_1M}\nWHERE {_source('judge')}\n"
        "GROUP BY time, version_model\nORDER BY time, version_model",
        doc(
            "Mean judge score (all rubrics) per prompt version and model.",
            "one version below the others after a rollout: roll the prompt back, then compare the "
            "versions offline with `llmwatch eval run --baseline`.",
        ),
        "short",
        span=12,
    )
    metrics = timeseries_panel(
        "Reference metrics and human feedback",
        "SELECT $__timeInterval(window_start) AS time, concat(source, ':', name) AS score,\n"
        "    sum(score_sum) / nullIf(sum(valued), 0) AS mean_score\n"
        f"FROM {SCORES_1M}\nWHERE {rollup_where()} AND source IN ('metric', 'human')\n"
        "GROUP BY time, score\nORDER BY time, score",
        doc(
            "Mean automated metric (BLEU, chrF, ROUGE-L, BERTScore, exact; 0-1) on calls with a "
            "reference, and mean human feedback (thumbs as 1/0, ratings on their scale).",
            "human feedback falling while judge scores hold: the judge misses what users see; "
            "check the agreement panels before trusting the judge.",
        ),
        "short",
        span=24,
    )
    return [judge, by_version, metrics]


def _coverage() -> list[PanelBuilder]:
    judged = stat_panel(
        "Share of traffic judged",
        "SELECT (SELECT countDistinct(event_id) FROM "
        f"{SCORES}\n    WHERE source = 'judge' AND $__timeFilter(scored_at) AND {rollup_filters()})\n"
        f"  / nullIf((SELECT sum(requests) FROM {ROLLUP}\n"
        f"    WHERE {rollup_where(LLM_SPANS)}\n"
        f"      AND service != '{JUDGE_SERVICE}'), 0) AS judged_share",
        doc(
            "Calls scored by the judge in the range, over all LLM calls (the judge's own excluded). "
            "Sampling rules and budgets set it.",
            f"below {LOW_JUDGED_SHARE:.1%} with traffic: `llmwatch judge` is down or a budget "
            "bites (pipeline metrics 'capped.*'); above the rules' rate: an 'always' rule fires a lot.",
        ),
        "percentunit",
        thresholds((None, "red"), (LOW_JUDGED_SHARE, "green")),
        decimals=2,
    )
    cost = stat_panel(
        "Judge cost",
        f"SELECT sum(cost_usd) AS judge_cost_usd FROM {ROLLUP}\n"
        f"WHERE $__timeFilter(window_start) AND service = '{JUDGE_SERVICE}'",
        doc(
            f"What the judge's own LLM calls cost in the range (service {JUDGE_SERVICE}, priced "
            "like any call; also on the cost dashboard).",
            "above the sampling file's usd_per_hour x hours: the budget is not enforced on this "
            "judge, or the judge model's price changed; lower the rates or pick a cheaper judge.",
        ),
        "currencyUSD",
        thresholds((None, "green")),
        decimals=4,
    )
    failures = stat_panel(
        "Calls scored as failing",
        f"SELECT countIf(label IN ('fail', 'toxic', 'refused', 'ungrounded')) AS failing\n"
        f"FROM {SCORES}\nWHERE source = 'judge' AND $__timeFilter(scored_at) AND "
        f"{rollup_filters()}",
        doc(
            "Judged calls whose verdict label is a failure (fail, toxic, refused, ungrounded).",
            "rising: open the lowest-scored calls; a single prompt version or model is the usual "
            "cause.",
        ),
        "short",
        thresholds((None, "green"), (1, "orange")),
    )
    feedback = stat_panel(
        "Human feedback",
        f"SELECT count() AS feedback FROM {SCORES}\n"
        "WHERE source = 'human' AND $__timeFilter(scored_at)",
        doc(
            "Pieces of human feedback (watch.feedback) in the range.",
            "zero while users give feedback in the app: the app does not call watch.feedback, or "
            "`llmwatch analyze` (which stores feedback) is down.",
        ),
        "short",
        thresholds((None, "blue")),
    )
    return [judged, cost, failures, feedback]


def _sampling() -> list[PanelBuilder]:
    latest = (
        "SELECT instance, process_start, metric, labels, argMax(value, ts) AS v\n"
        f"    FROM {PIPELINE_METRICS}\n"
        "    WHERE process = 'analyze' AND $__timeFilter(ts)\n"
        "      AND metric IN ('sampling_sampled', 'sampling_capped')\n"
        "    GROUP BY instance, process_start, metric, labels"
    )
    rules = table_panel(
        "Judge sampling per rule",
        "SELECT labels['rule'] AS rule,\n"
        "    sumIf(v, metric = 'sampling_sampled') AS sampled,\n"
        "    sumIf(v, metric = 'sampling_capped') AS capped_by_budget\n"
        f"FROM ({latest})\nGROUP BY rule\nORDER BY capped_by_budget DESC, rule",
        doc(
            "Per sampling rule (LLMWATCH_SAMPLING_FILE): calls it sent to the judge and calls its "
            "budget refused, counted by each `llmwatch analyze` since it started (the latest value "
            "in the range); 'overall' is the overall budget.",
            "capped_by_budget growing: the budget bites and the judged share is lower than the rule "
            "says; raise the budget or lower the rate (see 'Sampling budgets that bit').",
        ),
        span=16,
        height=6,
    )
    biting = stat_panel(
        "Sampling budgets that bit",
        "SELECT uniqExact(labels['budget']) AS budgets\n"
        f"FROM {PIPELINE_METRICS}\n"
        "WHERE process = 'analyze' AND metric = 'sampling_budget_biting' AND $__timeFilter(ts)",
        doc(
            "How many budgets (per rule or overall, calls per minute or USD per hour) refused a "
            "sampled call in the range; the analyzer also logs each.",
            "above 0: some sampled calls were not judged; see 'Judge sampling per rule'.",
        ),
        "short",
        thresholds((None, "green"), (1, "orange")),
        span=8,
        height=6,
    )
    return [rules, biting]


def _agreement() -> list[PanelBuilder]:
    live = table_panel(
        "Judge-human agreement (live)",
        "SELECT rubric, pairs, round(kappa, 3) AS weighted_kappa, round(spearman, 3) AS spearman\n"
        f"FROM ({agreement_sql()})\nORDER BY rubric",
        doc(
            f"Per rubric, over the last {AGREEMENT_DAYS} days: calls scored by both the judge and a "
            "person under the rubric's name, quadratic-weighted Cohen's kappa and Spearman.",
            f"kappa below {KAPPA_FAIR}: the judge does not agree with people; fix the rubric or the "
            f"judge model before acting on its scores. Fewer than {MIN_PAIRS} pairs: not enough to "
            "tell; collect feedback under the rubric's name.",
        ),
        span=12,
    )
    intervals = table_panel(
        "Agreement with bootstrap intervals",
        "SELECT rubric, argMax(computed_at, computed_at) AS computed,\n"
        "    argMax(n, computed_at) AS pairs,\n"
        "    round(argMax(kappa, computed_at), 3) AS kappa,\n"
        "    round(argMax(kappa_low, computed_at), 3) AS kappa_low,\n"
        "    round(argMax(kappa_high, computed_at), 3) AS kappa_high,\n"
        "    round(argMax(spearman, computed_at), 3) AS spearman,\n"
        "    round(argMax(spearman_low, computed_at), 3) AS spearman_low,\n"
        "    round(argMax(spearman_high, computed_at), 3) AS spearman_high,\n"
        "    argMax(min_kappa, computed_at) AS min_kappa, argMax(passes, computed_at) AS gate_open\n"
        f"FROM {AGREEMENT}\nGROUP BY rubric\nORDER BY rubric",
        doc(
            "The newest `llmwatch eval agreement` result per rubric: kappa and Spearman with 95% "
            "bootstrap intervals, the rubric's minimum kappa and whether its scores may drive "
            "alerts (gate_open).",
            "gate_open false: the rubric's drop alert is held back; the interval's low end says how "
            "bad agreement may be. Old 'computed': run `llmwatch eval agreement` again.",
        ),
        span=12,
    )
    return [live, intervals]


def _drops_and_lowest() -> list[PanelBuilder]:
    drops = table_panel(
        "Score drop test (the alert's figures)",
        "SELECT rubric, round(m1, 3) AS last_hour, round(m0, 3) AS previous_24h, n1, n0,\n"
        "    round(z, 2) AS z, gated_in AS alert_enabled, min_kappa, pairs, round(kappa, 3) AS kappa\n"
        f"FROM ({drop_stats_sql()})\nORDER BY z",
        doc(
            "Per rubric, the judge's mean score in the last hour against the 24 hours before, and "
            f"Welch's z. The alert fires when z < {DROP_Z:g} with at least {MIN_SCORES} scores on "
            "each side and the rubric's agreement gate open.",
            "z far below 0 but alert_enabled false: the judge is not trusted enough for this rubric "
            "(see agreement); look at the lowest-scored calls yourself.",
        ),
        span=24,
        height=6,
    )
    lowest = table_panel(
        "Lowest-scored recent calls",
        "SELECT s.scored_at AS scored_at, s.name AS rubric, s.score_value AS score, s.label AS label,\n"
        "    s.explanation AS explanation, s.service AS service, s.model AS model,\n"
        "    s.prompt_version AS prompt_version, s.trace_id AS trace_id,\n"
        "    t.input_text AS redacted_input, t.output_text AS redacted_output\n"
        f"FROM (SELECT * FROM {SCORES}\n"
        f"    WHERE source = 'judge' AND score_value IS NOT NULL AND $__timeFilter(scored_at)"
        f" AND {rollup_filters()}) AS s\n"
        f"LEFT JOIN (SELECT event_id, input_text, output_text FROM {TEXTS}) AS t\n"
        "    ON t.event_id = s.event_id\n"
        f"ORDER BY s.score_value, s.scored_at DESC\nLIMIT {LOWEST}",
        doc(
            f"The {LOWEST} lowest judge scores of the range, with the judge's explanation and, "
            "where text storage is on (text_capture store), the call's redacted prompt and answer.",
            "the same prompt version or model over and over: that release is the regression; "
            "`llmwatch trace <trace_id>` shows the whole chain.",
        ),
        span=24,
        height=10,
    )
    return [drops, lowest]


def build() -> dashboard_builder.Dashboard:
    dashboard = new_dashboard(
        UID,
        "LLM quality",
        "Judge, metric and human scores by rubric, prompt version and model; the share of traffic "
        "judged and the judge's cost; judge-human agreement; the lowest-scored calls.",
    )
    for variable in filter_variables():
        dashboard = dashboard.with_variable(variable)
    dashboard = dashboard.with_row(row("Coverage and cost"))
    for panel in [*_coverage(), *_sampling()]:
        dashboard = dashboard.with_panel(panel)
    dashboard = dashboard.with_row(row("Scores"))
    for panel in _scores():
        dashboard = dashboard.with_panel(panel)
    dashboard = dashboard.with_row(row("Can the judge be trusted?"))
    for panel in _agreement():
        dashboard = dashboard.with_panel(panel)
    dashboard = dashboard.with_row(row("Drops and the lowest-scored calls"))
    for panel in _drops_and_lowest():
        dashboard = dashboard.with_panel(panel)
    return dashboard
