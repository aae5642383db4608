"""The registry's state, folded from its records, and the label moves it allows.

:class:`RegistryState` applies :mod:`producers.prompts.records` in topic order. Applying is idempotent
and order-tolerant: a version record is kept once per id; a label keeps the move with the highest
revision (ties: the one applied last, which on a single-partition topic is the later record). So a
replay, or a compacted topic read from the start, folds to the same state as the live stream.

Moves are planned against a state (:meth:`RegistryState.plan_label`, :meth:`plan_rollback`): the
new move's revision is the current one + 1, and a bad request raises ``ValueError`` naming the value
(an unknown prompt or version, a weight outside 1..100, a rollback with nothing to roll back to).
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from producers.prompts.records import (
    TOTAL_WEIGHT,
    LabelArm,
    LabelMove,
    MoveAction,
    PromptVersionRecord,
    RegistryRecord,
)

__all__ = ["MIN_VERSION_PREFIX", "RegistryState"]

# A version may be named by a unique prefix of its id, at least this long (git's short-hash rule).
MIN_VERSION_PREFIX: Final = 4


@dataclass(slots=True)
class RegistryState:
    """Prompt versions and current labels; not thread-safe (callers hold their own lock)."""

    versions: dict[str, dict[str, PromptVersionRecord]] = field(default_factory=dict)
    labels: dict[tuple[str, str], LabelMove] = field(default_factory=dict)
    applied: int = 0

    def apply(self, record: RegistryRecord) -> bool:
        """Fold one record in; True if it changed the state."""
        self.applied += 1
        if isinstance(record, PromptVersionRecord):
            known = self.versions.setdefault(record.name, {})
            if record.version in known:
                return False
            known[record.version] = record
            return True
        key = (record.name, record.label)
        current = self.labels.get(key)
        if current is not None and (current.revision > record.revision or current == record):
            return False
        self.labels[key] = record
        return True

    def apply_all(self, records: Iterable[RegistryRecord]) -> None:
        for record in records:
            self.apply(record)

    # -- queries ------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(set(self.versions) | {name for name, _ in self.labels})

    def history(self, name: str) -> list[PromptVersionRecord]:
        """A prompt's versions, oldest first."""
        return sorted(
            self.versions.get(name, {}).values(), key=lambda r: (r.created_at_ms, r.version)
        )

    def number(self, name: str, version: str) -> int:
        """A version's position in its prompt's history (1 = first pushed), 0 if unknown."""
        for index, record in enumerate(self.history(name), start=1):
            if record.version == version:
                return index
        return 0

    def labels_of(self, name: str) -> dict[str, LabelMove]:
        return {
            label: move for (prompt, label), move in sorted(self.labels.items()) if prompt == name
        }

    def label(self, name: str, label: str) -> LabelMove | None:
        return self.labels.get((name, label))

    def version(self, name: str, version: str) -> PromptVersionRecord | None:
        return self.versions.get(name, {}).get(version)

    def resolve(self, name: str, ref: str) -> PromptVersionRecord:
        """A version named by its id, a unique id prefix, or its number (``3`` or ``#3``)."""
        history = self.history(name)
        if not history:
            raise ValueError(f"unknown prompt {name!r}; known: {', '.join(self.names()) or 'none'}")
        number = ref.removeprefix("#")
        if number.isdigit() and len(number) < MIN_VERSION_PREFIX:
            index = int(number)
            if 1 <= index <= len(history):
                return history[index - 1]
            raise ValueError(f"unknown version {ref!r} of prompt {name!r}: it has {len(history)}")
        if len(ref) >= MIN_VERSION_PREFIX:
            matches = [record for record in history if record.version.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise ValueError(
                    f"version {ref!r} of prompt {name!r} is ambiguous: {len(matches)} match"
                )
        known = ", ".join(record.version for record in history)
        raise ValueError(f"unknown version {ref!r} of prompt {name!r}; known: {known}")

    # -- moves --------------------------------------------------------------------------------

    def plan_label(
        self,
        name: str,
        ref: str,
        label: str,
        *,
        weight: int = TOTAL_WEIGHT,
        moved_by: str,
        reason: str,
        now_ms: int,
    ) -> LabelMove:
        """Point ``label`` at a version, or with ``weight`` < 100 give it that share of the label.

        A split keeps the label's current versions, scaled to the remaining share, and makes the new
        version the canary (the arm under test); the heaviest other arm is its baseline.
        """
        target = self.resolve(name, ref)
        if isinstance(weight, bool) or not 1 <= weight <= TOTAL_WEIGHT:
            raise ValueError(f"weight must be between 1 and {TOTAL_WEIGHT} percent, got {weight!r}")
        current = self.label(name, label)
        if weight == TOTAL_WEIGHT:
            arms: tuple[LabelArm, ...] = (LabelArm(version=target.version, weight=TOTAL_WEIGHT),)
            return self._move(name, label, arms, None, MoveAction.SET, moved_by, reason, now_ms)
        others = [arm for arm in (current.arms if current else ()) if arm.version != target.version]
        if not others:
            raise ValueError(
                f"cannot give version {target.version!r} {weight}% of label {label!r}: the label has "
                f"no other version to take the other {TOTAL_WEIGHT - weight}%; set it first "
                f"(prompts label {name} VERSION {label})"
            )
        arms = (
            *_rescale(others, TOTAL_WEIGHT - weight),
            LabelArm(version=target.version, weight=weight),
        )
        return self._move(
            name, label, arms, target.version, MoveAction.SPLIT, moved_by, reason, now_ms
        )

    def plan_rollback(
        self,
        name: str,
        label: str,
        *,
        moved_by: str,
        reason: str,
        now_ms: int,
        automatic: bool = False,
        expected_revision: int | None = None,
    ) -> LabelMove:
        """Return ``label`` to its state before the last move. With ``expected_revision``, refuse if
        the label moved since (the canary analysis only rolls back the move it judged)."""
        current = self.label(name, label)
        if current is None:
            raise ValueError(
                f"prompt {name!r} has no label {label!r}; labels: {sorted(self.labels_of(name))}"
            )
        if expected_revision is not None and current.revision != expected_revision:
            raise ValueError(
                f"label {label!r} of prompt {name!r} is at revision {current.revision}, "
                f"not {expected_revision}: it moved since"
            )
        if not current.previous:
            raise ValueError(f"label {label!r} of prompt {name!r} has nothing to roll back to")
        action = MoveAction.AUTO_ROLLBACK if automatic else MoveAction.ROLLBACK
        return self._move(
            name, label, current.previous, current.previous_canary, action, moved_by, reason, now_ms
        )

    def _move(
        self,
        name: str,
        label: str,
        arms: tuple[LabelArm, ...],
        canary: str | None,
        action: MoveAction,
        moved_by: str,
        reason: str,
        now_ms: int,
    ) -> LabelMove:
        current = self.label(name, label)
        return LabelMove(
            name=name,
            label=label,
            revision=(current.revision + 1) if current else 1,
            arms=arms,
            canary=canary,
            previous=current.arms if current else (),
            previous_canary=current.canary if current else None,
            action=action,
            moved_at_ms=now_ms,
            moved_by=moved_by,
            reason=reason,
        )


def _rescale(arms: list[LabelArm], total: int) -> tuple[LabelArm, ...]:
    """Scale integer weights to ``total`` (largest remainder), keeping every arm at >= 1."""
    if total < len(arms):
        raise ValueError(f"cannot split {total}% over {len(arms)} versions")
    old = sum(arm.weight for arm in arms)
    raw = [arm.weight * total / old for arm in arms]
    floors = [max(1, int(value)) for value in raw]
    order = sorted(range(len(arms)), key=lambda i: raw[i] - int(raw[i]), reverse=True)
    index = 0
    while sum(floors) < total:
        floors[order[index % len(arms)]] += 1
        index += 1
    while sum(floors) > total:
        biggest = max(range(len(arms)), key=lambda i: floors[i])
        floors[biggest] -= 1
    return tuple(
        LabelArm(version=arm.version, weight=w) for arm, w in zip(arms, floors, strict=True)
    )
