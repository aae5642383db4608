"""``llmwatch prompts`` against the real broker: push (idempotent), label, split, list, show, diff,
rollback, and bad input that exits 2 with the bad value named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmwatch.cli import app
from llmwatch.prompt_registry import read_registry
from producers.prompts.records import MoveAction
from streams.admin import ensure_topics
from streams.topics import TopicLayout

PROMPTS = Path(__file__).resolve().parents[2] / "llmwatch" / "data" / "prompts"
V7, V8 = PROMPTS / "support-bot.v7.yaml", PROMPTS / "support-bot.v8.yaml"
runner = CliRunner()


@pytest.fixture()
def cli(broker: Any, topic_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    ensure_topics(broker.bootstrap, TopicLayout(prefix=topic_prefix).specs())
    monkeypatch.setenv("LLMWATCH_BOOTSTRAP", broker.bootstrap)
    monkeypatch.setenv("LLMWATCH_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("LLMWATCH_PROMPT_USER", "ana")

    def invoke(*args: str) -> Any:
        result = runner.invoke(app, list(args))
        result.flat = " ".join(result.output.split())  # rich wraps long lines
        return result

    invoke.layout = TopicLayout(prefix=topic_prefix)  # type: ignore[attr-defined]
    invoke.bootstrap = broker.bootstrap  # type: ignore[attr-defined]
    return invoke


def test_push_label_split_and_rollback(cli: Any) -> None:
    first = cli("prompts", "push", str(V7))
    assert first.exit_code == 0, first.output
    assert "pushed support-bot #1" in first.output
    again = cli("prompts", "push", str(V7))
    assert again.exit_code == 0 and "unchanged" in again.output
    assert cli("prompts", "push", str(V8)).exit_code == 0

    moved = cli("prompts", "label", "support-bot", "1", "production", "-m", "current prompt")
    assert moved.exit_code == 0, moved.output
    split = cli("prompts", "label", "support-bot", "#2", "production", "--weight", "10")
    assert split.exit_code == 0, split.flat
    assert "90%" in split.flat and "10% canary" in split.flat

    listed = cli("prompts", "list")
    assert "support-bot" in listed.flat and "10% canary" in listed.flat
    shown = cli("prompts", "show", "support-bot")
    assert shown.exit_code == 0 and "ana" in shown.flat and "split" in shown.flat
    assert "You are a warm, empathetic support companion." in shown.flat  # the newest template
    diff = cli("prompts", "diff", "support-bot", "1", "2")
    assert diff.exit_code == 0
    assert "-model: gpt-4o-mini" in diff.output and "+model: gpt-4o\n" in diff.output
    assert "+You are a warm, empathetic support companion." in diff.output

    back = cli("prompts", "rollback", "support-bot", "-m", "too slow")
    assert back.exit_code == 0, back.output
    state = read_registry(cli.bootstrap, cli.layout.prompts)
    current = state.label("support-bot", "production")
    assert current is not None and current.revision == 3
    assert current.action is MoveAction.ROLLBACK and current.canary is None
    assert (current.moved_by, current.reason) == ("ana", "too slow")
    assert [a.weight for a in current.arms] == [100]
    assert current.arms[0].version == state.resolve("support-bot", "1").version


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("prompts", "label", "support-bot", "9", "production"), "unknown version '9'"),
        (("prompts", "label", "support-bot", "1", "production", "--weight", "0"), "got 0"),
        (("prompts", "label", "nope", "1", "production"), "unknown prompt 'nope'"),
        (("prompts", "rollback", "support-bot"), "has no label 'production'"),
        (("prompts", "diff", "support-bot", "1", "abcdef"), "unknown version 'abcdef'"),
    ],
)
def test_bad_input_exits_2_naming_the_value(cli: Any, args: tuple[str, ...], message: str) -> None:
    assert cli("prompts", "push", str(V7)).exit_code == 0
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert message in result.flat


def test_a_template_holding_a_secret_is_refused(cli: Any, tmp_path: Path) -> None:
    leaky = tmp_path / "leaky.yaml"
    leaky.write_text(
        "name: leaky\ntemplate: 'Use key sk-proj-" + "A1b2C3d4" * 6 + " to call the API'\n"
    )
    result = cli("prompts", "push", str(leaky))
    assert result.exit_code == 2
    assert "API_KEY" in result.flat and "sk-proj" not in result.output


def test_a_prompt_file_with_an_unknown_field_is_refused(cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntemplate: hi\ntemprature: 0.2\n")
    result = cli("prompts", "push", str(bad))
    assert result.exit_code == 2 and "temprature" in result.flat
