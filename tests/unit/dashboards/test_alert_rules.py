"""The generated Grafana alert rules: current, internally consistent, and faithful to the SLO file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from dashboards import alert_rules, slos
from dashboards.alert_rules import (
    DEFAULT_SLO_PATH,
    EXPR_UID,
    FOR_BY_SEVERITY,
    MAX_UID_LENGTH,
    RULES_PATH,
    DashboardLink,
    build_rule_groups,
    duration_seconds,
    duration_text,
    from_provisioning,
    rule_sql,
    rule_uid,
    to_provisioning,
)
from dashboards.build import GENERATED_DIR
from dashboards.canary_alerts import GROUP as CANARY_GROUP
from dashboards.canary_alerts import verdict_panel_link
from dashboards.lint import provisioned_datasources
from dashboards.quality_alerts import GROUP as QUALITY_GROUP
from dashboards.quality_alerts import drop_panel_link
from streams.slo.config import Severity, load_slo_file, parse_slo_file

Json = dict[str, Any]

SLO_FILE: Final = load_slo_file(DEFAULT_SLO_PATH)
SLOS: Final = {slo.name: slo for slo in SLO_FILE.slos}
DOC: Final[Json] = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))
# Every rule in the file (the generic checks), and the SLO burn-rate rules (the quality and prompts
# groups' rules are checked in test_quality_alerts.py and test_canary_alerts.py).
ALL_RULES: Final[list[tuple[Json, Json]]] = [
    (group, rule) for group in DOC["groups"] for rule in group["rules"]
]
RULES: Final[list[tuple[Json, Json]]] = [
    (group, rule) for group, rule in ALL_RULES if group["name"] not in (QUALITY_GROUP, CANARY_GROUP)
]
UID_RE: Final = re.compile(r"^[A-Za-z0-9_-]+$")
MATH_VAR_RE: Final = re.compile(r"\$\{([^}]+)\}|\$([A-Za-z_]\w*)")
FIRING_RE: Final = re.compile(r"^\$(\w+) > ([0-9.]+) && \$(\w+) > ([0-9.]+)$")
LINK: Final = DashboardLink("llmwatch-slos", 7)


def _ids(item: tuple[Json, Json]) -> str:
    return str(item[1]["uid"])


def _by_ref(rule: Json) -> dict[str, Json]:
    return {query["refId"]: query for query in rule["data"]}


def _queries(rule: Json) -> list[Json]:
    return [q for q in rule["data"] if q["datasourceUid"] != EXPR_UID]


def test_the_committed_rules_file_is_current(tmp_path: Path) -> None:
    written = alert_rules.write_rules(DEFAULT_SLO_PATH, tmp_path / "rules.yaml")
    assert written.read_text(encoding="utf-8") == RULES_PATH.read_text(encoding="utf-8"), (
        "dashboards/provisioning/alerting/llmwatch-rules.yaml is stale: run "
        "dashboards.alert_rules.write_rules()"
    )


def test_the_rules_file_is_world_readable(tmp_path: Path) -> None:
    written = alert_rules.write_rules(DEFAULT_SLO_PATH, tmp_path / "rules.yaml")
    assert written.stat().st_mode & 0o777 == 0o644


def test_every_slo_rule_has_exactly_one_alert_rule() -> None:
    expected = sorted((slo.name, rule.name) for slo in SLO_FILE.slos for rule in slo.burn_rules)
    found = sorted((rule["labels"]["slo"], rule["labels"]["rule"]) for _, rule in RULES)
    assert found == expected
    groups = [group["name"] for group in DOC["groups"]]
    assert groups == [slo.name for slo in SLO_FILE.slos] + [QUALITY_GROUP, CANARY_GROUP]


def test_rule_uids_and_titles_are_unique() -> None:
    uids = [rule["uid"] for _, rule in ALL_RULES]
    titles = [rule["title"] for _, rule in ALL_RULES]
    assert len(set(uids)) == len(uids) == len(set(titles))


def test_the_file_converts_back_to_the_api_shape() -> None:
    link = alert_rules.slo_dashboard_link()
    assert from_provisioning(DOC) == build_rule_groups(
        SLO_FILE, link, drop_panel_link(), verdict_panel_link()
    )


@pytest.mark.parametrize("item", RULES, ids=_ids)
def test_uid_is_a_valid_grafana_uid(item: tuple[Json, Json]) -> None:
    _, rule = item
    assert UID_RE.match(rule["uid"]) and len(rule["uid"]) <= MAX_UID_LENGTH
    assert rule["uid"] == rule_uid(rule["labels"]["slo"], rule["labels"]["rule"])


@pytest.mark.parametrize("item", ALL_RULES, ids=_ids)
def test_condition_and_expressions_name_existing_ref_ids(item: tuple[Json, Json]) -> None:
    _, rule = item
    refs = _by_ref(rule)
    assert len(refs) == len(rule["data"]), "refIds must be unique within a rule"
    assert rule["condition"] in refs
    assert all(q["model"]["refId"] == ref for ref, q in refs.items())
    for query in rule["data"]:
        model = query["model"]
        if model.get("type") == "reduce":
            assert model["expression"] in refs and model["expression"] != query["refId"]
        elif model.get("type") == "math":
            used = {a or b for a, b in MATH_VAR_RE.findall(model["expression"])}
            assert used and used <= set(refs) - {query["refId"]}


@pytest.mark.parametrize("item", ALL_RULES, ids=_ids)
def test_datasources_resolve_to_the_provisioned_clickhouse(item: tuple[Json, Json]) -> None:
    _, rule = item
    provisioned = provisioned_datasources()
    for query in rule["data"]:
        source = query["model"]["datasource"]
        if query["datasourceUid"] == EXPR_UID:
            assert source == {"type": EXPR_UID, "uid": EXPR_UID}
            continue
        assert query["datasourceUid"] == source["uid"]
        assert provisioned.get(source["uid"]) == source["type"]
        assert query["model"]["format"] == 1  # table: one number for the expressions


@pytest.mark.parametrize("item", RULES, ids=_ids)
def test_queries_are_the_slo_burn_rates_over_the_rule_windows(item: tuple[Json, Json]) -> None:
    _, rule = item
    slo = SLOS[rule["labels"]["slo"]]
    (burn,) = [r for r in slo.burn_rules if r.name == rule["labels"]["rule"]]
    long_query, short_query = _queries(rule)
    assert long_query["model"]["rawSql"] == rule_sql(slo, burn.long_window)
    assert short_query["model"]["rawSql"] == rule_sql(slo, burn.short_window)
    assert long_query["relativeTimeRange"] == {"from": burn.long_ms // 1000, "to": 0}
    assert short_query["relativeTimeRange"] == {"from": burn.short_ms // 1000, "to": 0}
    assert "now()" in long_query["model"]["rawSql"]


@pytest.mark.parametrize("item", RULES, ids=_ids)
def test_condition_fires_like_the_stream(item: tuple[Json, Json]) -> None:
    """``firing`` = reduced long burn > factor AND reduced short burn > factor (streams.slo.burnrate)."""
    _, rule = item
    slo = SLOS[rule["labels"]["slo"]]
    (burn,) = [r for r in slo.burn_rules if r.name == rule["labels"]["rule"]]
    refs = _by_ref(rule)
    match = FIRING_RE.match(refs[rule["condition"]]["model"]["expression"])
    assert match is not None
    long_ref, long_factor, short_ref, short_factor = match.groups()
    long_query, short_query = _queries(rule)
    assert refs[long_ref]["model"]["expression"] == long_query["refId"]
    assert refs[short_ref]["model"]["expression"] == short_query["refId"]
    assert float(long_factor) == float(short_factor) == burn.burn_rate


@pytest.mark.parametrize("item", RULES, ids=_ids)
def test_labels_annotations_and_states(item: tuple[Json, Json]) -> None:
    group, rule = item
    slo = SLOS[group["name"]]
    labels, annotations = rule["labels"], rule["annotations"]
    assert labels["slo"] == slo.name and labels["sli"] == slo.sli.type
    severity = Severity(labels["severity"])
    selector = slo.selector.as_dict()
    selector.pop("span_kind", None)
    assert {k: labels[k] for k in selector} == selector
    assert annotations["summary"] and slo.name in annotations["summary"]
    assert slo.description in annotations["description"]
    assert "runbook" in annotations or "runbook_url" in annotations
    assert rule["for"] == FOR_BY_SEVERITY[severity]
    assert duration_seconds(rule["for"]) % duration_seconds(group["interval"]) == 0
    assert (rule["noDataState"], rule["execErrState"]) == ("OK", "Error")
    assert not any("$" in text for text in [rule["title"], *labels.values()])


@pytest.mark.parametrize("item", RULES, ids=_ids)
def test_rules_link_to_the_burn_rate_panel_of_the_slo_dashboard(item: tuple[Json, Json]) -> None:
    _, rule = item
    generated = json.loads((GENERATED_DIR / f"{slos.UID}.json").read_text(encoding="utf-8"))
    assert rule["dashboardUid"] == slos.UID
    assert rule["panelId"] == alert_rules.burn_panel_id(generated)


def test_a_missing_burn_panel_is_named() -> None:
    with pytest.raises(ValueError, match="Burn rate per window"):
        alert_rules.burn_panel_id({"uid": "x", "panels": [{"id": 1, "title": "other"}]})


@pytest.mark.parametrize(
    ("slo", "rule"),
    [
        ("a" * 128, "fast"),
        ("a" * 128, "slow"),
        ("support-bot-availability", "b" * 128),
        ("x", "y"),
    ],
)
def test_long_names_give_short_unique_uids(slo: str, rule: str) -> None:
    uid = rule_uid(slo, rule)
    others = {rule_uid(slo, "other"), rule_uid("other", rule)}
    assert len(uid) <= MAX_UID_LENGTH and UID_RE.match(uid) and uid not in others


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (60, "1m"), (120, "2m"), (900, "15m"), (5_400, "1h30m")]
)
def test_durations_print_like_grafana(seconds: int, text: str) -> None:
    assert duration_text(seconds) == text
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("bad", ["", "5", "1h 30m", "m5", "1.5h"])
def test_a_bad_duration_is_named(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        duration_seconds(bad)


ODD_SLOS: Final = """
version: 1
slos:
  - name: tiny
    objective: 0.5
    sli: {type: availability}
    selector: {service: "price$HOME", model: gpt-4o}
    runbook: https://runbooks.example/tiny
    rules:
      - {name: odd, long_window: 97m, short_window: 1m, burn_rate: 0.00001, severity: ticket}
