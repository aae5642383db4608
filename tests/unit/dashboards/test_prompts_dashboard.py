"""The Prompts dashboard's structure: variables, tables read, the repeated metric row and its band, the
verdict colors, the label-move annotation. Its SQL runs on chdb in tests/integration/test_prompts_sql.py."""

from __future__ import annotations

import copy
import re
from typing import Any, Final

import pytest

from dashboards.build import build_all
from dashboards.lint import lint_dashboard, provisioned_datasources
from dashboards.panels import ALL_VALUE
from dashboards.prompts import BAND_HIGH, BAND_LOW, UID, VERDICT_COLORS
from dashboards.prompts_sql import VERDICT_CODES
from dashboards.query import DATABASE
from dashboards.walk import iter_panels, queries, variables, visual_panels
from streams.storage import (
    CANARY_METRICS_TABLE,
    CANARY_VERDICTS_TABLE,
    PROMPT_LABELS_TABLE,
    PROMPTS_TABLE,
    ROLLUP_TABLE,
    SCORES_1M_VIEW,
)

DOC: Final = build_all()[UID]
NEW_TABLES: Final = (
    PROMPTS_TABLE,
    PROMPT_LABELS_TABLE,
    CANARY_VERDICTS_TABLE,
    CANARY_METRICS_TABLE,
)
REPLACING: Final = (*NEW_TABLES, ROLLUP_TABLE)
PANELS: Final = {p["title"]: p for p in visual_panels(DOC)}
_TABLE_RE: Final = re.compile(rf"\b{DATABASE}\.(\w+)")


def _sql(title: str) -> str:
    (target,) = PANELS[title]["targets"]
    return str(target["rawSql"])


def test_the_dashboard_is_registered_and_lints_clean() -> None:
    assert (DOC["uid"], DOC["title"]) == (UID, "LLM prompts")
    assert lint_dashboard(DOC, provisioned_datasources(), REPLACING) == []


@pytest.mark.parametrize("table", REPLACING)
def test_lint_reports_a_table_read_without_final(table: str) -> None:
    broken = copy.deepcopy(DOC)
    for panel in visual_panels(broken):
        for target in panel["targets"]:
            target["rawSql"] = target["rawSql"].replace(f"{table} FINAL", table)
    problems = lint_dashboard(broken, provisioned_datasources(), REPLACING)
    assert any(f"{DATABASE}.{table} must be read with FINAL" in p for p in problems), problems


def test_queries_read_the_prompt_tables_the_rollups_and_the_scores_only() -> None:
    read = {table for q in queries(DOC) for table in _TABLE_RE.findall(q.sql)}
    assert read == {*NEW_TABLES, ROLLUP_TABLE, SCORES_1M_VIEW}


def test_variables_prompt_first_single_select_then_filters_with_all() -> None:
    found = variables(DOC)
    assert [v["name"] for v in found] == [
        "prompt",
        "label",
        "metric",
        "environment",
        "service",
        "provider",
        "model",
    ]
    prompt, *others = found
    assert (prompt.get("multi"), prompt.get("includeAll")) == (False, False)
    assert all(
        (v["multi"], v["includeAll"], v["allValue"]) == (True, True, ALL_VALUE) for v in others
    )


@pytest.mark.parametrize("title", sorted(PANELS))
def test_every_panel_is_about_the_selected_prompt(title: str) -> None:
    assert "${prompt:singlequote}" in _sql(title)


def _rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in iter_panels(doc) if p["type"] == "row"]


def test_the_metric_row_repeats_over_the_metric_variable() -> None:
    panels = DOC["panels"]
    (repeated,) = [p for p in _rows(DOC) if p.get("repeat")]
    assert (repeated["repeat"], repeated["title"]) == ("metric", "Canary metric: $metric")
    after = panels[panels.index(repeated) + 1 :]
    under = [
        p["title"] for p in after[: next(i for i, p in enumerate(after) if p["type"] == "row")]
    ]
    assert under == ["$metric: canary vs baseline", "$metric: looks"]


