"""Grafana alert rules generated from the SLO file: one multi-window burn-rate rule per SLO and rule.

Each rule reproduces one ``streams.slo.burnrate`` rule in Grafana (same windows, same burn rates, same
strict ``>`` comparison):

- ``A`` / ``B``: the ClickHouse burn rate over the rule's long / short window at the server's
  ``now()``: ``SELECT burn_rate FROM (<dashboards.slo_sql.burn_rate_sql(slo, window, None)>)``, table
  format. Only the one numeric column is returned, because Grafana's server-side expressions turn a
  one-number table into a number and reject tables with several numeric columns.
- ``long_burn`` / ``short_burn``: reduce (last) of A / B, a no-op on a number that names the
  values for the annotations (``$values.long_burn``).
- ``firing``: math ``$long_burn > F && $short_burn > F`` with F the rule's factor; the condition.
  Expression refIds start lowercase so that no ``$NAME`` in the file looks like an environment
  variable to Grafana's provisioning or to the provisioning tests.

One group per SLO (named after it) in folder ``llmwatch``, evaluated every minute. Rule uids:
``llmwatch_<slo>_<rule>``, or when over 40 characters its first 31 plus a hash of (slo, rule).

Two shapes: :func:`build_rule_groups` returns Grafana's HTTP provisioning API shape (built with
grafana-foundation-sdk's alerting builders; ``dashboards.push`` sends it), and :func:`to_provisioning`
converts it to the file-provisioning YAML shape (``apiVersion: 1``, ``groups`` with ``folder`` title,
``interval`` as a duration string, ``dashboardUid`` / ``panelId`` fields instead of the
``__dashboardUid__`` / ``__panelId__`` annotations, ``$`` escaped as ``$$`` where Grafana expands
environment variables). :func:`from_provisioning` is the inverse. :func:`write_rules` writes the file
deterministically (same SLO file and code, same bytes) and atomically. Only :func:`write_rules` and
:func:`slo_dashboard_link` (which builds the SLO dashboard) do more than pure data work.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import yaml
from grafana_foundation_sdk.builders import alerting, expr
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting as alerting_model
from grafana_foundation_sdk.models import dashboard as dashboard_model

from dashboards import slos as slo_dashboard
from dashboards.lint import MAX_UID_LENGTH
from dashboards.query import DATABASE, DATASOURCE_UID, ClickHouseQueryBuilder, Format
from dashboards.slo_sql import burn_rate_sql
from dashboards.walk import iter_panels
from streams.slo.config import BurnRule, CostSli, Severity, Slo, SloFile, load_slo_file

__all__ = [
    "BURN_PANEL_TITLE",
    "DEFAULT_SLO_PATH",
    "EXPR_UID",
    "FOLDER",
    "FOR_BY_SEVERITY",
    "GROUP_INTERVAL_S",
    "MAX_UID_LENGTH",
    "RULES_PATH",
    "DashboardLink",
    "build_rule_groups",
    "burn_panel_id",
    "duration_seconds",
    "duration_text",
    "expression_query",
    "from_provisioning",
    "group_json",
    "render_rules",
    "rule_sql",
    "rule_uid",
    "slo_dashboard_link",
    "to_provisioning",
    "write_rules",
]

Json = dict[str, Any]

ROOT: Final = Path(__file__).resolve().parents[1]
RULES_PATH: Final = (
    Path(__file__).resolve().parent / "provisioning" / "alerting" / "llmwatch-rules.yaml"
)
DEFAULT_SLO_PATH: Final = ROOT / "config" / "slos.yaml"
FOLDER: Final = "llmwatch"  # title and uid (dashboards/provisioning/dashboards/llmwatch.yaml)
ORG_ID: Final = 1
GROUP_INTERVAL_S: Final = 60
FOR_BY_SEVERITY: Final = {Severity.PAGE: "2m", Severity.TICKET: "15m"}
NO_DATA_STATE: Final = "OK"
EXEC_ERR_STATE: Final = "Error"
EXPR_UID: Final = "__expr__"
UID_PREFIX: Final = "llmwatch_"
_HASH_CHARS: Final = 8
# The SLO dashboard panel the alerts link to (dashboards/slos.py).
BURN_PANEL_TITLE: Final = "Burn rate per window: $slo"
# refIds: the two ClickHouse queries, their reductions and the condition.
LONG_QUERY: Final = "A"
SHORT_QUERY: Final = "B"
LONG_BURN: Final = "long_burn"
SHORT_BURN: Final = "short_burn"
FIRING: Final = "firing"
DASHBOARD_UID_KEY: Final = "__dashboardUid__"
PANEL_ID_KEY: Final = "__panelId__"
_URL_RE: Final = re.compile(r"^https?://\S+$")
_DURATION_PART_RE: Final = re.compile(r"(\d+)(ms|[smhdwy])")
_UNIT_S: Final = {"y": 365 * 86_400, "w": 7 * 86_400, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
FILE_HEADER: Final = (
    "# Generated from {source} by dashboards/alert_rules.py (write_rules): do not edit; a test fails\n"
    "# when this file is stale. Each rule fires when the burn rate over its long AND short windows\n"
    "# exceeds its factor, like streams/slo/burnrate.py, with the SQL of dashboards/slo_sql.py.\n"
    "# Then group quality, dashboards/quality_alerts.py's rubric score drop rule, and group prompts,\n"
    "# dashboards/canary_alerts.py's failed prompt canary rule.\n"
)


@dataclass(frozen=True, slots=True)
class DashboardLink:
    """Where an alert links: the SLO dashboard's uid and the burn-rate panel's id."""

    uid: str
    panel_id: int


def duration_text(seconds: int) -> str:
    """Prometheus-style duration as Grafana prints it (``120`` -> ``"2m"``, ``5400`` -> ``"1h30m"``)."""
    if seconds < 0:
        raise ValueError(f"a duration must be >= 0 seconds, got {seconds!r}")
    parts = []
    for unit, size in _UNIT_S.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def duration_seconds(text: str) -> int:
    """Seconds in a Prometheus-style duration (``"1h30m"``); raises ValueError naming the text."""
    parts = _DURATION_PART_RE.findall(text) if isinstance(text, str) else []
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"duration must look like '1h30m', got {text!r}")
    millis = sum(int(n) * (1 if u == "ms" else _UNIT_S[u] * 1000) for n, u in parts)
    return millis // 1000


def rule_uid(slo: str, rule: str) -> str:
    """Deterministic Grafana uid (<= 40 characters of ``[A-Za-z0-9_-]``) of one SLO rule."""
    plain = f"{UID_PREFIX}{slo}_{rule}"
    if len(plain) <= MAX_UID_LENGTH:
        return plain
    digest = hashlib.sha256(f"{slo}\0{rule}".encode()).hexdigest()[:_HASH_CHARS]
    return f"{plain[: MAX_UID_LENGTH - _HASH_CHARS - 1]}_{digest}"


def rule_sql(slo: Slo, window: str) -> str:
    """The SQL of one alert query: the burn rate of ``slo`` over ``window`` at ClickHouse's now()."""
    return f"SELECT burn_rate\nFROM (\n{burn_rate_sql(slo, window, None, DATABASE)}\n)"


