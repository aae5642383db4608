"""Installs are reproducible: hash-pinned locks cover pyproject.toml, agree with each other and with
this environment, and both ``make install`` and the Dockerfile install only from them."""

from __future__ import annotations

import re
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Final

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT: Final = Path(__file__).resolve().parents[2]
REQUIREMENTS: Final = ROOT / "requirements"
DEV_LOCK: Final = REQUIREMENTS / "dev.lock"
RUNTIME_LOCK: Final = REQUIREMENTS / "runtime.lock"
LOCKS: Final = (
    DEV_LOCK,
    RUNTIME_LOCK,
    REQUIREMENTS / "broker.txt",
    REQUIREMENTS / "lock-tools.txt",
)
PIN: Final = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")
HASH: Final = re.compile(r"^    --hash=sha256:[0-9a-f]{64}( \\)?$")
DEV_ONLY: Final = ("pytest", "mypy", "ruff", "hypothesis")
# The environment the locks are resolved for (requirements/README.md).
LOCK_ENV: Final = {"python_version": "3.11", "sys_platform": "linux", "platform_machine": "x86_64"}

Lock = dict[str, tuple[str, frozenset[str]]]  # name -> (version, sha256 hashes)


@cache
def read_lock(path: Path) -> Lock:
    """Every pin of a pip requirements file with hashes; any other line fails the test."""
    lock: Lock = {}
    name = ""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if match := PIN.match(line):
            name = canonicalize_name(match[1])
            assert name not in lock, f"{path.name}:{number}: {name} pinned twice"
            lock[name] = (match[2], frozenset())
        elif HASH.match(line) and name:
            version, hashes = lock[name]
            lock[name] = (version, hashes | {line.split(":", 1)[1].split()[0]})
        else:
            raise AssertionError(f"{path.name}:{number}: neither a pin nor a hash: {line!r}")
    return lock


@cache
def project() -> dict[str, list[str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = data["optional-dependencies"]
    return {
        "runtime": data["dependencies"],
        "text": extras["text"],
        "ner": extras["ner"],
        "dev": extras["dev"],
    }


def _requirements(*groups: str) -> list[str]:
    # "llmwatch[text]" in the dev extra is the text extra itself, checked through its own entries.
    return [
        req
        for group in groups
        for req in project()[group]
        if canonicalize_name(Requirement(req).name) != "llmwatch"
    ]


@pytest.mark.parametrize("path", LOCKS, ids=lambda p: p.name)
def test_every_pin_has_its_hashes(path: Path) -> None:
    lock = read_lock(path)
    assert lock, f"{path.name} pins nothing"
    assert all(hashes for _, hashes in lock.values()), [n for n, (_, h) in lock.items() if not h]


@pytest.mark.parametrize(
    ("path", "requirement"),
    [(DEV_LOCK, r) for r in _requirements("runtime", "text", "ner", "dev")]
    + [(RUNTIME_LOCK, r) for r in _requirements("runtime", "text")],
    ids=lambda v: v.name if isinstance(v, Path) else v,
)
def test_the_lock_satisfies_pyproject(path: Path, requirement: str) -> None:
    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate(LOCK_ENV):
        pytest.skip(f"{requirement} does not apply to Python 3.11 on Linux x86_64")
    pinned = read_lock(path).get(canonicalize_name(req.name))
    assert pinned is not None, f"{path.name} lacks {req.name}: run `make lock`"
    assert req.specifier.contains(pinned[0], prereleases=True), (
        f"{path.name} pins {req.name}=={pinned[0]}, pyproject.toml asks {req.specifier}: "
        "run `make lock`"
    )


def test_the_runtime_lock_is_the_dev_lock_without_the_dev_tools() -> None:
    runtime, dev = read_lock(RUNTIME_LOCK), read_lock(DEV_LOCK)
    assert {name: dev.get(name) for name in runtime} == runtime
    assert not [tool for tool in DEV_ONLY if tool in runtime]
    assert all(tool in dev for tool in DEV_ONLY)


def test_genai_prices_is_pinned_exactly_everywhere() -> None:
    # streams/pricing reads genai-prices' internals: only the tested version may install.
    [spec] = [r for r in project()["runtime"] if Requirement(r).name == "genai-prices"]
    version = str(Requirement(spec).specifier).removeprefix("==")
    assert spec == f"genai-prices=={version}"
    assert read_lock(RUNTIME_LOCK)["genai-prices"][0] == version
    assert metadata.version("genai-prices") == version


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the locks are for Python 3.11")
def test_this_environment_has_the_locked_versions() -> None:
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    differ = {
        name: (version, installed.get(name))
        for name, (version, _) in read_lock(DEV_LOCK).items()
        if installed.get(name) != version
    }
    assert differ == {}, "run `make install` (or `make lock` after changing pyproject.toml)"


def _pip_installs(text: str) -> list[str]:
    joined = text.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if re.search(r"\bpip install\b", line)]


def test_make_installs_only_from_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    stamp = re.search(r"^\$\(STAMP\): (.*)$", makefile, re.MULTILINE)
    assert stamp is not None and "$(LOCK)" in stamp.group(1).split()
    assert re.search(r"^LOCK +:= requirements/dev\.lock$", makefile, re.MULTILINE)
    installs = _pip_installs(makefile)
    assert "$(BIN)/pip install --quiet --require-hashes -r $(LOCK)" in installs
    assert "$(BIN)/pip install --quiet --no-deps -e ." in installs
    unpinned = [c for c in installs if "--require-hashes" not in c and "--no-deps" not in c]
    assert unpinned == ["$(BIN)/pip install --quiet --upgrade pip"]  # the venv's own pip


def test_make_lock_writes_both_locks_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    assert re.search(r"^LOCK_FLAGS := .*--generate-hashes", makefile, re.MULTILINE)
    recipe = makefile.split("\nlock:", 1)[1].split("\n\n", 1)[0]
    assert "-o $(LOCK)" in recipe and "-c $(LOCK)" in recipe
    assert "-o requirements/runtime.lock" in " ".join(recipe.split())


def test_the_dockerfile_installs_only_from_the_runtime_lock() -> None:
    installs = _pip_installs((ROOT / "Dockerfile").read_text())
    assert len(installs) == 2, installs
    locked, wheel = installs
    assert "--require-hashes -r /tmp/runtime.lock" in locked
    assert "--no-deps /tmp/wheels/*.whl" in wheel
    assert "COPY requirements/runtime.lock /tmp/runtime.lock" in (ROOT / "Dockerfile").read_text()
