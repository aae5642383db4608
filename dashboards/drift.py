"""The Drift dashboard: which scopes drifted and how strongly, what users ask now (topic shares and novel
traffic with examples), and the call's shape (token counts, latency, finish reasons, outcomes).

Sources (SQL in ``dashboards.drift_sql``): ``llm_drift FINAL`` (``llmwatch drift``: one row per window,
scope, feature and test with its q-value, effect and flag), ``llm_drift_topics FINAL`` (topic shares per
window and text scope, novel examples) and ``llm_alerts FINAL`` (the drift alerts, rule ``drift``, as
annotations).

Variables: ``service`` (multi, All: no filter; the per-service row repeats over it) and ``direction``
(single-select, ``input`` by default: the prompts' or the outputs' topics). The "When red:" text panel
is the on-call runbook. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import text
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dashboard_model
from grafana_foundation_sdk.models import text as text_model

from dashboards import drift_sql as sql
from dashboards import overview, prompts
from dashboards.panels import (
    WHEN_RED,
    PanelBuilder,
    doc,
    new_dashboard,
    query_variable,
    row,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
    with_sections,
)
from dashboards.query import annotation_target, datasource_ref
from streams.drift.consumer import ALERT_RULE

__all__ = [
    "DEFAULT_DIRECTION",
    "REFERENCE_SERIES",
    "SERVICE_ROW",
    "STATE_COLORS",
    "UID",
    "build",
    "drift_alert_annotation",
    "runbook_markdown",
]

UID: Final = "llmwatch-drift"
DEFAULT_DIRECTION: Final = "input"
SERVICE_ROW: Final = "$service: topics, novel traffic and shape"
REFERENCE_SERIES: Final = "reference_novel_share"
STATE_COLORS: Final = {"drifting": "red", "recovered": "green"}
DASH: Final = {"fill": "dash", "dash": [10, 10]}


def _variables() -> list[dashboard_builder.QueryVariable]:
    service = query_variable(
        "service",
        "Service",
        f"SELECT DISTINCT service FROM {sql.DRIFT}\n"
        "WHERE $__timeFilter(window_start) AND service != ''\nORDER BY service",
        "Only these services (All: every service the drift monitor tested in the range); the "
        "per-service row repeats for each.",
    )
    direction = query_variable(
        "direction",
        "Direction",
        f"SELECT DISTINCT direction FROM {sql.TOPICS}\n"
        f"WHERE $__timeFilter(window_start) AND {sql.SERVICE} AND direction != ''\n"
        "ORDER BY direction",
        "The texts the topic panels show: input (prompts) or output (answers).",
        multi_all=False,
    ).current(
        dashboard_model.VariableOption(
            text=DEFAULT_DIRECTION, value=DEFAULT_DIRECTION, selected=True
        )
    )
    return [service, direction]


def drift_alert_annotation() -> dashboard_builder.AnnotationQuery:
    """The drift alerts (rule ``drift`` in llm_alerts) of the selected services as annotations."""
    return (
        dashboard_builder.AnnotationQuery()
        .name("Drift alerts")
        .datasource(datasource_ref())
        .enable(True)
        .icon_color("red")
        .target(annotation_target(sql.drift_alerts_sql()))
    )


def runbook_markdown() -> str:
    """The on-call steps of the "When red:" panel (Markdown; Grafana fills in the time range)."""
    since = "?${__url_time_range}"
    return (
        "**Which scope and feature drifted:** *Flagged scopes* lists them (scope = service / model / "
        "span kind / direction, the feature and test, the effect, q and what moved). Each flag also "
        f"raised a **Drift alert** (rule `{ALERT_RULE}` in `llm_alerts`): the red marks on the time "
        f"series here and the alert annotations of the [Overview](/d/{overview.UID}{since}).\n\n"
        "- **topics, novel or embedding** (the texts): read *Examples of the top novel group* and "
        f"check the [prompt versions deployed in the window](/d/{prompts.UID}{since}). Input drift "
        "is usually new user intent (a launch, a campaign, a new client); output drift of a "
        "retrieval service is often a **retrieval index change** (new or lost documents).\n"
        "- **output_tokens, duration_ms or time_to_first_token_ms with the same model id** (no "
        "prompt change): likely a **silent provider model update**. Compare with the provider's "
        "changelog, pin a dated model version, and run the golden eval suite (`llmwatch eval run`) "
        "to see whether quality moved too.\n"
        "- **finish_reason or outcome**: more `length` stops (raise max tokens or shorten the "
        "prompt) or a new error type (see the SLOs dashboard).\n"
        "- **A deliberate change** (new prompt, model or index, verified): pin a new baseline with "
        "`llmwatch drift baseline set`, so later windows are compared with the new normal."
    )


def _now() -> list[PanelBuilder]:
    count = stat_panel(
        "Scopes flagged (24 h)",
        sql.flagged_count_sql(),
        doc(
            "Scopes (service / model / span kind / direction) with at least one flagged test in "
            "the 24 hours before the end of the range: q at most the FDR "
            f"({sql.FDR:g}) and an effect over its floor.",
            "any: read 'Flagged scopes' beside it, then follow the 'When red:' steps below.",
        ),
        "none",
        thresholds((None, "green"), (1.0, "red")),
        span=4,
        height=9,
    )
    state = dashboard_model.ValueMap(
        options={
            word: dashboard_model.ValueMappingResult(color=color, index=index)
            for index, (word, color) in enumerate(STATE_COLORS.items())
        }
    )
    flagged = table_panel(
        "Flagged scopes (last 24 h)",
        sql.flagged_scopes_sql(),
        doc(
            "Each (scope, feature, test) flagged in the 24 hours before the end of the range, "
            "newest first: effect (PSI; for embedding the centroid cosine distance; for novel the "
            "novel share minus the reference's), q-value, what moved, its newest flagged window, "
            "how many windows were flagged, and whether the newest window tested is still flagged.",
            "state drifting: follow the 'When red:' steps for the feature; recovered after one "
            "window: a burst, watch the next windows.",
        ),
        span=20,
        height=9,
    ).override_by_name(
        "state",
        [
            dashboard_model.DynamicConfigValue(id_val="mappings", value=[state]),
            dashboard_model.DynamicConfigValue(
                id_val="custom.cellOptions", value={"type": "color-background"}
            ),
        ],
    )
    runbook = (
        text.Panel()
        .title(WHEN_RED)
        .description(
            doc(
                "What to do when a drift panel is red, by the feature that drifted.",
                "follow the step for the flagged feature; the drift alerts link here.",
            )
        )
        .mode(text_model.TextMode.MARKDOWN)
        .content(runbook_markdown())
        .span(24)
        .height(8)
    )
    return [count, flagged, runbook]


def _score() -> PanelBuilder:
    return (
        timeseries_panel(
            "Drift score per scope",
            sql.drift_score_sql(),
            doc(
                "Per scope and window, -log10 of the smallest Benjamini-Hochberg q-value among its "
                f"tests (capped at {sql.SCORE_CAP}): {sql.SCORE_RED:g} is q = {sql.FDR:g}, the "
                "FDR. Stationary traffic stays well below the line.",
                "a scope above the line: it is flagged when its effect also reaches the floor (see "
                "'Flagged scopes'); many scopes at once: a shared cause (a provider, an upstream "
                "change) or a pipeline problem.",
            ),
            "none",
            span=24,
            height=9,
            limits=thresholds((None, "green"), (sql.SCORE_RED, "red")),
            min_interval=sql.WINDOW_INTERVAL,
        )
        .show_points(common.VisibilityMode.ALWAYS)
        .axis_soft_min(0)
        .axis_label("-log10 q")
    )


def _service() -> list[PanelBuilder]:
    shares = (
        timeseries_panel(
            "Topic shares: $service ($direction)",
            sql.topic_shares_sql(),
            doc(
                "The share of the window's texts in each topic (k-means clusters of the reference's "
                "embeddings, kept until the baseline is set again), stacked to 100%; novel: texts "
                "farther from every topic than 99% of the reference.",
                "one topic growing or shrinking: users ask differently; novel growing: something "
                "new, read its examples below.",
            ),
            "percentunit",
            span=12,
            stacked=True,
            min_interval=sql.WINDOW_INTERVAL,
        )
        .axis_soft_max(1)
        .override_by_regexp(
            f".*{sql.NOVEL_NAME}.*",
            [
                dashboard_model.DynamicConfigValue(
                    id_val="color", value={"mode": "fixed", "fixedColor": "red"}
                )
            ],
        )
    )
    novel = (
        timeseries_panel(
            "Novel share: $service ($direction)",
            sql.novel_share_sql(),
            doc(
                "The share of the window's texts that are novel (far from every topic), and the "
                "same share in the reference (dashed; about 1% by construction).",
                "the window well above the reference: new intent or new content; the 'novel' test "
                "flags it when significant.",
            ),
            "percentunit",
            span=12,
            min_interval=sql.WINDOW_INTERVAL,
        )
        .show_points(common.VisibilityMode.ALWAYS)
        .axis_soft_min(0)
        .override_by_name(
            REFERENCE_SERIES,
            [
                dashboard_model.DynamicConfigValue(id_val="custom.lineStyle", value=DASH),
                dashboard_model.DynamicConfigValue(
                    id_val="color", value={"mode": "fixed", "fixedColor": "text"}
                ),
            ],
        )
    )
    examples = table_panel(
        "Examples of the top novel group: $service ($direction)",
        sql.examples_sql(),
        doc(
            f"The newest {sql.EXAMPLE_WINDOWS} windows with novel texts per scope: the largest "
            "group of novel texts, one example per row (event ids, or the redacted text for calls "
            "captured with store).",
            "examples sharing a subject the app does not cover: new user intent; look the event "
            "ids up on the Traces dashboard.",
        ),
        span=24,
        height=8,
    )
    shape = timeseries_panel(
        "Shape PSI: $service",
        sql.shape_psi_sql(),
        doc(
            "The population stability index of each shape feature (token counts, latency, time to "
            "first token, finish reason, outcome) per model, against the reference. "
            f"{sql.MODERATE_PSI:g} is a moderate shift, {sql.MAJOR_PSI:g} a major one.",
            "output_tokens or latency over the line with an unchanged model id: likely a silent "
            "provider model update (see 'When red:').",
        ),
        "none",
        span=24,
        limits=thresholds((None, "green"), (sql.MODERATE_PSI, "orange"), (sql.MAJOR_PSI, "red")),
        min_interval=sql.WINDOW_INTERVAL,
    ).show_points(common.VisibilityMode.ALWAYS)
    return [shares, novel, examples, shape]


def build() -> dashboard_builder.Dashboard:
    dashboard = new_dashboard(
        UID,
        "LLM drift",
        "Drift per scope (service, model, span kind, direction): the flagged scopes and what to do, "
        "drift scores, topic shares and novel traffic with examples, and the shape features' PSI.",
    )
    return with_sections(
        dashboard,
        _variables(),
        [
            (row("Now"), _now()),
            (row("Drift score"), [_score()]),
            (row(SERVICE_ROW, repeat="service"), _service()),
        ],
        drift_alert_annotation(),
    )
