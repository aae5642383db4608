"""Golden datasets (errors name the file, line and value) and the JUnit XML of a run."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from streams.evaluation.compare import compare_runs
from streams.evaluation.golden import DatasetError, load_dataset
from streams.evaluation.junit import junit_xml

BUNDLED = Path(__file__).resolve().parents[4] / "llmwatch" / "data" / "golden_support.jsonl"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "golden.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_bundled_golden_set_loads() -> None:
    dataset = load_dataset(BUNDLED)
    assert len(dataset.cases) == 24
    assert dataset.has_references
    assert len({c.case_id for c in dataset.cases}) == 24
    assert len(dataset.sha256) == 64


def test_inputs_are_strings_or_chat_messages(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '{"id": 1, "input": "hi"}\n\n# a comment\n'
        '{"id": "b", "input": [{"role": "system", "content": "be brief"},'
        ' {"role": "user", "content": "hi"}], "reference": "hello"}\n',
    )
    first, second = load_dataset(path).cases
    assert (first.case_id, first.messages, first.reference) == (
        "1",
        ({"role": "user", "content": "hi"},),
        None,
    )
    assert second.input_text == "system: be brief\nuser: hi"
    assert not load_dataset(path).has_references


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"id": "a", "input": "x"}\nnot json\n', ":2: not JSON"),
        ('{"input": "x"}\n', "'id' must be a non-empty string or integer, got None"),
        ('{"id": "a"}\n', "case 'a' has no 'input'"),
        ('{"id": "a", "input": ""}\n', "'input' is empty"),
        ('{"id": "a", "input": [{"role": "robot", "content": "x"}]}\n', "got 'robot'"),
        ('{"id": "a", "input": "x", "reference": 3}\n', "'reference' must be a string, got int"),
        ('{"id": "a", "input": "x"}\n{"id": "a", "input": "y"}\n', "duplicate id 'a'"),
        ("# only a comment\n", "no cases"),
    ],
)
def test_bad_datasets_are_refused_naming_the_line_and_value(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read dataset"):
        load_dataset(tmp_path / "nope.jsonl")


def test_junit_marks_a_regression_as_a_failure() -> None:
    base = {f"c{i}": [1.0, 1.0, 1.0] for i in range(30)}
    worse = {f"c{i}": [0.0, 0.0, 1.0] if i < 20 else [1.0, 1.0, 1.0] for i in range(30)}
    comparisons = compare_runs({"exact": (base, worse), "chrf": (base, base)})
    document = junit_xml("run-2", comparisons, {}, baseline_run_id="run-1", seconds=1.5)
    root = ET.fromstring(document)
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["exact"]
    failure = failed[0].find("failure")
    assert failure is not None and "run-1" in (failure.get("message") or "")


def test_junit_without_a_baseline_lists_the_means() -> None:
    document = junit_xml("run-1", [], {"bleu": 0.42}, baseline_run_id=None, seconds=0.1)
    suite = ET.fromstring(document).find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert "mean 0.4200" in document.decode()
