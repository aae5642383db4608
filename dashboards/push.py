"""Sync llmwatch's dashboards and alert rule groups into a running Grafana over its HTTP API.

This is the alternative to file provisioning (``dashboards/provisioning``, which docker-compose mounts)
for a Grafana that llmwatch does not deploy. Do not use both on one Grafana: Grafana refuses API
writes to file-provisioned dashboards and rules, and the error names them.

Guarantees:
- Idempotent: each folder, dashboard and rule group is read first and compared, after normalization,
  with what would be written; only differences are written. A second push of the same content writes
  nothing and reports every item unchanged. Normalization ignores what Grafana adds on save: a
  dashboard's ``id`` and ``version``; a rule's ``id``, ``updated``, ``provenance`` and the query model
  defaults (``intervalMs``, ``maxDataPoints``); durations are compared in seconds.
- Order: the folder, then dashboards, then rule groups (rules link to the dashboards). The first HTTP
  error stops the push with a :class:`PushError` naming the item and the HTTP status. Each write
  replaces one whole item, so running the push again completes it.
- Rule groups go through the alerting provisioning API (``PUT /api/v1/provisioning/folder/{folderUid}/
  rule-groups/{group}``), so Grafana marks them provisioned (not editable in its UI).
- Blocking: every request is bounded by ``timeout`` seconds (connect and read).
- Secrets: the password or token (given in ``auth`` or as ``user:password@`` in the URL) is sent only
  in the Authorization header. It never appears in a log record, in :attr:`PushReport.url` and its
  summary, or in a :class:`PushError` message: the URL's password is shown as ``***``, and an error
  text that contains a secret is masked and raised without its (unmasked) cause.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import yaml
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaException
from niquests.exceptions import RequestException

from dashboards.alert_rules import FOLDER, duration_seconds, from_provisioning

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "Action",
    "Auth",
    "PushError",
    "PushItem",
    "PushReport",
    "push",
    "push_from_files",
    "redact_url",
]

log = logging.getLogger(__name__)

Json = dict[str, Any]
Auth = str | tuple[str, str]  # an API / service-account token, or (user, password)
DEFAULT_TIMEOUT_S: Final = 10.0
NOT_FOUND: Final = 404
COMMIT_MESSAGE: Final = "llmwatch dashboards push"
MASK: Final = "***"  # shown instead of a password or token
# Keys Grafana sets on save, ignored when comparing.
_DASHBOARD_SERVER_KEYS: Final = ("id", "version")
_RULE_KEYS: Final = ("title", "condition", "noDataState", "execErrState", "isPaused")
_QUERY_KEYS: Final = ("refId", "datasourceUid", "relativeTimeRange")


class Action(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class PushError(RuntimeError):
    """An HTTP call to Grafana failed; the message names the item and the status."""

    def __init__(self, what: str, status: int, message: str) -> None:
        reason = f"HTTP {status}" if status else "no HTTP response"
        super().__init__(f"{what}: {reason}: {message}")
        self.what = what
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class PushItem:
    kind: str  # "folder", "dashboard" or "rule group"
    name: str
    action: Action
    changes: tuple[str, ...] = ()

    def __str__(self) -> str:
        detail = f" ({', '.join(self.changes)})" if self.changes else ""
        return f"{self.kind} {self.name}: {self.action}{detail}"


@dataclass
class PushReport:
    """What a push did, item by item, in push order."""

    url: str
    items: list[PushItem] = field(default_factory=list)

    @property
    def changed(self) -> list[PushItem]:
        return [item for item in self.items if item.action is not Action.UNCHANGED]

    def counts(self) -> dict[Action, int]:
        return {action: sum(i.action is action for i in self.items) for action in Action}

    def summary(self) -> str:
        counts = ", ".join(f"{n} {action}" for action, n in self.counts().items())
        return "\n".join([f"Grafana {self.url}: {counts}", *(f"  {i}" for i in self.changed)])


def redact_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***`` (``http://admin:***@host``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def _secrets(url: str, auth: Auth | None) -> tuple[str, ...]:
    """Every form in which the password or token could show up in a message."""
    password = urlsplit(url).password
    given = auth if isinstance(auth, str) else auth[1] if auth is not None else None
    found = {password, unquote(password) if password else None, given}
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def _masked(exc: PushError, secrets: Sequence[str]) -> PushError | None:
    """A copy of ``exc`` with every secret masked, or None when its text holds no secret."""
    message = exc.message
    for secret in secrets:
        message = message.replace(secret, MASK)
    return None if message == exc.message else PushError(exc.what, exc.status, message)


def _connect(url: str, auth: Auth | None, timeout: float) -> Any:
    """A GrafanaApi (grafana-client is untyped, so it is handled as Any past this point)."""
    return GrafanaApi.from_url(url, credential=auth, timeout=timeout)  # type: ignore[no-untyped-call]


def _call(what: str, request: Callable[[], Any]) -> Any:
    try:
        return request()
    except GrafanaException as exc:
        raise PushError(what, int(exc.status_code or 0), str(exc.message)) from exc
    except RequestException as exc:  # grafana-client lets connection errors through
        raise PushError(what, 0, str(exc)) from exc


def _get_or_none(what: str, request: Callable[[], Any]) -> Any:
    """The response of a GET, or None when Grafana answers 404."""
    try:
        return _call(what, request)
    except PushError as exc:
        if exc.status == NOT_FOUND:
            return None
        raise


def _ensure_folder(api: Any, folder: str) -> PushItem:
    what = f"folder {folder!r}"
    if _get_or_none(what, lambda: api.folder.get_folder(quote(folder, safe=""))) is not None:
        return PushItem("folder", folder, Action.UNCHANGED)
    _call(what, lambda: api.folder.create_folder(title=folder, uid=folder))
    return PushItem("folder", folder, Action.CREATED)


def _dashboard_content(doc: Json) -> Json:
    return {k: v for k, v in doc.items() if k not in _DASHBOARD_SERVER_KEYS}


def _push_dashboard(api: Any, uid: str, doc: Json, folder: str) -> PushItem:
    what = f"dashboard {uid!r}"
    if doc.get("uid") != uid:
        raise ValueError(f"{what}: the JSON's uid must be {uid!r}, got {doc.get('uid')!r}")
    desired = _dashboard_content(doc)
    current = _get_or_none(what, lambda: api.dashboard.get_dashboard(quote(uid, safe="")))
    action, changes = Action.CREATED, []
    if current is not None:
        action = Action.UPDATED
        if _dashboard_content(current.get("dashboard") or {}) != desired:
            changes.append("content")
        if (current.get("meta") or {}).get("folderUid") != folder:
            changes.append("folder")
        if not changes:
            return PushItem("dashboard", uid, Action.UNCHANGED)
    body = {"dashboard": desired, "folderUid": folder, "overwrite": True}
    _call(what, lambda: api.dashboard.update_dashboard(body | {"message": COMMIT_MESSAGE}))
    return PushItem("dashboard", uid, action, tuple(changes))


def _contains(current: Any, desired: Any) -> bool:
    """``desired`` is ``current`` minus keys the server added (recursively, in dicts)."""
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(
            k in current and _contains(current[k], v) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(current, list)
            and len(current) == len(desired)
            and all(_contains(c, d) for c, d in zip(current, desired, strict=True))
        )
    return bool(current == desired)


def _query_differs(desired: Json, current: Json) -> bool:
    if any(desired.get(k) != current.get(k) for k in _QUERY_KEYS):
        return True
    if (desired.get("queryType") or "") != (current.get("queryType") or ""):
        return True
    return not _contains(current.get("model"), desired.get("model"))


def _rule_changes(desired: Json, current: Json) -> list[str]:
    """Names of the fields of one rule that differ (normalized, see the module docstring)."""
    changes = [k for k in _RULE_KEYS if desired.get(k, False) != current.get(k, False)]
    for key in ("labels", "annotations"):
        if (desired.get(key) or {}) != (current.get(key) or {}):
            changes.append(key)
    if duration_seconds(str(desired["for"])) != duration_seconds(str(current.get("for") or "0s")):
        changes.append("for")
    desired_data, current_data = desired["data"], current.get("data") or []
    if len(desired_data) != len(current_data) or any(
        _query_differs(d, c) for d, c in zip(desired_data, current_data, strict=False)
    ):
        changes.append("queries")
    return changes


def _group_changes(desired: Json, current: Json) -> list[str]:
    changes = []
    if int(desired["interval"]) != int(current.get("interval") or 0):
        changes.append("interval")
    current_rules = {rule.get("uid"): rule for rule in current.get("rules") or []}
    if [r["uid"] for r in desired["rules"]] != list(current_rules):
        changes.append("rules " + ", ".join(r["uid"] for r in desired["rules"]))
    for rule in desired["rules"]:
        if rule["uid"] in current_rules:
            fields = _rule_changes(rule, current_rules[rule["uid"]])
            changes += [f"rule {rule['uid']}: {', '.join(fields)}"] if fields else []
    return changes


def _push_group(api: Any, group: Json, folder: str) -> PushItem:
    title = str(group["title"])
    what = f"rule group {title!r}"
    rules = [rule | {"folderUID": folder, "ruleGroup": title} for rule in group["rules"]]
    desired = group | {"folderUid": folder, "rules": rules}
    path_folder, path_group = quote(folder, safe=""), quote(title, safe="")
    provisioning = api.alertingprovisioning
    current = _get_or_none(what, lambda: provisioning.get_rule_group(path_folder, path_group))
    action, changes = Action.CREATED, []
    if current is not None:
        action, changes = Action.UPDATED, _group_changes(desired, current)
        if not changes:
            return PushItem("rule group", title, Action.UNCHANGED)
    _call(what, lambda: provisioning.update_rule_group(path_folder, path_group, desired))
    return PushItem("rule group", title, action, tuple(changes))


def push(
    grafana_url: str,
    token_or_basic_auth: Auth | None,
    dashboards: Mapping[str, Json],
    rule_groups: Sequence[Json],
    folder: str = FOLDER,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> PushReport:
    """Create or update the folder (uid and title ``folder``), the dashboards and the rule groups.

    ``dashboards``: uid -> dashboard JSON (``dashboards/generated``); ``rule_groups``: Grafana API
    rule groups (``dashboards.alert_rules.build_rule_groups`` / ``from_provisioning``); their folder
    is replaced by ``folder``. Raises :class:`PushError` on the first failed HTTP call.
    """
    api = _connect(grafana_url, token_or_basic_auth, timeout)
    report = PushReport(redact_url(grafana_url))
    try:
        report.items.append(_ensure_folder(api, folder))
        for uid in sorted(dashboards):
            report.items.append(_push_dashboard(api, uid, dashboards[uid], folder))
        for group in rule_groups:
            report.items.append(_push_group(api, group, folder))
    except PushError as exc:
        masked = _masked(exc, _secrets(grafana_url, token_or_basic_auth))
        if masked is None:
            raise
        raise masked from None  # the cause's text holds the secret
    for item in report.changed:
        log.info("grafana push: %s", item)
    log.info(
        "grafana push to %s: %d items, %d changed",
        report.url,
        len(report.items),
        len(report.changed),
    )
    return report


def _read_dashboards(generated_dir: Path) -> dict[str, Json]:
    dashboards: dict[str, Json] = {}
    for path in sorted(Path(generated_dir).glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        uid = doc.get("uid") if isinstance(doc, dict) else None
        if not isinstance(uid, str) or uid in dashboards:
            raise ValueError(f"{path}: a dashboard needs a unique string uid, got {uid!r}")
        dashboards[uid] = doc
    if not dashboards:
        raise ValueError(f"no dashboard JSON files in {generated_dir}")
    return dashboards


def push_from_files(
    url: str,
    auth: Auth | None,
    generated_dir: Path,
    rules_path: Path,
    folder: str = FOLDER,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> PushReport:
    """:func:`push` of the ``*.json`` dashboards in ``generated_dir`` and the rules file."""
    doc = yaml.safe_load(Path(rules_path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError(f"{rules_path}: expected an alert provisioning document, got {doc!r:.80}")
    groups = from_provisioning(doc, folder)
    return push(url, auth, _read_dashboards(generated_dir), groups, folder, timeout=timeout)
