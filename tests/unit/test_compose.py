"""The production stack files: docker-compose.yml validates, refuses to start without secrets, and keeps
its promises (healthchecks, pinned images, KRaft, Grafana provisioning, capped ClickHouse system logs)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DATASOURCE_FILE = ROOT / "dashboards" / "provisioning" / "datasources" / "clickhouse.yaml"
SYSTEM_LOGS_FILE = ROOT / "deploy" / "clickhouse" / "config.d" / "system-logs.xml"
READER_FILE = ROOT / "deploy" / "clickhouse" / "users.d" / "grafana-reader.xml"

# Long-running, with healthchecks.
SERVICES = ("kafka", "clickhouse", "grafana", "worker", "sink", "analyze", "judge")
ENTRY_CHECK = "env-check"  # one-shot: every service above waits for it to succeed
ALL_SERVICES = (ENTRY_CHECK, *SERVICES)
CHECK_SCRIPT = ROOT / "deploy" / "check-env.sh"
PLACEHOLDER = "CHANGE-ME"
LLMWATCH_SERVICES = ("worker", "sink", "analyze", "judge")
REQUIRED_SECRETS = (
    "CLICKHOUSE_PASSWORD",
    "CLICKHOUSE_GRAFANA_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "LLMWATCH_ALERT_WEBHOOK_URL",
)
# Placeholder values for the compose run; clearly not real.
TEST_SECRETS = {name: f"test-{name.lower().replace('_', '-')}" for name in REQUIRED_SECRETS}
# The system logs the brief names; each must keep 3 days.
CAPPED_SYSTEM_LOGS = (
    "query_log",
    "trace_log",
    "metric_log",
    "asynchronous_metric_log",
    "part_log",
    "text_log",
    "processors_profile_log",
    "query_thread_log",
)
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)
REQUIRED_VAR = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]+\}$")
VAR_REFERENCE = re.compile(r"\$\{([A-Z0-9_]+)")
PINNED_IMAGE = re.compile(r"^[a-z0-9./_-]+:(?!latest$)[A-Za-z0-9][A-Za-z0-9._-]*$")
PINNED_PLUGIN = re.compile(r"^grafana-clickhouse-datasource@\d+\.\d+\.\d+$")
COMPOSE_TIMEOUT_S = 60


@cache
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open() as handle:
        data: dict[str, Any] = yaml.safe_load(handle)
    return data


def uncommented(path: Path) -> str:
    """The file's text without its comment lines (they may show ${VAR} syntax as an example)."""
    lines = path.read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def service(name: str) -> dict[str, Any]:
    result: dict[str, Any] = compose()["services"][name]
    return result


def run_compose_config(
    secrets: dict[str, str], tmp_path: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip(
            "docker-compose is not installed: run scripts/install-tools.sh (make test does)"
        )
    empty_env_file = tmp_path / "empty.env"  # keep a developer's real .env out of the test
    empty_env_file.write_text("")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **secrets}
    return subprocess.run(
        [binary, "--env-file", str(empty_env_file), "-f", str(COMPOSE_FILE), "config", *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=COMPOSE_TIMEOUT_S,
        check=False,
    )


# --- docker-compose itself --------------------------------------------------------------------------


def test_compose_config_is_valid(tmp_path: Path) -> None:
    result = run_compose_config(TEST_SECRETS, tmp_path, "-q")
    assert result.returncode == 0, result.stderr


def test_compose_interpolates_secrets_into_the_sink_dsn(tmp_path: Path) -> None:
    result = run_compose_config(TEST_SECRETS, tmp_path)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    password = TEST_SECRETS["CLICKHOUSE_PASSWORD"]
    for name in LLMWATCH_SERVICES:
        dsn = resolved["services"][name]["environment"]["LLMWATCH_CLICKHOUSE_DSN"]
        assert dsn == f"http://llmwatch:{password}@clickhouse:8123/llmwatch"


@pytest.mark.parametrize("missing", REQUIRED_SECRETS)
def test_compose_refuses_to_start_without_a_secret(tmp_path: Path, missing: str) -> None:
    secrets = {k: v for k, v in TEST_SECRETS.items() if k != missing}
    result = run_compose_config(secrets, tmp_path, "-q")
    assert result.returncode != 0
    assert missing in result.stderr


# --- structure of docker-compose.yml ----------------------------------------------------------------


def test_services_are_the_expected_set() -> None:
    assert set(compose()["services"]) == set(ALL_SERVICES)


@pytest.mark.parametrize("name", SERVICES)
def test_service_has_a_healthcheck(name: str) -> None:
    check = service(name).get("healthcheck")
    assert check, f"{name} has no healthcheck"
    assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1
    assert {"interval", "timeout", "retries"} <= set(check)


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_service_image_is_pinned(name: str) -> None:
    image = service(name).get("image")
    assert image is not None, f"{name} has no image tag"
    assert PINNED_IMAGE.match(image), f"{name} image {image!r} is not pinned to a version tag"


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_service_has_no_literal_secret(name: str) -> None:
    for key, value in service(name).get("environment", {}).items():
        if SECRET_KEY.search(key):
            assert REQUIRED_VAR.match(str(value)), f"{name}.{key} must be ${{VAR:?message}}"


def test_no_secret_has_a_default_anywhere() -> None:
    text = uncommented(COMPOSE_FILE)
    assert not re.search(r"\$\{[A-Z_]*(PASSWORD|SECRET|TOKEN)[A-Z_]*:?-", text)
    for secret in REQUIRED_SECRETS:
        assert f"${{{secret}:?" in text


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_published_ports_bind_loopback_only(name: str) -> None:
    for port in service(name).get("ports", []):
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port!r} on all interfaces"


