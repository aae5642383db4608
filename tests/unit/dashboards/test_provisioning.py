"""Grafana provisioning files: they parse, point where docker-compose mounts things, and resolve."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from dashboards.lint import provisioned_datasources
from dashboards.query import DATASOURCE_TYPE, DATASOURCE_UID, PLUGIN_VERSION

ROOT: Final = Path(__file__).resolve().parents[3]
PROVISIONING: Final = ROOT / "dashboards" / "provisioning"
COMPOSE: Final = ROOT / "docker-compose.yml"
_ENV_RE: Final = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)\}?")


def _yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def _grafana() -> dict[str, Any]:
    service: dict[str, Any] = _yaml(COMPOSE)["services"]["grafana"]
    return service


def _mounts() -> dict[str, str]:
    """Host path (relative to the repo) -> container path of the grafana service's bind mounts."""
    mounts = {}
    for volume in _grafana()["volumes"]:
        host, container, *_ = str(volume).split(":")
        if host.startswith("./"):
            mounts[host.removeprefix("./")] = container
    return mounts


def _files() -> list[Path]:
    return sorted(PROVISIONING.rglob("*.yaml"))


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(PROVISIONING)))
def test_provisioning_files_are_version_1_yaml(path: Path) -> None:
    assert _yaml(path)["apiVersion"] == 1


def test_compose_mounts_the_provisioning_and_generated_folders() -> None:
    mounts = _mounts()
    assert mounts["dashboards/provisioning"] == "/etc/grafana/provisioning"
    assert "dashboards/generated" in mounts


def test_the_file_provider_reads_where_compose_mounts_the_generated_dashboards() -> None:
    (provider,) = _yaml(PROVISIONING / "dashboards" / "llmwatch.yaml")["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == _mounts()["dashboards/generated"]
    assert provider["allowUiUpdates"] is False


def test_the_dashboards_datasource_is_provisioned() -> None:
    assert provisioned_datasources() == {DATASOURCE_UID: DATASOURCE_TYPE}


def _receivers() -> dict[str, dict[str, Any]]:
    doc = _yaml(PROVISIONING / "alerting" / "contact-points.yaml")
    return {
        point["name"]: receiver for point in doc["contactPoints"] for receiver in point["receivers"]
    }


def test_the_webhook_url_comes_from_grafanas_environment() -> None:
    receiver = _receivers()["llmwatch"]
    assert receiver["type"] == "webhook"
    assert receiver["settings"]["url"] == "${LLMWATCH_ALERT_WEBHOOK_URL}"


def _routes(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [policy, *(r for child in policy.get("routes", []) for r in _routes(child))]


def test_every_policy_route_sends_to_a_provisioned_contact_point() -> None:
    policies = _yaml(PROVISIONING / "alerting" / "notification-policies.yaml")["policies"]
    receivers = {route["receiver"] for policy in policies for route in _routes(policy)}
    assert receivers and receivers <= set(_receivers())


def test_severity_routes_match_the_slo_file_severities() -> None:
    (policy,) = _yaml(PROVISIONING / "alerting" / "notification-policies.yaml")["policies"]
    matched = {
        m[2] for route in policy["routes"] for m in route["object_matchers"] if m[0] == "severity"
    }
    assert matched == {"page", "ticket"}  # streams.slo.config.Severity


def _without_comments(path: Path) -> str:
    return "\n".join(
        line.split("#", 1)[0] for line in path.read_text(encoding="utf-8").splitlines()
    )


def _env_names() -> set[str]:
    """Environment variables Grafana must expand in the provisioning files (comments aside)."""
    return {name for path in _files() for name in _ENV_RE.findall(_without_comments(path))}


def test_compose_gives_grafana_every_variable_the_provisioning_files_use() -> None:
    assert _env_names() - set(_grafana()["environment"]) == set()


def test_the_datasource_variables_are_passed_by_compose() -> None:
    names = {n for n in _env_names() if n.startswith("CLICKHOUSE_")}
    assert names and names <= set(_grafana()["environment"])


def test_queries_declare_the_plugin_version_compose_installs() -> None:
    preinstall = str(_grafana()["environment"]["GF_PLUGINS_PREINSTALL"])
    assert f"{DATASOURCE_TYPE}@{PLUGIN_VERSION}" in preinstall.split(",")
