"""The Prompts dashboard: one prompt's versions and labels, its canary against the baseline, the
verdicts, and what each version costs and scores.

Sources (SQL in ``dashboards.prompts_sql``): ``llm_prompts FINAL`` and ``llm_prompt_labels FINAL`` (the
registry's mirror: versions, and every label move with who, when and why), ``llm_canary_verdicts
FINAL`` and ``llm_canary_metrics FINAL`` (``llmwatch canary``: one row per look, and per look and
metric, with the always-valid confidence interval of canary - baseline), ``llm_rollup_1m FINAL`` and
``llm_scores_1m`` for the versions' calls, cost and scores.

Variables: ``prompt`` (single-select: every panel is about one prompt), ``label`` (multi, All), ``metric``
(the canary metrics reported in the range; the per-metric row repeats over it) and the other
dashboards' call filters (environment, service, provider, model), listing only values of calls of the
prompt's versions. Label moves are annotations on every time series. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dashboard_model

from dashboards import prompts_sql as sql
from dashboards.panels import (
    PanelBuilder,
    doc,
    new_dashboard,
    query_variable,
    row,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
    var_filter,
    with_sections,
)
from dashboards.query import annotation_target, datasource_ref

__all__ = ["BAND_HIGH", "BAND_LOW", "UID", "VERDICT_COLORS", "build", "label_annotation"]

UID: Final = "llmwatch-prompts"
BAND_LOW: Final = "canary_band_low"
BAND_HIGH: Final = "canary_band_high"
BAND_OPACITY: Final = 20
VERDICT_COLORS: Final = {"waiting": "blue", "pass": "green", "marginal": "orange", "fail": "red"}
SCORE_WARN: Final = 100.0
SCORE_RED: Final = 75.0


def _verdict_mappings() -> list[dashboard_model.ValueMapping]:
    return [
        dashboard_model.ValueMap(
            options={
                str(sql.VERDICT_CODES[word]): dashboard_model.ValueMappingResult(
                    text=word, color=color, index=index
                )
                for index, (word, color) in enumerate(VERDICT_COLORS.items())
            }
        )
    ]


def _verdict_thresholds() -> dashboard_builder.ThresholdsConfig:
    """The verdict codes' colors as thresholds (the same colors as the value mappings)."""
    steps = sorted((code, VERDICT_COLORS[word]) for word, code in sql.VERDICT_CODES.items())
    return thresholds((None, steps[0][1]), *[(float(code), color) for code, color in steps[1:]])


def _word_colors() -> list[dashboard_model.DynamicConfigValue]:
    """A table column of verdict words, each cell on its verdict's color."""
    words = dashboard_model.ValueMap(
        options={
            word: dashboard_model.ValueMappingResult(color=color, index=index)
            for index, (word, color) in enumerate(VERDICT_COLORS.items())
        }
    )
    return [
        dashboard_model.DynamicConfigValue(id_val="mappings", value=[words]),
        dashboard_model.DynamicConfigValue(
            id_val="custom.cellOptions", value={"type": "color-background"}
        ),
    ]


def _variables() -> list[dashboard_builder.QueryVariable]:
    prompt = query_variable(
        "prompt",
        "Prompt",
        f"SELECT DISTINCT name FROM {sql.PROMPTS} ORDER BY name",
        "The prompt to show (every prompt pushed to the registry).",
        multi_all=False,
    )
    label = query_variable(
        "label",
        "Label",
        f"SELECT DISTINCT label FROM {sql.LABELS} WHERE {sql.PROMPT} ORDER BY label",
        "Only these labels of the prompt (All: every label).",
    )
    metric = query_variable(
        "metric",
        "Canary metric",
        f"SELECT DISTINCT metric FROM {sql.METRICS}\n"
        f"WHERE {sql.PROMPT} AND {var_filter('label', 'label')} AND $__timeFilter(evaluated_at)\n"
        "ORDER BY metric",
        "The canary metrics to show, one row each (All: every metric judged in the range).",
    )
    calls = []
    for index, var in enumerate(sql.CALL_FILTERS):
        column = var.rollup_column
        narrowing = "".join(
            f" AND {var_filter(parent.name, parent.rollup_column)}"
            for parent in sql.CALL_FILTERS[:index]
        )
        calls.append(
            query_variable(
                var.name,
                var.label,
                f"SELECT DISTINCT {column} FROM {sql.ROLLUP}\n"
                f"WHERE $__timeFilter(window_start) AND {column} != ''\n"
                f"  AND {sql.prompt_versions()}{narrowing}\nORDER BY {column}",
                f"Only count calls of these {var.label.lower()}s (All: no filter).",
            )
        )
    return [prompt, label, metric, *calls]