def test_kafka_is_a_single_node_kraft_cluster() -> None:
    env = service("kafka")["environment"]
    assert service("kafka")["image"].startswith("apache/kafka:")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert not [key for key in env if "ZOOKEEPER" in key]
    for key in ("OFFSETS_TOPIC", "TRANSACTION_STATE_LOG"):
        assert env[f"KAFKA_{key}_REPLICATION_FACTOR"] == "1"
    assert "kafka-broker-api-versions.sh" in " ".join(service("kafka")["healthcheck"]["test"])


def test_grafana_preinstalls_a_pinned_plugin_and_mounts_provisioning() -> None:
    grafana = service("grafana")
    env = grafana["environment"]
    assert PINNED_PLUGIN.match(env["GF_PLUGINS_PREINSTALL"])
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "./dashboards/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./dashboards/generated:/var/lib/grafana/dashboards:ro" in grafana["volumes"]


@pytest.mark.parametrize("name", LLMWATCH_SERVICES)
def test_llmwatch_service_waits_for_healthy_dependencies(name: str) -> None:
    spec = service(name)
    assert spec["build"] == "."
    assert spec["command"] == ["llmwatch", name]
    assert spec["healthcheck"]["test"][:4] == ["CMD", "llmwatch", "healthcheck", name]
    assert spec["depends_on"] == {
        ENTRY_CHECK: {"condition": "service_completed_successfully"},
        "kafka": {"condition": "service_healthy"},
        "clickhouse": {"condition": "service_healthy"},
    }
    env = spec["environment"]
    assert env["LLMWATCH_BOOTSTRAP"] == "kafka:9092"
    assert env["LLMWATCH_CLICKHOUSE_DSN"].endswith("@clickhouse:8123/llmwatch")
    assert any(v.endswith(f":{env['LLMWATCH_DATA_DIR']}") for v in spec["volumes"])


# --- the entry check: placeholders never start the stack --------------------------------------------


def env_example_values() -> dict[str, str]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {name: value for name, value in pairs}


