"""``dashboards.push`` against a stand-in Grafana on a real 127.0.0.1 socket (pytest-httpserver).

grafana-client sends through niquests, which responses/respx cannot intercept, so a local HTTP server
plays Grafana's folder, dashboard and alerting provisioning endpoints, keeps what is written, and adds
what Grafana adds on save (ids, versions, provenance, query model defaults).
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import re
from collections.abc import Iterator
from typing import Any, Final

import pytest
import yaml
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Request, Response

from dashboards.alert_rules import RULES_PATH, from_provisioning
from dashboards.build import GENERATED_DIR
from dashboards.push import Action, PushError, push, push_from_files, redact_url
from llmwatch.cli import app

Json = dict[str, Any]

TOKEN: Final = "test-token"
FOLDER: Final = "llmwatch"
GROUP_RE: Final = re.compile(r"^/api/v1/provisioning/folder/([^/]+)/rule-groups/([^/]+)$")
MODEL_DEFAULTS: Final = {"intervalMs": 1000, "maxDataPoints": 43200}


def _dashboards() -> dict[str, Json]:
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(GENERATED_DIR.glob("*.json"))]
    return {doc["uid"]: doc for doc in docs}


def _groups() -> list[Json]:
    return from_provisioning(yaml.safe_load(RULES_PATH.read_text(encoding="utf-8")))


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")


class FakeGrafana:
    """Grafana's state for the endpoints push uses; ``fail`` maps (method, path) to an HTTP status."""

    def __init__(self, server: HTTPServer) -> None:
        self.folders: dict[str, Json] = {}
        self.dashboards: dict[str, Json] = {}
        self.groups: dict[tuple[str, str], Json] = {}
        self.fail: dict[tuple[str, str], int] = {}
        server.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        status = self.fail.get((request.method, request.path))
        if status is not None:
            return _json({"message": f"injected failure {status}"}, status)
        route = (request.method, request.path)
        if route == ("POST", "/api/folders"):
            body = request.get_json()
            self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"]}
            return _json(self.folders[body["uid"]])
        if route == ("POST", "/api/dashboards/db"):
            return self.save_dashboard(request.get_json())
        if request.method == "GET" and request.path.startswith("/api/folders/"):
            return self.found(self.folders.get(request.path.rsplit("/", 1)[1]))
        if request.method == "GET" and request.path.startswith("/api/dashboards/uid/"):
            return self.found(self.dashboards.get(request.path.rsplit("/", 1)[1]))
        match = GROUP_RE.match(request.path)
        if match and request.method == "GET":
            return self.found(self.groups.get((match[1], match[2])))
        if match and request.method == "PUT":
            return self.save_group(match[1], match[2], request.get_json())
        return _json({"message": f"no route {route}"}, 404)

    @staticmethod
    def found(item: Json | None) -> Response:
        return _json(item) if item is not None else _json({"message": "not found"}, 404)

    def save_dashboard(self, body: Json) -> Response:
        doc = body["dashboard"]
        version = self.dashboards.get(doc["uid"], {}).get("dashboard", {}).get("version", 0) + 1
        stored = {**doc, "id": 40 + len(self.dashboards), "version": version}
        self.dashboards[doc["uid"]] = {
            "dashboard": stored,
            "meta": {"folderUid": body["folderUid"]},
        }
        return _json({"uid": doc["uid"], "status": "success", "version": version})

    def save_group(self, folder: str, title: str, body: Json) -> Response:
        stored = copy.deepcopy(body)
        for index, rule in enumerate(stored["rules"]):
            rule.update(id=index + 1, updated="2026-11-26T10:00:00Z", provenance="api")
            for query in rule["data"]:
                query["model"] = {**query["model"], **MODEL_DEFAULTS}
        self.groups[(folder, title)] = stored
        return _json(stored)


@pytest.fixture()
def server() -> Iterator[HTTPServer]:
    running = HTTPServer(host="127.0.0.1", port=0)
    running.start()
    try:
        yield running
    finally:
        running.clear()
        running.stop()


@pytest.fixture()
def grafana(server: HTTPServer) -> FakeGrafana:
    return FakeGrafana(server)


def _url(server: HTTPServer) -> str:
    return server.url_for("/").rstrip("/")


def _writes(server: HTTPServer) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r, _ in server.log if r.method != "GET"]


