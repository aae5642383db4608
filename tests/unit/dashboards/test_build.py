"""The built dashboards: Grafana's schema, the ClickHouse query shape, cross-references, files on disk."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Final

import jsonschema  # type: ignore[import-untyped]
import pytest
from grafana_foundation_sdk.models import dashboard as dashboard_model

from dashboards.build import GENERATED_DIR, build_all, render, write_all
from dashboards.lint import MAX_UID_LENGTH, lint_dashboards, provisioned_datasources
from dashboards.panels import ALL_VALUE, FILTER_VARIABLES
from dashboards.query import DATASOURCE_TYPE, DATASOURCE_UID, ClickHouseQuery, register
from dashboards.walk import queries, variables, visual_panels

SCHEMA_DIR: Final = Path(__file__).resolve().parents[3] / "dashboards" / "schema"
DASHBOARDS: Final = build_all()
UIDS: Final = sorted(DASHBOARDS)
REPLACING: Final = ("llm_calls", "llm_rollup_1m", "llm_slo_status")


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return loaded


CH_QUERY_SCHEMA: Final = _schema("clickhouse-query.schema.json")


def _grafana_schema() -> dict[str, Any]:
    """Grafana's schema, with annotation targets also allowed to be a ClickHouse query: its own
    AnnotationTarget is the built-in datasource's ("TODO.. this should just be a normal query
    target"), while Grafana hands a datasource annotation's target to that datasource."""
    schema = _schema("dashboard.schema.json")
    builtin = schema["definitions"]["AnnotationTarget"]
    schema["definitions"]["AnnotationTarget"] = {"anyOf": [builtin, CH_QUERY_SCHEMA]}
    return schema


GRAFANA_VALIDATOR: Final = jsonschema.Draft7Validator(_grafana_schema())
CH_VALIDATOR: Final = jsonschema.Draft7Validator(CH_QUERY_SCHEMA)


def test_the_nine_dashboards_are_built() -> None:
    assert UIDS == [
        "llmwatch-cost",
        "llmwatch-drift",
        "llmwatch-overview",
        "llmwatch-pipeline",
        "llmwatch-prompts",
        "llmwatch-quality",
        "llmwatch-safety",
        "llmwatch-slos",
        "llmwatch-traces",
    ]


@pytest.mark.parametrize("uid", UIDS)
def test_dashboard_validates_against_grafanas_schema(uid: str) -> None:
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in GRAFANA_VALIDATOR.iter_errors(DASHBOARDS[uid])
    ]
    assert errors == []


@pytest.mark.parametrize("uid", UIDS)
def test_every_target_is_a_clickhouse_sql_query(uid: str) -> None:
    doc = DASHBOARDS[uid]
    targets = [t for p in visual_panels(doc) for t in p.get("targets", [])]
    targets += [a["target"] for a in doc["annotations"].get("list", [])]
    errors = [e.message for t in targets for e in CH_VALIDATOR.iter_errors(t)]
    assert targets and errors == []


def test_the_unpatched_schema_rejects_a_clickhouse_annotation_target() -> None:
    """Guards the one relaxation above: without it, the overview's annotation is invalid."""
    strict = jsonschema.Draft7Validator(_schema("dashboard.schema.json"))
    paths = {
        tuple(e.absolute_path)[:3] for e in strict.iter_errors(DASHBOARDS["llmwatch-overview"])
    }
    assert paths == {("annotations", "list", 0)}


def test_cross_references_are_clean() -> None:
    assert lint_dashboards(DASHBOARDS, provisioned_datasources(), REPLACING) == []


def _first_query_panel(doc: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in doc["panels"] if p["type"] == "timeseries")


def _break_uid(doc: dict[str, Any]) -> None:
    doc["uid"] = "x" * (MAX_UID_LENGTH + 1)


def _break_panel_id(doc: dict[str, Any]) -> None:
    doc["panels"][1]["id"] = doc["panels"][0]["id"]


def _break_datasource(doc: dict[str, Any]) -> None:
    _first_query_panel(doc)["targets"][0]["datasource"]["uid"] = "nope"


def _break_variable(doc: dict[str, Any]) -> None:
    _first_query_panel(doc)["targets"][0]["rawSql"] += " AND x IN (${nosuch:singlequote})"


def _break_final(doc: dict[str, Any]) -> None:
    target = _first_query_panel(doc)["targets"][0]
    target["rawSql"] = target["rawSql"].replace("llm_rollup_1m FINAL", "llm_rollup_1m")


