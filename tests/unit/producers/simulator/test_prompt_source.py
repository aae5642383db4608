"""A prompt source (the demo's registry) sets support-bot's prompt per user: name, version, variant, and
the regressed version's effects; other services keep their profile's prompt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from producers.events import SpanKind
from producers.simulator import PromptVersionSwitch, ResolvedPrompt, Simulator, demo_scenario


@dataclass
class HalfRegressed:
    """Users whose id ends in an even digit get the slow version."""

    asked: int = 0

    @property
    def weak_versions(self) -> frozenset[str]:
        return frozenset({"bbbbbbbbbbbb"})

    def resolve(self, service: str, user_id: str) -> ResolvedPrompt | None:
        if service != "support-bot":
            return None
        self.asked += 1
        if int(user_id[-1], 16) % 2 == 0:
            return ResolvedPrompt(
                "support-bot", "bbbbbbbbbbbb", "canary", (PromptVersionSwitch("v8"),)
            )
        return ResolvedPrompt("support-bot", "aaaaaaaaaaaa", "production")


def test_the_source_decides_support_bots_prompt_per_user() -> None:
    source = HalfRegressed()
    simulator = Simulator(3, demo_scenario(prompts=source))
    now = datetime.now(UTC)
    events = [e for _ in range(400) for e in simulator.trace_ending_at(now, 0.5)]
    llm = [e for e in events if e.span_kind == SpanKind.LLM]
    bot = [e for e in llm if e.service == "support-bot"]
    assert source.asked > 0 and bot
    assert {(e.prompt_name, e.prompt_version, e.variant) for e in bot} == {
        ("support-bot", "aaaaaaaaaaaa", "production"),
        ("support-bot", "bbbbbbbbbbbb", "canary"),
    }
    others = {e.prompt_version for e in llm if e.service != "support-bot"}
    assert others and not others & {"aaaaaaaaaaaa", "bbbbbbbbbbbb"}

    def median_duration(version: str) -> float:
        durations = sorted(e.duration_ms or 0.0 for e in bot if e.prompt_version == version)
        return durations[len(durations) // 2]

    # The regressed version carries the incident's effect (latency x4).
    assert median_duration("bbbbbbbbbbbb") > 2 * median_duration("aaaaaaaaaaaa")