def run_entry_check(values: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """deploy/check-env.sh as the env-check service runs it: its command's names, its environment."""
    spec = service(ENTRY_CHECK)
    env = {"PATH": os.environ.get("PATH", ""), **values}
    return subprocess.run(
        ["sh", str(CHECK_SCRIPT), *spec["command"]],
        capture_output=True,
        text=True,
        env=env,
        timeout=COMPOSE_TIMEOUT_S,
        check=False,
    )


def test_the_entry_check_covers_every_secret() -> None:
    spec = service(ENTRY_CHECK)
    assert spec["command"] == list(REQUIRED_SECRETS)
    assert set(spec["environment"]) == set(REQUIRED_SECRETS)
    assert spec["entrypoint"] == ["sh", "/usr/local/bin/llmwatch-check-env"]
    assert "./deploy/check-env.sh:/usr/local/bin/llmwatch-check-env:ro" in spec["volumes"]
    assert spec["restart"] == "no" and "healthcheck" not in spec


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_waits_for_the_entry_check(name: str) -> None:
    condition = service(name)["depends_on"][ENTRY_CHECK]
    assert condition == {"condition": "service_completed_successfully"}


@pytest.mark.parametrize("placeholder", REQUIRED_SECRETS)
def test_the_entry_check_refuses_a_placeholder_and_names_it(placeholder: str) -> None:
    example = env_example_values()[placeholder]
    assert PLACEHOLDER in example
    result = run_entry_check(TEST_SECRETS | {placeholder: example})
    assert result.returncode == 1
    assert [line.split(":")[1].split()[0] for line in result.stderr.splitlines()] == [placeholder]
    assert example not in result.stdout + result.stderr  # the value itself is never printed


def test_the_entry_check_refuses_the_unedited_env_example() -> None:
    result = run_entry_check(env_example_values())
    assert result.returncode == 1
    assert all(name in result.stderr for name in REQUIRED_SECRETS)


def test_the_entry_check_passes_real_values() -> None:
    result = run_entry_check(TEST_SECRETS)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert f"passed ({len(REQUIRED_SECRETS)} variables)" in result.stdout


def test_the_entry_check_refuses_an_empty_value() -> None:
    result = run_entry_check(TEST_SECRETS | {"GRAFANA_ADMIN_PASSWORD": ""})
    assert result.returncode == 1 and "GRAFANA_ADMIN_PASSWORD is not set" in result.stderr


def test_worker_uses_rocksdb_store() -> None:
    assert service("worker")["environment"]["LLMWATCH_STORE"] == "rocksdb://"


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_volumes_are_named_or_existing_repo_files(name: str) -> None:
    declared = set(compose()["volumes"])
    for volume in service(name).get("volumes", []):
        source = volume.split(":", 1)[0]
        if source.startswith("./"):
            # dashboards/generated is built by `make dashboards`; everything else is committed.
            if source != "./dashboards/generated":
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
        else:
            assert source in declared, f"{name} uses undeclared volume {source!r}"


def test_env_example_documents_every_variable() -> None:
    used = set(VAR_REFERENCE.findall(uncommented(COMPOSE_FILE)))
    documented = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used == documented
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.split("=", 1)[0] in REQUIRED_SECRETS:
            assert "CHANGE-ME" in line, f"secret placeholder must be obviously fake: {line!r}"


def test_dockerfile_is_pinned_and_runs_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base is not None and base.group(1).startswith("python:3.11-slim")
    assert PINNED_IMAGE.match(base.group(1))
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0"))
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()


# --- Grafana datasource and ClickHouse config files -------------------------------------------------


def test_datasource_is_provisioned_from_the_environment() -> None:
    provisioning = yaml.safe_load(DATASOURCE_FILE.read_text())
    [source] = provisioning["datasources"]
    assert source["uid"] == "llmwatch-clickhouse"
    assert source["type"] == "grafana-clickhouse-datasource"
    assert source["jsonData"]["defaultDatabase"] == "llmwatch"
    for value in (source["jsonData"]["host"], source["jsonData"]["port"]):
        assert VAR_REFERENCE.match(str(value))
    assert VAR_REFERENCE.match(source["jsonData"]["username"])
    assert VAR_REFERENCE.match(source["secureJsonData"]["password"])
    # Every variable the file expands is set in the Grafana container.
    used = set(VAR_REFERENCE.findall(uncommented(DATASOURCE_FILE)))
    assert used <= set(service("grafana")["environment"])


@pytest.mark.parametrize("table", CAPPED_SYSTEM_LOGS)
def test_system_log_keeps_three_days(table: str) -> None:
    section = ET.parse(SYSTEM_LOGS_FILE).getroot().find(table)
    assert section is not None, f"{table} has no TTL"
    assert section.findtext("ttl") == "event_date + INTERVAL 3 DAY DELETE"
    assert section.find("engine") is None  # ClickHouse rejects <ttl> next to <engine>


def test_grafana_reader_is_read_only_with_password_from_env() -> None:
    root = ET.parse(READER_FILE).getroot()
    user = root.find("users/grafana_reader")
    assert user is not None
    password = user.find("password")
    assert password is not None and password.text is None  # no literal password
    assert password.attrib["from_env"] in service("clickhouse")["environment"]
    assert service("grafana")["environment"]["CLICKHOUSE_GRAFANA_USER"] == "grafana_reader"
    profile = root.find(f"profiles/{user.findtext('profile')}")
    assert profile is not None and profile.findtext("readonly") == "1"
    assert profile.find("constraints/max_execution_time/changeable_in_readonly") is not None
    grants = [q.text for q in user.findall("grants/query")]
    assert grants == ["GRANT SELECT ON llmwatch.*"]