def label_annotation() -> dashboard_builder.AnnotationQuery:
    """The prompt's label moves as annotations (from llm_prompt_labels)."""
    return (
        dashboard_builder.AnnotationQuery()
        .name("Label moves")
        .datasource(datasource_ref())
        .enable(True)
        .icon_color("purple")
        .target(annotation_target(sql.label_annotation_sql()))
    )


def _now() -> list[PanelBuilder]:
    verdict = stat_panel(
        "Latest canary verdict",
        sql.latest_verdict_sql(),
        doc(
            "The verdict of the newest look at a canary of this prompt in the range: pass, "
            "marginal (worse than a tolerance, not significantly), fail (a critical metric "
            "significantly worse) or waiting (too few calls yet).",
            "fail: the policy rolled the label back (action rolled_back) or alerted (action "
            "alert); see 'Verdict history' and the failed metrics' rows. With act false run "
            "`llmwatch prompts rollback NAME --label LABEL`.",
        ),
        "none",
        _verdict_thresholds(),
        height=6,
    ).mappings(_verdict_mappings())
    score = stat_panel(
        "Latest canary score",
        sql.latest_score_sql(),
        doc(
            "Percent of the judged metrics that pass at the newest look (Kayenta's score). The "
            "verdict, not the score, decides: one critical failure fails the canary.",
            f"below {SCORE_WARN:g}: some metric is marginal or failing; the metric rows below "
            "show which and by how much.",
        ),
        "percent",
        thresholds((None, "red"), (SCORE_RED, "orange"), (SCORE_WARN, "green")),
        decimals=1,
        height=6,
    )
    labels = table_panel(
        "Labels now",
        sql.labels_now_sql(),
        doc(
            "Each label at the end of the range: the versions it serves with their weights "
            "(#n is the push order), its canary, the state before, and who moved it, when and why.",
            "an unexpected version or canary: `llmwatch prompts show NAME` has the history; "
            "`llmwatch prompts rollback NAME --label LABEL` undoes the last move.",
        ),
        span=12,
        height=6,
    )
    return [verdict, score, labels]


def _labels() -> list[PanelBuilder]:
    weights = (
        timeseries_panel(
            "Label weights over time",
            sql.label_weights_sql(),
            doc(
                "The share of each label's traffic each version gets (percent), stepping at every "
                "label move; the moves are also annotations on every time series.",
                "a canary's share dropping to 0 without a planned move: the canary analysis "
                "rolled it back (action auto_rollback in 'Label moves').",
            ),
            "percent",
            span=12,
        )
        .line_interpolation(common.LineInterpolation.STEP_AFTER)
        # The long rows pivot to one column per series with nulls where another series moved.
        .span_nulls(True)
        .show_points(common.VisibilityMode.ALWAYS)
        .axis_soft_min(0)
    )
    versions = table_panel(
        "Versions",
        sql.versions_sql(),
        doc(
            "The prompt's versions in push order (#1 first): the content-addressed id, target "
            "model, when and by whom it was pushed.",
            "this panel has no red state; `llmwatch prompts diff NAME A B` shows what changed.",
        ),
        span=12,
    )
    moves = table_panel(
        "Label moves",
        sql.label_moves_sql(),
        doc(
            "Every move of the prompt's labels in the range, newest first: the action (set, split, "
            "rollback, auto_rollback), the state after and before, the canary, who and why.",
            "an auto_rollback: the canary failed; its verdict and failed metrics are in 'Verdict "
            "history'. A move nobody announced: ask moved_by.",
        ),
        height=7,
    )
    return [weights, versions, moves]