def _number(value: float) -> str:
    """A float as a plain decimal (no exponent) that parses back to the same double."""
    return format(Decimal(repr(float(value))), "f")


def _labels(slo: Slo, rule: BurnRule) -> dict[str, str]:
    labels = {"slo": slo.name, "rule": rule.name, "severity": str(rule.severity)}
    labels["sli"] = slo.sli.type
    selector = slo.selector.as_dict()
    selector.pop("span_kind", None)
    return labels | selector


def _objective_text(slo: Slo) -> str:
    if isinstance(slo.sli, CostSli):
        return f"budget {_number(slo.sli.usd_per_hour)} USD per hour"
    assert slo.objective is not None  # ratio SLIs always have one (streams.slo.config.Slo)
    return f"objective {_number(slo.objective)} ({slo.sli.type}, over {slo.period})"


def _template_value(ref_id: str) -> str:
    """A Grafana annotation template printing an expression's value at evaluation."""
    return '{{ printf "%.2f" $values.' + ref_id + ".Value }}"


def _annotations(slo: Slo, rule: BurnRule, link: DashboardLink) -> dict[str, str]:
    factor = _number(rule.burn_rate)
    annotations = {
        "summary": f"SLO {slo.name}: burn rate above {factor}x over {rule.long_window} and "
        f"{rule.short_window} ({rule.severity})",
        "description": (
            f"{slo.description} SLO {slo.name}, {_objective_text(slo)}. Rule {rule.name} fires when "
            f"the burn rate exceeds {factor}x the budget rate over both {rule.long_window} and "
            f"{rule.short_window}. Now: {_template_value(LONG_BURN)}x over {rule.long_window}, "
            f"{_template_value(SHORT_BURN)}x over {rule.short_window}."
        ).strip(),
        DASHBOARD_UID_KEY: link.uid,
        PANEL_ID_KEY: str(link.panel_id),
        "dashboard_path": f"/d/{link.uid}?var-slo={slo.name}",
    }
    if _URL_RE.match(slo.runbook):
        annotations["runbook_url"] = slo.runbook
    else:
        annotations["runbook"] = slo.runbook or (
            "No runbook in the SLO file: open the SLO dashboard and the LLM overview."
        )
    return annotations


