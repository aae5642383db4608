"""Build every llmwatch dashboard to Grafana JSON and write them for file provisioning.

Guarantees:
- Deterministic: the same code gives byte-identical files (keys sorted, 2-space indent, trailing
  newline; panel ids numbered 1, 2, ... in layout order, rows included), so ``dashboards/generated``
  diffs show real changes only and a test regenerates and compares.
- Each file is ``<uid>.json``, mode 0644, and is replaced atomically (written to a temporary file,
  then renamed), so Grafana's file provider never reads half a file. Files of dashboards no longer
  built are not deleted (the "generated files are current" test reports them).
- Two normalizations of the SDK's output: panel ids are assigned here (the SDK leaves them unset), and
  the ``auto``, ``auto_min`` and ``auto_count`` keys, which only mean something for interval
  variables, are dropped from other variables (Grafana's dashboard schema does not allow them there).

Only :func:`write_all` does I/O (it writes the files).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import cost, drift, overview, pipeline, prompts, quality, safety, slos, traces
from dashboards.query import register

__all__ = [
    "DASHBOARD_MODULES",
    "GENERATED_DIR",
    "build_all",
    "dashboard_json",
    "render",
    "write_all",
]

# Each module has UID and build() -> the SDK's Dashboard builder.
DASHBOARD_MODULES: Final[tuple[ModuleType, ...]] = (
    overview,
    cost,
    slos,
    pipeline,
    safety,
    traces,
    quality,
    prompts,
    drift,
)
GENERATED_DIR: Final = Path(__file__).resolve().parent / "generated"
_INTERVAL_ONLY_KEYS: Final = ("auto", "auto_min", "auto_count")
FILE_MODE: Final = 0o644


def _number_panels(panels: list[dict[str, Any]], start: int) -> int:
    next_id = start
    for panel in panels:
        panel["id"] = next_id
        next_id += 1
        nested = panel.get("panels")
        if isinstance(nested, list):
            next_id = _number_panels(nested, next_id)
    return next_id


def _normalize(doc: dict[str, Any]) -> dict[str, Any]:
    _number_panels(doc.get("panels", []), 1)
    for variable in doc.get("templating", {}).get("list", []):
        if variable.get("type") != "interval":
            for key in _INTERVAL_ONLY_KEYS:
                variable.pop(key, None)
    return doc


def dashboard_json(builder: dashboard_builder.Dashboard) -> dict[str, Any]:
    """The dashboard model of ``builder`` as plain JSON data, normalized (module docstring)."""
    doc = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    if not isinstance(doc, dict):
        raise ValueError(f"a dashboard must encode to a JSON object, got {type(doc).__name__}")
    return _normalize(doc)


def build_all() -> dict[str, dict[str, Any]]:
    """Every llmwatch dashboard: uid -> dashboard JSON. Raises ValueError on a duplicate uid."""
    register()
    built: dict[str, dict[str, Any]] = {}
    for module in DASHBOARD_MODULES:
        doc = dashboard_json(module.build())
        uid = doc.get("uid")
        if not isinstance(uid, str) or uid in built:
            raise ValueError(
                f"dashboard uids must be unique strings, got {uid!r} ({module.__name__})"
            )
        built[uid] = doc
    return built


def render(doc: dict[str, Any]) -> str:
    """The file content for one dashboard (sorted keys, stable formatting)."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, readable by Grafana's container user."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600; Grafana's container user must read it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_all(out_dir: Path = GENERATED_DIR) -> list[Path]:
    """Write ``<uid>.json`` for every dashboard into ``out_dir`` (created if missing)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for uid, doc in sorted(build_all().items()):
        path = out_dir / f"{uid}.json"
        write_atomic(path, render(doc))
        paths.append(path)
    return paths
