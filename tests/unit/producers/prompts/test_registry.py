"""The registry's records and state: content addresses, label moves, rollbacks, and replay safety."""

from __future__ import annotations

import random

import pytest

from producers.prompts.records import (
    LabelArm,
    LabelMove,
    MoveAction,
    PromptVersionRecord,
    decode_registry_record,
    version_id,
)
from producers.prompts.registry import RegistryState

NAME = "support-bot"


def _version(template: str, now_ms: int, **params: float) -> PromptVersionRecord:
    return PromptVersionRecord.create(
        name=NAME, template=template, model="gpt-4o-mini", params=dict(params), created_at_ms=now_ms
    )


@pytest.fixture()
def two_versions(now_ms: int) -> tuple[RegistryState, PromptVersionRecord, PromptVersionRecord]:
    state = RegistryState()
    v1 = _version("You are a helpful support agent. {{ question }}", now_ms, temperature=0.2)
    v2 = _version("You are a concise support agent. {{ question }}", now_ms + 1, temperature=0.2)
    state.apply_all([v1, v2])
    return state, v1, v2


def test_version_id_is_a_content_address(now_ms: int) -> None:
    a = _version("Hello {{ name }}", now_ms, temperature=0.1)
    b = _version("Hello {{ name }}", now_ms + 5_000, temperature=0.1)
    c = _version("Hello {{ name }}", now_ms, temperature=0.2)
    assert a.version == b.version == version_id(NAME, "Hello {{ name }}", "gpt-4o-mini", a.params)
    assert c.version != a.version
    assert len(a.version) == 12


def test_a_forged_version_id_is_rejected(now_ms: int) -> None:
    good = _version("Hello", now_ms).model_dump()
    good["version"] = "0123456789ab"
    with pytest.raises(ValueError, match="'0123456789ab' is not the content address"):
        PromptVersionRecord.model_validate(good)


def test_a_split_gives_the_canary_its_weight_and_keeps_the_baseline(two_versions, now_ms) -> None:
    state, v1, v2 = two_versions
    state.apply(
        state.plan_label(NAME, "1", "production", moved_by="ana", reason="ga", now_ms=now_ms)
    )
    move = state.plan_label(
        NAME,
        v2.version[:6],
        "production",
        weight=10,
        moved_by="ana",
        reason="try v2",
        now_ms=now_ms,
    )
    assert move.action is MoveAction.SPLIT
    assert {(a.version, a.weight) for a in move.arms} == {(v1.version, 90), (v2.version, 10)}
    assert move.canary == v2.version and move.baseline == v1.version
    assert move.revision == 2
    assert move.previous == (LabelArm(version=v1.version, weight=100),)
    assert (move.moved_by, move.reason, move.moved_at_ms) == ("ana", "try v2", now_ms)


@pytest.mark.parametrize(
    ("ref", "weight", "message"),
    [
        ("9", 100, "unknown version '9' of prompt 'support-bot': it has 2"),
        ("ffff", 100, "unknown version 'ffff' of prompt 'support-bot'; known: "),
        ("2", 0, "weight must be between 1 and 100 percent, got 0"),
        ("2", 101, "weight must be between 1 and 100 percent, got 101"),
    ],
)
def test_bad_moves_name_the_bad_value(two_versions, now_ms, ref, weight, message) -> None:
    state, _v1, _v2 = two_versions
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        state.plan_label(
            NAME, ref, "production", weight=weight, moved_by="", reason="", now_ms=now_ms
        )


def test_unknown_prompt_names_the_known_ones(two_versions, now_ms) -> None:
    state, _v1, _v2 = two_versions
    with pytest.raises(ValueError, match="unknown prompt 'support-bott'; known: support-bot"):
        state.plan_label("support-bott", "1", "production", moved_by="", reason="", now_ms=now_ms)


def test_a_split_of_an_unset_label_is_refused(two_versions, now_ms) -> None:
    state, _v1, _v2 = two_versions
    with pytest.raises(ValueError, match="has no other version to take the other 90%"):
        state.plan_label(NAME, "2", "production", weight=10, moved_by="", reason="", now_ms=now_ms)


def test_weights_that_do_not_sum_to_100_are_rejected_on_decode(two_versions, now_ms) -> None:
    state, v1, v2 = two_versions
    body = state.plan_label(NAME, "1", "production", moved_by="", reason="", now_ms=now_ms)
    raw = body.model_dump(mode="json")
    raw["arms"] = [{"version": v1.version, "weight": 80}, {"version": v2.version, "weight": 10}]
    import orjson

    with pytest.raises(ValueError, match=r"arms weights must sum to 100, got 90"):
        decode_registry_record(orjson.dumps(raw))


def test_rollback_restores_the_state_before_the_last_move(two_versions, now_ms) -> None:
    state, v1, _v2 = two_versions
    state.apply(state.plan_label(NAME, "1", "production", moved_by="a", reason="", now_ms=now_ms))
    split = state.plan_label(
        NAME, "2", "production", weight=10, moved_by="a", reason="", now_ms=now_ms
    )
    state.apply(split)
    back = state.plan_rollback(
        NAME, "production", moved_by="llmwatch-canary", reason="failed", now_ms=now_ms,
        automatic=True, expected_revision=split.revision,
    )  # fmt: skip
    assert back.action is MoveAction.AUTO_ROLLBACK
    assert back.arms == (LabelArm(version=v1.version, weight=100),)
    assert back.canary is None and back.revision == 3
    state.apply(back)
    # The canary's rollback is conditional: it never touches a label that moved since.
    with pytest.raises(ValueError, match="is at revision 3, not 2: it moved since"):
        state.plan_rollback(
            NAME, "production", moved_by="", reason="", now_ms=now_ms, expected_revision=2
        )


def test_rollback_of_a_first_move_is_refused(two_versions, now_ms) -> None:
    state, _v1, _v2 = two_versions
    state.apply(state.plan_label(NAME, "1", "production", moved_by="", reason="", now_ms=now_ms))
    with pytest.raises(ValueError, match="has nothing to roll back to"):
        state.plan_rollback(NAME, "production", moved_by="", reason="", now_ms=now_ms)


def _history(state: RegistryState, now_ms: int) -> list[PromptVersionRecord | LabelMove]:
    records: list[PromptVersionRecord | LabelMove] = list(state.history(NAME))
    for step, (ref, weight) in enumerate([("1", 100), ("2", 10), ("2", 50), ("1", 100)]):
        move = state.plan_label(
            NAME, ref, "production", weight=weight, moved_by="a", reason=f"s{step}", now_ms=now_ms
        )
        state.apply(move)
        records.append(move)
    return records


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replays_and_reorderings_fold_to_the_same_state(two_versions, now_ms, seed) -> None:
    state, _v1, _v2 = two_versions
    records = _history(state, now_ms)
    shuffled = records * 2
    random.Random(seed).shuffle(shuffled)
    replayed = RegistryState()
    replayed.apply_all(shuffled)
    assert replayed.labels == state.labels
    assert replayed.versions == state.versions
    assert replayed.label(NAME, "production").revision == 4  # type: ignore[union-attr]


def test_every_move_has_its_own_key_so_compaction_keeps_the_audit_trail(two_versions, now_ms):
    state, _v1, _v2 = two_versions
    records = _history(state, now_ms)
    moves = [r for r in records if isinstance(r, LabelMove)]
    assert len({m.key() for m in moves}) == len(moves) == 4
    assert all(decode_registry_record(m.to_json()) == m for m in moves)