def _verdicts() -> PanelBuilder:
    return table_panel(
        "Verdict history",
        sql.verdict_history_sql(),
        doc(
            "Every look at a canary of the prompt in the range, newest first: the canary and "
            "baseline versions, the canary's weight, calls per arm, the verdict and score, the "
            "metrics that failed and what the policy did (none, alert, rolled_back).",
            "fail with action alert: the policy does not act, roll back by hand (`llmwatch prompts "
            "rollback NAME --label LABEL`); fail with rolled_back: fix the version before a new "
            "canary.",
        ),
        height=8,
    ).override_by_name("verdict", _word_colors())


def _metric() -> list[PanelBuilder]:
    no_line = dashboard_model.DynamicConfigValue(id_val="custom.lineWidth", value=0)
    band = (
        timeseries_panel(
            "$metric: canary vs baseline",
            sql.metric_band_sql(),
            doc(
                "The canary's and the baseline's value of the metric at each look, and the band "
                "of canary values the always-valid confidence interval of (canary - baseline) "
                "allows, drawn around the baseline. No band while an arm has too few calls.",
                "the canary above the baseline by more than the metric's tolerance with the band "
                "clear of the baseline (for scores: below it): the metric fails at that look.",
            ),
            "short",
            span=16,
        )
        .show_points(common.VisibilityMode.ALWAYS)
        .override_by_name(
            BAND_HIGH,
            [
                no_line,
                dashboard_model.DynamicConfigValue(id_val="custom.fillBelowTo", value=BAND_LOW),
                dashboard_model.DynamicConfigValue(id_val="custom.fillOpacity", value=BAND_OPACITY),
            ],
        )
        .override_by_name(BAND_LOW, [no_line])
    )
    looks = table_panel(
        "$metric: looks",
        sql.metric_looks_sql(),
        doc(
            "The metric at every look, newest first: samples per arm, values, the confidence "
            "interval of the difference (NULL: unbounded yet) and the always-valid p-value.",
            "verdict fail: the interval lies beyond the tolerance; marginal: the canary is worse "
            "than the tolerance but the interval still reaches it.",
        ),
        span=8,
    ).override_by_name("verdict", _word_colors())
    return [band, looks]


def _versions() -> list[PanelBuilder]:
    calls = timeseries_panel(
        "Calls by version",
        sql.calls_by_version_sql(),
        doc(
            "LLM calls per minute of each version of the prompt (all labels): the split as the "
            "apps applied it.",
            "a version's calls not following its label weight: apps pin a version or run an old "
            "SDK; a rolled-back canary still called: an app caches the prompt past its TTL.",
        ),
        "short",
        stacked=True,
    ).axis_label("calls / min")
    cost = timeseries_panel(
        "Cost per request by version",
        sql.cost_by_version_sql(),
        doc(
            "USD per priced LLM call of each version of the prompt.",
            "a new version costing more per call: longer answers or a pricier model; compare "
            "output tokens per call in 'Versions compared'.",
        ),
        "currencyUSD",
    ).decimals(5)
    compared = table_panel(
        "Versions compared",
        sql.versions_compared_sql(),
        doc(
            "Per version over the range: LLM calls, error rate, p95 latency (merged sketches, 1% "
            "relative accuracy), USD and output tokens per call.",
            "a canary worse than its baseline here but passing the canary analysis: it has too "
            "few calls to tell yet; wait for the next looks.",
        ),
        span=12,
        height=7,
    )
    scores = table_panel(
        "Scores by version",
        sql.scores_by_version_sql(),
        doc(
            "Per version and score (judge rubric, metric or human feedback): how many scores and "
            "their mean, on the score's own scale.",
            "a version scoring lower on a rubric: read its lowest-scored calls on the Quality "
            "dashboard before promoting it.",
        ),
        span=12,
        height=7,
    )
    return [calls, cost, compared, scores]


def build() -> dashboard_builder.Dashboard:
    dashboard = new_dashboard(
        UID,
        "LLM prompts",
        "One prompt: its versions and labels, the canary against its baseline with confidence "
        "bands, the verdicts, and each version's calls, cost and scores.",
    )
    return with_sections(
        dashboard,
        _variables(),
        [
            (row("Now"), _now()),
            (row("Versions and labels"), _labels()),
            (row("Canary verdicts"), [_verdicts()]),
            (row("Canary metric: $metric", repeat="metric"), _metric()),
            (row("Cost and quality per version"), _versions()),
        ],
        label_annotation(),
    )