def _query(ref_id: str, slo: Slo, window: str, seconds: int) -> alerting.Query:
    return (
        alerting.Query(ref_id)
        .datasource_uid(DATASOURCE_UID)
        .relative_time_range(alerting_model.RelativeTimeRange(from_val=seconds, to=0))
        .model(ClickHouseQueryBuilder(rule_sql(slo, window), Format.TABLE, ref_id))
    )


def expression_query(ref_id: str, model: expr.TypeReduce | expr.TypeMath) -> alerting.Query:
    """A server-side expression (reduce, math) as one query of a rule."""
    source = dashboard_model.DataSourceRef(type_val=EXPR_UID, uid=EXPR_UID)
    return (
        alerting.Query(ref_id)
        .datasource_uid(EXPR_UID)
        .relative_time_range(alerting_model.RelativeTimeRange(from_val=0, to=0))
        .model(model.ref_id(ref_id).datasource(source))
    )


def _rule(slo: Slo, rule: BurnRule, link: DashboardLink) -> alerting.Rule:
    factor = _number(rule.burn_rate)
    return (
        alerting.Rule(f"{slo.name} {rule.name} burn rate")
        .uid(rule_uid(slo.name, rule.name))
        .org_id(ORG_ID)
        .folder_uid(FOLDER)
        .rule_group(slo.name)
        .condition(FIRING)
        .with_query(_query(LONG_QUERY, slo, rule.long_window, rule.long_ms // 1000))
        .with_query(_query(SHORT_QUERY, slo, rule.short_window, rule.short_ms // 1000))
        .with_query(
            expression_query(LONG_BURN, expr.TypeReduce().expression(LONG_QUERY).reducer("last"))
        )
        .with_query(
            expression_query(SHORT_BURN, expr.TypeReduce().expression(SHORT_QUERY).reducer("last"))
        )
        .with_query(
            expression_query(
                FIRING,
                expr.TypeMath().expression(f"${LONG_BURN} > {factor} && ${SHORT_BURN} > {factor}"),
            )
        )
        .for_val(FOR_BY_SEVERITY[rule.severity])
        .no_data_state(NO_DATA_STATE)
        .exec_err_state(EXEC_ERR_STATE)
        .is_paused(False)
        .labels(_labels(slo, rule))
        .annotations(_annotations(slo, rule, link))
    )


def group_json(builder: alerting.RuleGroup) -> Json:
    """A rule group builder as its API JSON."""
    doc = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    if not isinstance(doc, dict):
        raise ValueError(f"a rule group must encode to a JSON object, got {type(doc).__name__}")
    return doc


def _check_unique(groups: list[Json]) -> None:
    for key in ("uid", "title"):
        values = [rule[key] for group in groups for rule in group["rules"]]
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            raise ValueError(f"alert rule {key}s must be unique, got duplicates {duplicates}")


def build_rule_groups(
    slo_file: SloFile,
    link: DashboardLink,
    quality_link: DashboardLink | None = None,
    canary_link: DashboardLink | None = None,
) -> list[Json]:
    """One rule group per SLO in Grafana's HTTP provisioning API shape (``AlertRuleGroup``), then
    the ``quality`` group (``dashboards.quality_alerts``) when ``quality_link`` is given and the
    ``prompts`` group (``dashboards.canary_alerts``) when ``canary_link`` is given."""
    groups = []
    for slo in slo_file.slos:
        group = alerting.RuleGroup(slo.name).folder_uid(FOLDER).interval(GROUP_INTERVAL_S)
        for rule in slo.burn_rules:
            group = group.with_rule(_rule(slo, rule, link))
        groups.append(group_json(group))
    if quality_link is not None:
        from dashboards.quality_alerts import quality_rule_group  # late: it imports this module

        groups.append(quality_rule_group(quality_link))
    if canary_link is not None:
        from dashboards.canary_alerts import canary_rule_group  # late: it imports this module

        groups.append(canary_rule_group(canary_link))
    _check_unique(groups)
    return groups


def burn_panel_id(dashboard: Json) -> int:
    """The id of the SLO dashboard's burn-rate panel (:data:`BURN_PANEL_TITLE`)."""
    for panel in iter_panels(dashboard):
        if panel.get("title") == BURN_PANEL_TITLE and isinstance(panel.get("id"), int):
            return int(panel["id"])
    raise ValueError(
        f"dashboard {dashboard.get('uid')!r} has no panel titled {BURN_PANEL_TITLE!r} for the alert "
        "links; update dashboards.alert_rules.BURN_PANEL_TITLE"
    )


def slo_dashboard_link() -> DashboardLink:
    """The link to the SLO dashboard built by ``dashboards.slos`` (builds it to number its panels)."""
    from dashboards.build import dashboard_json  # late: dashboards.build may import this module

    return DashboardLink(slo_dashboard.UID, burn_panel_id(dashboard_json(slo_dashboard.build())))


def _escape(text: str) -> str:
    return text.replace("$", "$$")


def _unescape(text: str) -> str:
    return text.replace("$$", "$")


def _file_rule(rule: Json) -> Json:
    annotations = dict(rule.get("annotations", {}))
    dashboard_uid, panel_id = annotations.pop(DASHBOARD_UID_KEY), annotations.pop(PANEL_ID_KEY)
    out: Json = {"uid": rule["uid"], "title": _escape(rule["title"])}
    out |= {"condition": rule["condition"], "data": rule["data"]}
    out |= {"dashboardUid": dashboard_uid, "panelId": int(panel_id)}
    out |= {k: rule[k] for k in ("noDataState", "execErrState", "for")}
    out["annotations"] = annotations
    out["labels"] = {k: _escape(v) for k, v in rule.get("labels", {}).items()}
    out["isPaused"] = bool(rule.get("isPaused", False))
    return out


def _file_group(group: Json, folder_title: str) -> Json:
    out: Json = {"orgId": ORG_ID, "name": _escape(group["title"]), "folder": _escape(folder_title)}
    out["interval"] = duration_text(int(group["interval"]))
    out["rules"] = [_file_rule(rule) for rule in group["rules"]]
    return out


def to_provisioning(groups: list[Json], folder_title: str = FOLDER) -> Json:
    """The file-provisioning document (``apiVersion: 1``) of API-shaped rule groups."""
    return {"apiVersion": 1, "groups": [_file_group(group, folder_title) for group in groups]}


def _api_rule(rule: Json, group: str, folder_uid: str) -> Json:
    annotations = dict(rule.get("annotations", {}))
    if "dashboardUid" in rule and "panelId" in rule:
        annotations |= {DASHBOARD_UID_KEY: rule["dashboardUid"], PANEL_ID_KEY: str(rule["panelId"])}
    return {
        "condition": rule["condition"],
        "data": rule["data"],
        "execErrState": rule["execErrState"],
        "folderUID": folder_uid,
        "for": rule["for"],
        "noDataState": rule["noDataState"],
        "orgID": ORG_ID,
        "ruleGroup": group,
        "title": _unescape(rule["title"]),
        "annotations": annotations,
        "isPaused": bool(rule.get("isPaused", False)),
        "labels": {k: _unescape(v) for k, v in rule.get("labels", {}).items()},
        "uid": rule["uid"],
    }


def from_provisioning(doc: Json, folder_uid: str = FOLDER) -> list[Json]:
    """API-shaped rule groups from a file-provisioning document (inverse of :func:`to_provisioning`)."""
    if doc.get("apiVersion") != 1 or not isinstance(doc.get("groups"), list):
        raise ValueError(
            f"expected an alert provisioning document (apiVersion 1, groups), got {doc!r:.120}"
        )
    groups = []
    for group in doc["groups"]:
        title = _unescape(str(group["name"]))
        interval = duration_seconds(str(group["interval"]))
        rules = [_api_rule(rule, title, folder_uid) for rule in group.get("rules", [])]
        groups.append(
            {"folderUid": folder_uid, "interval": interval, "rules": rules, "title": title}
        )
    return groups


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the SQL) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", data, style="|" if "\n" in data else None
    )


_Dumper.add_representer(str, _represent_str)


def render_rules(doc: Json, source: str) -> str:
    """The YAML text of a provisioning document, with a header naming the SLO file ``source``."""
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)
    return FILE_HEADER.format(source=source) + body


def write_rules(slo_path: Path = DEFAULT_SLO_PATH, out_path: Path = RULES_PATH) -> Path:
    """Generate the rules of the SLO file at ``slo_path`` into ``out_path`` (atomic replace)."""
    slo_path, out_path = Path(slo_path), Path(out_path)
    from dashboards.canary_alerts import verdict_panel_link  # late: they import this module
    from dashboards.quality_alerts import drop_panel_link

    groups = build_rule_groups(
        load_slo_file(slo_path), slo_dashboard_link(), drop_panel_link(), verdict_panel_link()
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    resolved = slo_path.resolve()
    source = str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else resolved.name
    from dashboards.build import write_atomic  # late: dashboards.build may import this module

    write_atomic(out_path, render_rules(to_provisioning(groups), source))
    return out_path
