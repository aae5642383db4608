"""Weighted arm choice: sticky across processes, proportional, and a canary moves only its own share."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from producers.prompts.records import LabelArm, LabelMove, MoveAction, PromptVersionRecord
from producers.prompts.registry import RegistryState
from producers.prompts.split import BUCKETS, bucket_of, choose_arm, ordered_arms

NAME = "support-bot"
LABEL = "production"
KEYS = [f"user-{i}" for i in range(20_000)]
REPO = Path(__file__).resolve().parents[4]


def _sigma4(n: int, p: float) -> float:
    return 4 * math.sqrt(n * p * (1 - p))


@pytest.fixture()
def registry(now_ms: int) -> tuple[RegistryState, str, str]:
    """A prompt with versions #1 and #2, production on #1."""
    state = RegistryState()
    for i, text in enumerate(("Answer: {{ q }}", "Answer briefly: {{ q }}")):
        state.apply(PromptVersionRecord.create(name=NAME, template=text, created_at_ms=now_ms + i))
    v1, v2 = (record.version for record in state.history(NAME))
    state.apply(_plan(state, "1", 100, now_ms))
    return state, v1, v2


def _plan(state: RegistryState, ref: str, weight: int, now_ms: int) -> LabelMove:
    return state.plan_label(
        NAME, ref, LABEL, weight=weight, moved_by="test", reason="", now_ms=now_ms
    )


def _move(arms: list[tuple[str, int]], canary: str | None, now_ms: int) -> LabelMove:
    return LabelMove(
        name=NAME,
        label=LABEL,
        revision=1,
        arms=tuple(LabelArm(version=v, weight=w) for v, w in arms),
        canary=canary,
        action=MoveAction.SPLIT if len(arms) > 1 else MoveAction.SET,
        moved_at_ms=now_ms,
    )


def _assign(move: LabelMove, keys: list[str]) -> list[str]:
    return [choose_arm(move, key).version for key in keys]


def test_same_key_same_arm_in_another_process(now_ms: int) -> None:
    move = _move([("a" * 12, 50), ("b" * 12, 30), ("c" * 12, 20)], "c" * 12, now_ms)
    keys = KEYS[:500]
    code = (
        "import sys, orjson\n"
        "from producers.prompts.records import LabelMove\n"
        "from producers.prompts.split import choose_arm\n"
        "move = LabelMove.model_validate_json(sys.argv[1])\n"
        "keys = orjson.loads(sys.stdin.buffer.read())\n"
        "sys.stdout.buffer.write(orjson.dumps([choose_arm(move, k).version for k in keys]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # a different str hash than this process's
    done = subprocess.run(
        [sys.executable, "-c", code, move.to_json().decode()],
        input=orjson.dumps(keys),
        capture_output=True,
        cwd=REPO,
        env=env,
        timeout=30,
        check=True,
    )
    assert orjson.loads(done.stdout) == _assign(move, keys)
    assert _assign(move, keys) == _assign(move, keys)  # and in this one, every time


def test_bucket_is_pinned() -> None:
    """Changing the hash would reshuffle every user between arms on upgrade: it must not change."""
    assert bucket_of(NAME, LABEL, "user-1") == bucket_of(NAME, LABEL, "user-1")
    assert [bucket_of(NAME, LABEL, k) for k in ("user-1", "user-2", "")] == [1309, 4132, 919]


@pytest.mark.parametrize("weights", [(90, 10), (50, 50), (10, 90)])
def test_shares_match_the_weights(weights: tuple[int, int], now_ms: int) -> None:
    move = _move([("a" * 12, weights[0]), ("b" * 12, weights[1])], "b" * 12, now_ms)
    counts = Counter(_assign(move, KEYS))
    n = len(KEYS)
    for version, weight in (("a" * 12, weights[0]), ("b" * 12, weights[1])):
        p = weight / 100
        assert abs(counts[version] - n * p) <= _sigma4(n, p), (version, counts)


def test_no_key_splits_at_random_in_proportion(now_ms: int) -> None:
    move = _move([("a" * 12, 90), ("b" * 12, 10)], "b" * 12, now_ms)
    counts = Counter(choose_arm(move, None).version for _ in range(20_000))
    assert abs(counts["b" * 12] - 2_000) <= _sigma4(20_000, 0.1)


def test_single_arm_needs_no_key(now_ms: int) -> None:
    move = _move([("a" * 12, 100)], None, now_ms)
    assert {choose_arm(move, k).version for k in [*KEYS[:100], None]} == {"a" * 12}


@pytest.mark.parametrize("canary", ["0" * 12, "f" * 12], ids=["canary-sorts-first", "sorts-last"])
def test_canary_owns_the_top_of_the_range(canary: str, now_ms: int) -> None:
    move = _move([("8" * 12, 90), (canary, 10)], canary, now_ms)
    assert [arm.version for arm in ordered_arms(move)] == ["8" * 12, canary]
    top = [k for k in KEYS if bucket_of(NAME, LABEL, k) >= BUCKETS * 9 // 10]
    assert set(_assign(move, top)) == {canary}


def test_adding_a_canary_moves_only_its_share(registry: tuple[RegistryState, str, str]) -> None:
    state, v1, v2 = registry
    before = _assign(state.labels[(NAME, LABEL)], KEYS)
    split = _plan(state, "2", 10, 0)
    after = _assign(split, KEYS)
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert set(before) == {v1}
    assert {a for _, a in moved} == {v2}  # nobody moved anywhere but to the canary
    assert abs(len(moved) - 2_000) <= _sigma4(len(KEYS), 0.1)


def test_ramping_the_canary_keeps_its_users(registry: tuple[RegistryState, str, str]) -> None:
    state, _v1, v2 = registry
    at_10 = _plan(state, "2", 10, 0)
    state.apply(at_10)
    at_50 = _plan(state, "2", 50, 0)
    first = {k for k, v in zip(KEYS, _assign(at_10, KEYS), strict=True) if v == v2}
    second = {k for k, v in zip(KEYS, _assign(at_50, KEYS), strict=True) if v == v2}
    assert first < second
    assert abs(len(second) - 10_000) <= _sigma4(len(KEYS), 0.5)


def test_rollback_returns_everyone(registry: tuple[RegistryState, str, str]) -> None:
    state, v1, _v2 = registry
    state.apply(_plan(state, "2", 10, 0))
    rollback = state.plan_rollback(NAME, LABEL, moved_by="test", reason="", now_ms=0)
    assert set(_assign(rollback, KEYS)) == {v1}
