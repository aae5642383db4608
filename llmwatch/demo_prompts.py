"""The demo's prompt canary: support-bot v7 in production, v8 given 10% as a canary, and the canary
analysis failing v8 on latency and cost and rolling it back while the traffic runs.

- :func:`seed_registry` pushes the two versions (``llmwatch/data/prompts``) and moves the label twice,
  exactly as ``llmwatch prompts push`` / ``prompts label`` do.
- :class:`RegistryPrompts` is the simulator's prompt source: support-bot's version per user comes from
  ``watch.prompts.get`` (sticky by user id), and v8's calls are slower and wordier (the scripted
  incident's effect), so what the canary analysis sees is produced by the real SDK split.
- :func:`read_canary` reads the verdicts and label moves back from ClickHouse for the summary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from llmwatch.processes import ChildProcess
from llmwatch.prompt_registry import append, load_prompt_file, read_registry
from llmwatch.settings import Settings
from producers.prompts.records import DEFAULT_LABEL
from producers.simulator import INCIDENT_NEW_VERSION, PromptVersionSwitch, ResolvedPrompt
from streams.storage import CANARY_VERDICTS_TABLE, PROMPT_LABELS_TABLE

__all__ = [
    "CANARY_WEIGHT",
    "DEMO_PROMPT",
    "CanaryRow",
    "CanarySummary",
    "RegistryPrompts",
    "read_canary",
    "seed_registry",
    "start_canary",
    "wait_for_canary",
]

PROMPTS_DIR: Final = Path(__file__).parent / "data" / "prompts"
DEMO_POLICY_FILE: Final = Path(__file__).parent / "data" / "canary.demo.yaml"
DEMO_PROMPT: Final = "support-bot"
DEMO_SERVICE: Final = "support-bot"
CANARY_WEIGHT: Final = 10
# What v8 does to support-bot's calls: it targets gpt-4o instead of the service's small models, its
# longer template ("think step by step ... explain our policies in full") adds prompt tokens, and its
# answers are the scripted incident's: slower and wordier.
V8_EFFECT: Final = PromptVersionSwitch(INCIDENT_NEW_VERSION, input_tokens_factor=1.6)
DEMO_USER: Final = "demo"


def seed_registry(settings: Settings) -> tuple[str, str]:
    """Push v7 and v8, put v7 in production and give v8 a 10% canary; return their version ids."""
    now = int(time.time() * 1000)
    topic = settings.layout.prompts
    records = [
        load_prompt_file(
            PROMPTS_DIR / f"{DEMO_PROMPT}.{tag}.yaml", created_by=DEMO_USER, now_ms=now + i
        )
        for i, tag in enumerate(("v7", "v8"))
    ]
    for record in records:
        append(settings.bootstrap, topic, record)
    state = read_registry(settings.bootstrap, topic)
    v7, v8 = (record.version for record in records)
    for ref, weight, reason in (
        (v7, 100, "demo: the current prompt"),
        (v8, CANARY_WEIGHT, "demo: canary the friendlier rewrite"),
    ):
        move = state.plan_label(
            DEMO_PROMPT, ref, DEFAULT_LABEL, weight=weight, moved_by=DEMO_USER, reason=reason,
            now_ms=int(time.time() * 1000),
        )  # fmt: skip
        append(settings.bootstrap, topic, move)
        state.apply(move)
    return v7, v8


@dataclass(slots=True)
class RegistryPrompts:
    """support-bot's prompt per user from the SDK's prompt client; v8 behaves like the incident."""

    client: Any  # producers.prompts.client.PromptClient
    regressed: str
    served: dict[str, int] = field(default_factory=dict)
    last_served_ms: dict[str, int] = field(default_factory=dict)

    @property
    def weak_versions(self) -> frozenset[str]:
        return frozenset({self.regressed})

    def resolve(self, service: str, user_id: str) -> ResolvedPrompt | None:
        if service != DEMO_SERVICE:
            return None
        handle = self.client.get(DEMO_PROMPT, label=DEFAULT_LABEL, key=user_id)
        if handle is None or not handle.version:
            return None
        self.served[handle.version] = self.served.get(handle.version, 0) + 1
        self.last_served_ms[handle.version] = int(time.time() * 1000)
        if handle.version != self.regressed:
            return ResolvedPrompt(DEMO_PROMPT, handle.version, handle.variant)
        return ResolvedPrompt(
            DEMO_PROMPT, handle.version, handle.variant, (V8_EFFECT,), model=handle.model or None
        )


def start_canary(settings: Settings, policy_file: Path = DEMO_POLICY_FILE) -> ChildProcess:
    env = {
        "LLMWATCH_BOOTSTRAP": settings.bootstrap,
        "LLMWATCH_DATA_DIR": str(settings.data_dir),
        "LLMWATCH_CANARY_POLICY_FILE": str(policy_file),
    }
    return ChildProcess("canary", ["canary"], env, settings.log_dir / "canary.log").start()


@dataclass(frozen=True, slots=True)
class CanaryRow:
    look: int
    canary_calls: int
    baseline_calls: int
    verdict: str
    score: float
    failed_metrics: tuple[str, ...]
    action: str


@dataclass(slots=True)
class CanarySummary:
    v7: str = ""
    v8: str = ""
    looks: list[CanaryRow] = field(default_factory=list)
    moves: list[tuple[int, str, str, str]] = field(
        default_factory=list
    )  # revision, action, by, reason
    served: dict[str, int] = field(default_factory=dict)
    last_served_ms: dict[str, int] = field(default_factory=dict)
    rolled_back_ms: int | None = None

    @property
    def rolled_back(self) -> bool:
        return any(action == "auto_rollback" for _rev, action, _by, _reason in self.moves)


def read_canary(client: Any, database: str, summary: CanarySummary) -> None:
    verdicts = client.query(
        "SELECT look, canary_calls, baseline_calls, verdict, score, failed_metrics, action "
        f"FROM {database}.{CANARY_VERDICTS_TABLE} FINAL WHERE name = %(name)s ORDER BY revision, look",
        parameters={"name": DEMO_PROMPT},
    ).result_rows
    summary.looks = [
        CanaryRow(int(r[0]), int(r[1]), int(r[2]), str(r[3]), float(r[4]), tuple(r[5]), str(r[6]))
        for r in verdicts
    ]
    moves = client.query(
        "SELECT revision, action, moved_by, reason, toUnixTimestamp64Milli(moved_at) "
        f"FROM {database}.{PROMPT_LABELS_TABLE} FINAL "
        "WHERE name = %(name)s AND label = %(label)s ORDER BY revision",
        parameters={"name": DEMO_PROMPT, "label": DEFAULT_LABEL},
    ).result_rows
    summary.moves = [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in moves]
    summary.rolled_back_ms = next((int(r[4]) for r in moves if r[1] == "auto_rollback"), None)


def wait_for_canary(sink: Any, timeout_s: float) -> bool:
    """True once the sink stored a canary verdict (the analysis judged the canary's first look)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sink.stats().written(CANARY_VERDICTS_TABLE) > 0:
            return True
        time.sleep(0.25)
    return False