"""


def test_odd_values_survive_the_file_format() -> None:
    groups = build_rule_groups(parse_slo_file(ODD_SLOS), LINK)
    doc = to_provisioning(groups)
    (rule,) = doc["groups"][0]["rules"]
    firing = _by_ref(rule)[rule["condition"]]["model"]["expression"]
    assert firing == "$long_burn > 0.00001 && $short_burn > 0.00001"  # no exponent for Grafana
    assert rule["labels"]["service"] == "price$$HOME"  # Grafana expands $NAME in labels
    assert rule["annotations"]["runbook_url"] == "https://runbooks.example/tiny"
    assert (rule["dashboardUid"], rule["panelId"]) == ("llmwatch-slos", 7)
    assert "__panelId__" not in rule["annotations"]
    assert from_provisioning(yaml.safe_load(yaml.safe_dump(doc))) == groups


def test_the_api_shape_carries_folder_group_and_dashboard_link() -> None:
    groups = build_rule_groups(parse_slo_file(ODD_SLOS), LINK)
    (group,) = groups
    (rule,) = group["rules"]
    assert (group["title"], group["folderUid"], group["interval"]) == ("tiny", "llmwatch", 60)
    assert (rule["ruleGroup"], rule["folderUID"], rule["orgID"]) == ("tiny", "llmwatch", 1)
    assert rule["annotations"]["__dashboardUid__"] == "llmwatch-slos"
    assert rule["annotations"]["__panelId__"] == "7"
    assert rule["labels"]["service"] == "price$HOME"


def test_from_provisioning_rejects_other_documents() -> None:
    with pytest.raises(ValueError, match="apiVersion"):
        from_provisioning({"apiVersion": 1, "contactPoints": []})