def test_the_band_fills_between_the_columns_the_query_returns() -> None:
    sql = _sql("$metric: canary vs baseline")
    assert f"baseline_value + diff_low AS {BAND_LOW}" in sql
    assert f"baseline_value + diff_high AS {BAND_HIGH}" in sql
    overrides = {
        o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]}
        for o in PANELS["$metric: canary vs baseline"]["fieldConfig"]["overrides"]
    }
    assert overrides[BAND_HIGH]["custom.fillBelowTo"] == BAND_LOW
    assert overrides[BAND_HIGH]["custom.lineWidth"] == overrides[BAND_LOW]["custom.lineWidth"] == 0


def _threshold_color(panel: dict[str, Any], value: float) -> str:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return str([s["color"] for s in steps if s["value"] is None or s["value"] <= value][-1])


@pytest.mark.parametrize("word", sorted(VERDICT_CODES))
def test_the_latest_verdict_stat_shows_the_word_on_its_color(word: str) -> None:
    panel = PANELS["Latest canary verdict"]
    (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
    shown = mapping["options"][str(VERDICT_CODES[word])]
    assert (shown["text"], shown["color"]) == (word, VERDICT_COLORS[word])
    assert _threshold_color(panel, VERDICT_CODES[word]) == VERDICT_COLORS[word]
    assert f"latest_verdict = '{word}', {VERDICT_CODES[word]}" in _sql("Latest canary verdict")


@pytest.mark.parametrize("title", ["Verdict history", "$metric: looks"])
def test_verdict_columns_are_colored_by_verdict(title: str) -> None:
    (override,) = PANELS[title]["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byName", "options": "verdict"}
    values = {p["id"]: p["value"] for p in override["properties"]}
    assert {w: o["color"] for w, o in values["mappings"][0]["options"].items()} == VERDICT_COLORS
    assert values["custom.cellOptions"] == {"type": "color-background"}


@pytest.mark.parametrize(
    ("title", "order"),
    [
        ("Label moves", "ORDER BY moved_at DESC"),
        ("Verdict history", "ORDER BY evaluated_at DESC"),
        ("$metric: looks", "ORDER BY evaluated_at DESC"),
        ("Versions", "ORDER BY number"),
    ],
)
def test_tables_are_ordered_for_reading(title: str, order: str) -> None:
    assert PANELS[title]["type"] == "table" and order in _sql(title)


def test_label_weights_step_at_each_move() -> None:
    panel = PANELS["Label weights over time"]
    custom = panel["fieldConfig"]["defaults"]["custom"]
    assert (custom["lineInterpolation"], custom["spanNulls"]) == ("stepAfter", True)
    assert f"FROM {DATABASE}.{PROMPT_LABELS_TABLE} FINAL" in _sql("Label weights over time")


def test_label_moves_are_annotated_from_the_audit_trail() -> None:
    (annotation,) = DOC["annotations"]["list"]
    sql = annotation["target"]["rawSql"]
    assert annotation["name"] == "Label moves" and annotation["enable"] is True
    assert "SELECT moved_at AS time, moved_at AS timeEnd" in sql
    assert f"FROM {DATABASE}.{PROMPT_LABELS_TABLE} FINAL" in sql
    for part in ("action", "moved_by", "reason", "versions", "previous_versions"):
        assert part in sql.split(" AS text")[0].split(" AS title")[1]


@pytest.mark.parametrize(
    "title", ["Calls by version", "Cost per request by version", "Versions compared"]
)
def test_call_panels_read_the_prompts_versions_from_the_rollups(title: str) -> None:
    sql = _sql(title)
    assert f"FROM {DATABASE}.{ROLLUP_TABLE} FINAL" in sql
    assert f"prompt_version IN (SELECT version FROM {DATABASE}.{PROMPTS_TABLE} FINAL" in sql
    for name in ("environment", "service", "provider", "model"):
        assert f"${{{name}:singlequote}}" in sql