def test_first_push_creates_the_folder_dashboards_and_rule_groups(
    server: HTTPServer, grafana: FakeGrafana
) -> None:
    dashboards, groups = _dashboards(), _groups()
    report = push(_url(server), TOKEN, dashboards, groups)

    assert report.counts() == {Action.CREATED: 1 + len(dashboards) + len(groups),
                               Action.UPDATED: 0, Action.UNCHANGED: 0}  # fmt: skip
    expected_writes = [
        ("POST", "/api/folders"),
        *[("POST", "/api/dashboards/db")] * len(dashboards),
        *[
            ("PUT", f"/api/v1/provisioning/folder/{FOLDER}/rule-groups/{g['title']}")
            for g in groups
        ],
    ]
    assert _writes(server) == expected_writes
    requests = [r for r, _ in server.log]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in requests)
    bodies = [r.get_json() for r in requests if r.method != "GET"]
    assert bodies[0] == {"title": FOLDER, "uid": FOLDER}
    posted = {b["dashboard"]["uid"]: b for b in bodies[1 : 1 + len(dashboards)]}
    assert {uid: b["dashboard"] for uid, b in posted.items()} == dashboards
    assert all(b["folderUid"] == FOLDER and b["overwrite"] is True for b in posted.values())
    assert bodies[1 + len(dashboards) :] == groups  # already in the llmwatch folder


def test_a_second_push_writes_nothing_and_reports_everything_unchanged(
    server: HTTPServer, grafana: FakeGrafana
) -> None:
    push(_url(server), TOKEN, _dashboards(), _groups())
    server.clear_log()

    report = push(_url(server), TOKEN, _dashboards(), _groups())

    assert _writes(server) == []
    assert report.changed == []
    assert {item.action for item in report.items} == {Action.UNCHANGED}
    assert "0 created, 0 updated" in report.summary()


def test_only_what_changed_is_written_and_named(server: HTTPServer, grafana: FakeGrafana) -> None:
    dashboards, groups = _dashboards(), _groups()
    push(_url(server), TOKEN, dashboards, groups)
    server.clear_log()
    dashboards["llmwatch-cost"]["title"] = "LLM cost (renamed)"
    rule = groups[2]["rules"][1]
    rule["labels"] = rule["labels"] | {"team": "ml-platform"}
    rule["for"] = "30m"

    report = push(_url(server), TOKEN, dashboards, groups)

    assert [str(item) for item in report.changed] == [
        "dashboard llmwatch-cost: updated (content)",
        f"rule group {groups[2]['title']}: updated (rule {rule['uid']}: labels, for)",
    ]
    group_path = f"/api/v1/provisioning/folder/{FOLDER}/rule-groups/{groups[2]['title']}"
    assert _writes(server) == [("POST", "/api/dashboards/db"), ("PUT", group_path)]
    assert (
        grafana.groups[(FOLDER, groups[2]["title"])]["rules"][1]["labels"]["team"] == "ml-platform"
    )


def test_a_dashboard_in_another_folder_is_moved(server: HTTPServer, grafana: FakeGrafana) -> None:
    dashboards = _dashboards()
    push(_url(server), TOKEN, dashboards, [])
    grafana.dashboards["llmwatch-slos"]["meta"]["folderUid"] = "general"

    report = push(_url(server), TOKEN, dashboards, [])

    assert [str(item) for item in report.changed] == ["dashboard llmwatch-slos: updated (folder)"]
    assert grafana.dashboards["llmwatch-slos"]["meta"]["folderUid"] == FOLDER


def test_basic_auth_is_sent_as_a_basic_header(server: HTTPServer, grafana: FakeGrafana) -> None:
    push(_url(server), ("admin", "s3cret"), {}, [])
    expected = "Basic " + base64.b64encode(b"admin:s3cret").decode()
    assert {r.headers["Authorization"] for r, _ in server.log} == {expected}


def test_an_unauthorized_token_is_named_with_the_status(server: HTTPServer) -> None:
    server.expect_request(re.compile(".*")).respond_with_json(
        {"message": "invalid API key"}, status=401
    )
    with pytest.raises(PushError, match=r"folder 'llmwatch': HTTP 401") as caught:
        push(_url(server), "bad-token", _dashboards(), _groups())
    assert caught.value.status == 401
    assert _writes(server) == []


def test_a_server_error_names_the_dashboard(server: HTTPServer, grafana: FakeGrafana) -> None:
    grafana.fail[("POST", "/api/dashboards/db")] = 500
    with pytest.raises(PushError, match=r"dashboard 'llmwatch-cost': HTTP 500: .*injected failure"):
        push(_url(server), TOKEN, _dashboards(), _groups())
    assert FOLDER in grafana.folders and not grafana.groups  # stopped at the first error


