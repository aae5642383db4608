"""The README's integration section works when pasted as is: its first code block, run with only the
broker address replaced and the providers' base URLs pointed at local fakes (as an app's environment
would), instruments real clients whose calls then arrive on the events topic."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from producers.events import LlmCallEvent
from streams.topics import TopicLayout
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI, Reply, chat_completion
from tests.integration.test_otlp_receiver import _read_events

README = Path(__file__).resolve().parents[2] / "README.md"


def _integration_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Instrument an app", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's integration section has no python block"
    return match.group(1)


def test_the_readme_block_instruments_both_clients(
    broker: Any, layout: TopicLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _integration_block()
    assert "watch.instrument(openai.OpenAI())" in code and "anthropic.Anthropic()" in code
    code = code.replace('"kafka:9092"', repr(broker.bootstrap)).replace(
        '"llmwatch.events"', repr(layout.events)
    )
    with FakeOpenAI() as fake_openai, FakeAnthropic() as fake_anthropic:
        fake_openai.set_default("/v1/chat/completions", Reply(body=chat_completion()))
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")
        monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-not-a-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.base_url)
        scope: dict[str, Any] = {}
        exec(compile(code, str(README), "exec"), scope)  # the README's code, as pasted
        watch, client, claude = scope["watch"], scope["client"], scope["claude"]
        try:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
            claude.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=64,
                messages=[{"role": "user", "content": "hi"}],
            )
            assert watch.flush(30)
        finally:
            watch.close()
    events = [
        LlmCallEvent.model_validate(e)
        for e in _read_events(broker.bootstrap, layout.events, layout.partitions, 2)
    ]
    assert sorted(e.provider_name or "" for e in events) == ["anthropic", "openai_compatible"]
