"""Every table the dashboards and alert rules query is one the pipeline names in streams/storage.py.

The SQL text of panels is Grafana's, so it spells table names out; this test keeps that spelling tied
to the one module that names the tables: a rename there fails here instead of leaving a panel empty.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import pytest

from streams import storage

GENERATED: Final = Path(__file__).resolve().parents[3] / "dashboards"
FILES: Final = sorted(
    [*GENERATED.glob("generated/*.json"), *GENERATED.glob("provisioning/alerting/*rules*.yaml")]
)
KNOWN: Final = {
    value for name, value in vars(storage).items() if name.endswith(("_TABLE", "_VIEW"))
}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_queried_tables_are_named_by_the_storage_module(path: Path) -> None:
    text = path.read_text()
    queried = set(re.findall(rf"\b{storage.DEFAULT_DATABASE}\.(llm_\w+)", text))
    assert queried, f"{path.name} queries no llmwatch table: the pattern is wrong"
    assert queried <= KNOWN, (
        f"{path.name} queries tables not in streams/storage.py: {queried - KNOWN}"
    )


def test_every_provisioned_file_was_found() -> None:
    assert len(FILES) >= 5  # four dashboards and the alert rules
