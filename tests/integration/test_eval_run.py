"""``llmwatch eval run`` end to end: a golden set against a fake OpenAI-compatible target on 127.0.0.1
(the only stand-in), runs stored in chdb, a paired comparison gating a regression with exit code 1,
JUnit XML, rubric metrics through the judge, and exit code 2 for usage and target errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import clickhouse_connect
import pytest
from typer.testing import CliRunner

from llmwatch.cli import app
from llmwatch.demo_quality import DEMO_GOLDEN
from producers.simulator.fake_openai import FakeOpenAI
from producers.simulator.fake_quality import judge_responder, target_responder
from streams.evaluation.golden import load_dataset

SEEDS: Final = "3"


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    references = {
        c.messages[-1]["content"]: c.reference or "" for c in load_dataset(DEMO_GOLDEN).cases
    }
    with FakeOpenAI() as server:
        server.set_responder("/v1/chat/completions", target_responder(references))
        yield server.base_url


@pytest.fixture(scope="module")
def judge() -> Iterator[str]:
    with FakeOpenAI() as server:
        server.set_responder("/v1/chat/completions", judge_responder("mistral-small-latest"))
        yield server.base_url


@pytest.fixture(scope="module")
def dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('eval') / 'clickhouse'}"


def _run(dsn: str, target: str, model: str, *extra: str, env: dict[str, str] | None = None) -> Any:
    args = [
        "eval",
        "run",
        "--dataset",
        str(DEMO_GOLDEN),
        "--target-url",
        target,
        "--model",
        model,
        "--seeds",
        SEEDS,
        "--dsn",
        dsn,
        *extra,
    ]
    return CliRunner().invoke(app, args, env={"COLUMNS": "160", **(env or {})})


def test_a_regression_against_the_baseline_exits_1_and_fails_junit(
    dsn: str, target: str, tmp_path: Path
) -> None:
    metrics = ("--metric", "exact", "--metric", "chrf")
    base = _run(dsn, target, "support-bot-v7", *metrics, "--run-id", "v7")
    assert base.exit_code == 0, base.output
    assert "run v7: 24 cases x 3 seeds, 144 scores stored" in base.output
    junit = tmp_path / "v8.xml"
    worse = _run(
        dsn,
        target,
        "support-bot-v8",
        *metrics,
        "--run-id",
        "v8",
        "--baseline",
        "v7",
        "--junit",
        str(junit),
    )
    assert worse.exit_code == 1, worse.output
    assert "REGRESSION" in worse.output and "significant regression against v7" in worse.output
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "2"
    same = _run(dsn, target, "support-bot-v7", *metrics, "--run-id", "v7b", "--baseline", "v7")
    assert same.exit_code == 0, same.output  # the same system again: no regression
    client = clickhouse_connect.get_client(dsn=dsn)
    try:
        runs = client.query(
            "SELECT run_id, exit_code, cases, seeds FROM llmwatch.llm_eval_runs FINAL ORDER BY run_id"
        ).result_rows
        results = client.query(
            "SELECT count(), uniqExact(case_id), countIf(output_text = '') "
            "FROM llmwatch.llm_eval_results FINAL WHERE run_id = 'v8'"
        ).result_rows[0]
    finally:
        client.close()
    assert runs == [("v7", 0, 24, [0, 1, 2]), ("v7b", 0, 24, [0, 1, 2]), ("v8", 1, 24, [0, 1, 2])]
    assert results == (144, 24, 0)


def test_rubrics_are_scored_by_the_judge(dsn: str, target: str, judge: str) -> None:
    result = _run(
        dsn,
        target,
        "support-bot-v8",
        "--metric",
        "relevance",
        "--run-id",
        "judged",
        env={"LLMWATCH_JUDGE_BASE_URL": judge, "LLMWATCH_JUDGE_MODEL": "mistral-small-latest"},
    )
    assert result.exit_code == 0, result.output
    client = clickhouse_connect.get_client(dsn=dsn)
    try:
        low, high, n = client.query(
            "SELECT min(value), max(value), count() FROM llmwatch.llm_eval_results FINAL "
            "WHERE run_id = 'judged' AND metric = 'relevance'"
        ).result_rows[0]
    finally:
        client.close()
    assert (n, low, high) == (72, 0.0, 1.0)  # evasive answers score 1 of 5, good ones 5 of 5


@pytest.mark.parametrize(
    ("model", "extra", "expected"),
    [
        ("support-bot-v7", ("--metric", "blue"), "unknown metric 'blue'"),
        ("support-bot-v7", ("--metric", "exact", "--baseline", "nope"), "baseline run 'nope'"),
        ("support-bot-v9", ("--metric", "exact"), "model 'support-bot-v9' does not exist"),
    ],
)
def test_usage_and_target_errors_exit_2_naming_the_value(
    dsn: str, target: str, model: str, extra: tuple[str, ...], expected: str
) -> None:
    result = _run(dsn, target, model, *extra)
    assert result.exit_code == 2, result.output
    assert expected in result.output


def test_a_bad_dataset_exits_2_naming_the_line(dsn: str, target: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "input": "x", "reference": "y"}\n{"id": "a", "input": "z"}\n')
    result = CliRunner().invoke(
        app,
        ["eval", "run", "--dataset", str(bad), "--target-url", target, "--model", "m",
         "--metric", "exact", "--dsn", dsn],
        env={"COLUMNS": "160"},
    )  # fmt: skip
    assert result.exit_code == 2
    assert "bad.jsonl:2: duplicate id 'a'" in result.output


def test_pairwise_preference_judges_both_orders_against_the_baseline(
    dsn: str, target: str, judge: str
) -> None:
    judged = {"LLMWATCH_JUDGE_BASE_URL": judge, "LLMWATCH_JUDGE_MODEL": "mistral-small-latest"}
    base = _run(dsn, target, "support-bot-v7", "--metric", "exact", "--run-id", "pw-base")
    assert base.exit_code == 0, base.output
    pairwise = ("--metric", "pairwise_preference", "--baseline", "pw-base")
    missing = _run(dsn, target, "support-bot-v8", "--metric", "pairwise_preference", env=judged)
    assert missing.exit_code == 2 and "give --baseline" in missing.output
    worse = _run(dsn, target, "support-bot-v8", *pairwise, "--run-id", "pw-v8", env=judged)
    assert worse.exit_code == 1, worse.output
    assert "pairwise_preference" in worse.output and "REGRESSION" in worse.output
    same = _run(dsn, target, "support-bot-v7", *pairwise, "--run-id", "pw-v7", env=judged)
    assert same.exit_code == 0, same.output
    client = clickhouse_connect.get_client(dsn=dsn)
    try:
        wins = dict(
            client.query(
                "SELECT run_id, avg(value) FROM llmwatch.llm_eval_results FINAL "
                "WHERE metric = 'pairwise_preference' GROUP BY run_id"
            ).result_rows
        )
    finally:
        client.close()
    assert wins["pw-v8"] < 0.5 and wins["pw-v7"] == pytest.approx(0.5, abs=0.1)