def test_a_server_error_names_the_rule_group(server: HTTPServer, grafana: FakeGrafana) -> None:
    (group, *_) = _groups()
    grafana.fail[("PUT", f"/api/v1/provisioning/folder/{FOLDER}/rule-groups/{group['title']}")] = (
        500
    )
    with pytest.raises(PushError, match=rf"rule group '{group['title']}': HTTP 500"):
        push(_url(server), TOKEN, {}, [group])


def test_an_unreachable_grafana_is_named() -> None:
    with pytest.raises(PushError, match="folder 'llmwatch': no HTTP response"):
        push("http://127.0.0.1:9", TOKEN, {}, [], timeout=2.0)


def test_a_dashboard_under_the_wrong_uid_is_refused(
    server: HTTPServer, grafana: FakeGrafana
) -> None:
    with pytest.raises(ValueError, match="'llmwatch-cost'"):
        push(_url(server), TOKEN, {"other": _dashboards()["llmwatch-cost"]}, [])


def test_push_from_files_sends_the_committed_files(
    server: HTTPServer, grafana: FakeGrafana
) -> None:
    report = push_from_files(_url(server), TOKEN, GENERATED_DIR, RULES_PATH)

    assert len(report.changed) == 1 + len(_dashboards()) + len(_groups())
    stored = {uid: item["dashboard"] for uid, item in grafana.dashboards.items()}
    assert {uid: {k: v for k, v in doc.items() if k not in ("id", "version")}
            for uid, doc in stored.items()} == _dashboards()  # fmt: skip
    assert [grafana.groups[(FOLDER, g["title"])]["title"] for g in _groups()] == [
        g["title"] for g in _groups()
    ]


# An obviously fake password: it must never reach a log record, the report or an error message.
FAKE_PASSWORD: Final = "fake-grafana-pw-4f1d"


def _with_userinfo(url: str, password: str) -> str:
    return url.replace("http://", f"http://admin:{password}@", 1)


@pytest.mark.parametrize("where", ["url", "auth"])
def test_a_push_never_logs_or_reports_the_password(
    server: HTTPServer,
    grafana: FakeGrafana,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = _with_userinfo(_url(server), FAKE_PASSWORD) if where == "url" else _url(server)
    auth = ("admin", FAKE_PASSWORD) if where == "auth" else None

    report = push(url, auth, _dashboards(), _groups())

    expected = "Basic " + base64.b64encode(f"admin:{FAKE_PASSWORD}".encode()).decode()
    assert {r.headers["Authorization"] for r, _ in server.log} == {expected}  # still sent
    assert "grafana push to" in caplog.text
    assert FAKE_PASSWORD not in caplog.text
    assert FAKE_PASSWORD not in report.summary() and FAKE_PASSWORD not in report.url
    assert _url(server).removeprefix("http://") in report.summary()  # the host is still named


@pytest.mark.parametrize("status", [401, 500])
def test_a_failed_push_names_the_error_without_the_password(
    server: HTTPServer, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = _with_userinfo(_url(server), FAKE_PASSWORD)
    server.expect_request(re.compile(".*")).respond_with_json(
        {"message": f"bad credentials for {url}"}, status=status
    )
    with pytest.raises(PushError, match=rf"HTTP {status}") as caught:
        push(url, None, _dashboards(), _groups())
    assert FAKE_PASSWORD not in str(caught.value) and FAKE_PASSWORD not in caplog.text


def test_the_cli_never_prints_or_logs_the_password(
    server: HTTPServer, grafana: FakeGrafana, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = _with_userinfo(_url(server), FAKE_PASSWORD)
    result = CliRunner().invoke(app, ["dashboards", "push", "--url", url])
    assert result.exit_code == 0, result.output
    assert "folder llmwatch: created" in result.output
    assert FAKE_PASSWORD not in result.output and FAKE_PASSWORD not in caplog.text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            f"http://admin:{FAKE_PASSWORD}@grafana.test:3000/g",
            "http://admin:***@grafana.test:3000/g",
        ),
        ("https://admin:p%40ss:w@grafana.test", "https://admin:***@grafana.test"),
        ("http://token-only@grafana.test", "http://token-only@grafana.test"),
        ("http://grafana.test:3000", "http://grafana.test:3000"),
    ],
)
def test_redact_url_masks_only_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown
