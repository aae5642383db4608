"""The embedded demo's files resolve from the installed package, whatever the current folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmwatch.embedded import DEMO_SLO_FILE
from streams.slo.config import load_slo_file


def test_the_demo_slo_file_loads_from_another_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = DEMO_SLO_FILE.resolve()  # what run_demo hands the worker

    slos = load_slo_file(path)

    assert path.is_file() and not path.is_relative_to(tmp_path)
    names = {slo.name for slo in slos.slos}
    assert {"search-rag-availability", "code-agent-cost"} <= names


def test_the_demo_slo_file_is_not_a_user_file_in_config() -> None:
    # config/ holds the files a user edits; the demo's sizing ships inside the llmwatch package.
    import llmwatch

    assert DEMO_SLO_FILE.is_relative_to(Path(llmwatch.__file__).parent)
