"""The guardrails file: the example loads, and a bad file is refused with its name and the bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.text.content_policy import load_content_policy
from streams.text.detectors import load_guardrails_file

EXAMPLE = Path(__file__).resolve().parents[4] / "config" / "guardrails.example.yaml"


def test_the_example_file_loads_into_a_content_policy() -> None:
    policy = load_content_policy(load_guardrails_file(EXAMPLE)["content"])
    assert {t.name for t in policy.topics} == {"medical_diagnosis", "legal_advice", "politics"}
    assert "github.com" in policy.allowed_domains


def test_no_file_means_no_settings() -> None:
    assert load_guardrails_file(None) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list\n", "expected a mapping, got list"),
        ("version: 1\ncontnet: {}\n", "unknown sections \\['contnet'\\]"),
        ("version: 2\n", "version must be 1, got 2"),
        ("content: [unclosed\n", "cannot read guardrails file"),
    ],
    ids=["list", "typo", "version", "yaml-error"],
)
def test_a_bad_file_names_itself_and_the_value(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "guardrails.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as caught:
        load_guardrails_file(path)
    assert str(path) in str(caught.value)