def _break_description(doc: dict[str, Any]) -> None:
    _first_query_panel(doc)["description"] = "Traffic."


def _break_variable_order(doc: dict[str, Any]) -> None:
    doc["templating"]["list"].reverse()


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (_break_uid, "uid must be 1-40 characters"),
        (_break_panel_id, "id must be a unique integer"),
        (_break_datasource, "datasource uid 'nope' is not provisioned"),
        (_break_variable, "uses undefined variable $nosuch"),
        (_break_final, "llmwatch.llm_rollup_1m must be read with FINAL"),
        (_break_description, "description lacks on-call guidance"),
        (_break_variable_order, "variable 'prompt_version': uses undefined variable $environment"),
    ],
)
def test_lint_reports_each_kind_of_problem(breakage: Any, expected: str) -> None:
    doc = copy.deepcopy(DASHBOARDS["llmwatch-overview"])
    breakage(doc)
    problems = lint_dashboards({doc["uid"]: doc}, provisioned_datasources(), REPLACING)
    assert any(expected in p for p in problems), problems


def test_lint_reports_duplicate_uids() -> None:
    doc = DASHBOARDS["llmwatch-cost"]
    problems = lint_dashboards({"a": doc, "b": doc}, provisioned_datasources())
    assert "dashboard uid 'llmwatch-cost' is used by more than one dashboard" in problems


@pytest.mark.parametrize("uid", UIDS)
def test_panel_ids_count_up_from_one_in_layout_order(uid: str) -> None:
    ids = [p["id"] for p in DASHBOARDS[uid]["panels"]]
    assert ids == list(range(1, len(ids) + 1))


@pytest.mark.parametrize("uid", ["llmwatch-overview", "llmwatch-cost"])
def test_filter_variables_are_multi_value_with_a_custom_all(uid: str) -> None:
    found = {v["name"]: v for v in variables(DASHBOARDS[uid])}
    for spec in FILTER_VARIABLES:
        variable = found[spec.name]
        assert (variable["multi"], variable["includeAll"], variable["allValue"]) == (
            True,
            True,
            ALL_VALUE,
        )
        assert variable["current"]["value"] == "$__all" and variable["refresh"] == 2


def test_the_slo_row_repeats_by_the_slo_variable() -> None:
    doc = DASHBOARDS["llmwatch-slos"]
    repeated = [p for p in doc["panels"] if p["type"] == "row" and p.get("repeat")]
    assert [r["repeat"] for r in repeated] == ["slo"]
    assert "slo" in {v["name"] for v in variables(doc)}


@pytest.mark.parametrize("uid", UIDS)
def test_time_series_targets_use_the_time_series_format(uid: str) -> None:
    formats = {(q.panel_type, q.format) for q in queries(DASHBOARDS[uid]) if q.kind == "panel"}
    assert formats <= {("timeseries", 0), ("stat", 1), ("gauge", 1), ("table", 1)}


def test_build_is_deterministic() -> None:
    again = build_all()
    assert [render(again[u]) for u in UIDS] == [render(DASHBOARDS[u]) for u in UIDS]


def test_generated_files_are_current(tmp_path: Path) -> None:
    written = write_all(tmp_path)
    fresh = {p.name: p.read_text(encoding="utf-8") for p in written}
    committed = {p.name: p.read_text(encoding="utf-8") for p in GENERATED_DIR.glob("*.json")}
    stale = sorted(set(committed) ^ set(fresh))
    changed = sorted(n for n in set(fresh) & set(committed) if fresh[n] != committed[n])
    assert (stale, changed) == ([], []), "run `llmwatch dashboards build` and commit the result"


def test_written_files_are_world_readable(tmp_path: Path) -> None:
    modes = {p.stat().st_mode & 0o777 for p in write_all(tmp_path)}
    assert modes == {0o644}


def test_the_sdk_parses_generated_targets_as_clickhouse_queries() -> None:
    register()
    doc = json.loads((GENERATED_DIR / "llmwatch-overview.json").read_text(encoding="utf-8"))
    model = dashboard_model.Dashboard.from_json(doc)
    panels = [p for p in model.panels or [] if isinstance(p, dashboard_model.Panel) and p.targets]
    parsed = [t for p in panels for t in p.targets or []]
    assert parsed and all(isinstance(t, ClickHouseQuery) for t in parsed)
    first = next(p for p in doc["panels"] if p.get("targets"))["targets"][0]
    assert isinstance(parsed[0], ClickHouseQuery) and parsed[0].to_json() == first
    assert first["datasource"] == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
