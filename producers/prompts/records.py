"""The prompt registry's record format: prompt versions and label moves, on the compacted ``prompts`` topic.

A prompt is a name, immutable versions and movable labels:

- :class:`PromptVersionRecord`: one version. Its id is content-addressed (:func:`version_id`: the first
  12 hex digits of the SHA-256 of the canonical JSON of name, template, model and parameters), so pushing
  the same content twice gives the same version and the record is idempotent.
- :class:`LabelMove`: the whole state of one label after a move (``production`` -> 90% v1, 10% v2),
  with the state before it, who moved it, when and why. A label's moves are numbered by ``revision``
  (1, 2, ...); the current state is the move with the highest revision (ties: the later record).

Kafka keys (:meth:`PromptVersionRecord.key`, :meth:`LabelMove.key`) are unique per version and per
(label, revision), so compaction drops only exact replays and the topic keeps every move: the audit
trail, mirrored into ClickHouse (``llm_prompts``, ``llm_prompt_labels``).

Every record is validated on decode; a bad one raises ``ValueError`` naming the field and value (the
arms' weights must sum to 100, the canary must be one of the arms). Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import math
from enum import StrEnum
from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from producers.events import MAX_LABEL_CHARS

__all__ = [
    "DEFAULT_LABEL",
    "MAX_TEMPLATE_CHARS",
    "TOTAL_WEIGHT",
    "VERSION_ID_CHARS",
    "LabelArm",
    "LabelMove",
    "MoveAction",
    "ParamValue",
    "PromptVersionRecord",
    "RegistryRecord",
    "decode_registry_record",
    "version_id",
]

DEFAULT_LABEL: Final = "production"
TOTAL_WEIGHT: Final = 100
VERSION_ID_CHARS: Final = 12
MAX_TEMPLATE_CHARS: Final = 200_000
MAX_REASON_CHARS: Final = 1_000
_KIND_VERSION: Final = "prompt_version"
_KIND_LABEL: Final = "label_move"

ParamValue = str | int | float | bool


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def version_id(name: str, template: str, model: str, params: dict[str, ParamValue]) -> str:
    """The content address of a prompt version: same content, same id, on every machine."""
    body = {"name": name, "template": template, "model": model, "params": params}
    return hashlib.sha256(_canonical(body)).hexdigest()[:VERSION_ID_CHARS]


class MoveAction(StrEnum):
    SET = "set"  # the label points at one version
    SPLIT = "split"  # a version takes a weighted share of the label (a canary or an A/B arm)
    ROLLBACK = "rollback"  # back to the state before the last move, by a person
    AUTO_ROLLBACK = (
        "auto_rollback"  # back to the state before the last move, by the canary analysis
    )


class PromptVersionRecord(BaseModel):
    """One immutable prompt version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["prompt_version"] = _KIND_VERSION
    name: str = Field(min_length=1, max_length=MAX_LABEL_CHARS, pattern=r"^[A-Za-z0-9_.:/-]+$")
    version: str = Field(pattern=rf"^[0-9a-f]{{{VERSION_ID_CHARS}}}$")
    template: str = Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)
    model: str = Field(default="", max_length=MAX_LABEL_CHARS)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    description: str = Field(default="", max_length=MAX_REASON_CHARS)
    created_at_ms: int = Field(ge=0)
    created_by: str = Field(default="", max_length=MAX_LABEL_CHARS)

    @field_validator("params")
    @classmethod
    def _finite_params(cls, params: dict[str, ParamValue]) -> dict[str, ParamValue]:
        for key, value in params.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"params.{key} must be finite, got {value!r}")
        return params

    @model_validator(mode="after")
    def _content_address(self) -> PromptVersionRecord:
        expected = version_id(self.name, self.template, self.model, self.params)
        if self.version != expected:
            raise ValueError(
                f"version {self.version!r} is not the content address of prompt {self.name!r} "
                f"(expected {expected!r})"
            )
        return self

    @classmethod
    def create(
        cls,
        *,
        name: str,
        template: str,
        model: str = "",
        params: dict[str, ParamValue] | None = None,
        description: str = "",
        created_at_ms: int,
        created_by: str = "",
    ) -> PromptVersionRecord:
        params = dict(params or {})
        return cls(
            name=name,
            version=version_id(name, template, model, params),
            template=template,
            model=model,
            params=params,
            description=description,
            created_at_ms=created_at_ms,
            created_by=created_by,
        )

    def key(self) -> bytes:
        return f"version/{self.name}/{self.version}".encode()

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


class LabelArm(BaseModel):
    """One version's share of a label, in whole percent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(pattern=rf"^[0-9a-f]{{{VERSION_ID_CHARS}}}$")
    weight: int = Field(ge=1, le=TOTAL_WEIGHT)


def _check_arms(field: str, arms: tuple[LabelArm, ...], *, allow_empty: bool) -> None:
    if not arms:
        if allow_empty:
            return
        raise ValueError(f"{field} must hold at least one version, got none")
    total = sum(arm.weight for arm in arms)
    if total != TOTAL_WEIGHT:
        shown = ", ".join(f"{arm.version}={arm.weight}" for arm in arms)
        raise ValueError(f"{field} weights must sum to {TOTAL_WEIGHT}, got {total} ({shown})")
    versions = [arm.version for arm in arms]
    if len(set(versions)) != len(versions):
        raise ValueError(f"{field} names a version twice: {versions!r}")


class LabelMove(BaseModel):
    """A label's whole state after one move, and the state before it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["label_move"] = _KIND_LABEL
    name: str = Field(min_length=1, max_length=MAX_LABEL_CHARS)
    label: str = Field(min_length=1, max_length=MAX_LABEL_CHARS, pattern=r"^[A-Za-z0-9_.-]+$")
    revision: int = Field(ge=1)
    arms: tuple[LabelArm, ...]
    # The arm under test when the label is split (the version the move added); None when not split.
    canary: str | None = None
    previous: tuple[LabelArm, ...] = ()
    previous_canary: str | None = None
    action: MoveAction
    moved_at_ms: int = Field(ge=0)
    moved_by: str = Field(default="", max_length=MAX_LABEL_CHARS)
    reason: str = Field(default="", max_length=MAX_REASON_CHARS)

    @model_validator(mode="after")
    def _valid_state(self) -> LabelMove:
        _check_arms("arms", self.arms, allow_empty=False)
        _check_arms("previous", self.previous, allow_empty=True)
        for field, canary, arms in (
            ("canary", self.canary, self.arms),
            ("previous_canary", self.previous_canary, self.previous),
        ):
            if canary is None:
                continue
            if canary not in {arm.version for arm in arms}:
                raise ValueError(f"{field} {canary!r} is not one of the label's versions")
            if len(arms) < 2:
                raise ValueError(f"{field} {canary!r} needs a split label, got one version")
        return self

    @property
    def split(self) -> bool:
        return len(self.arms) > 1

    @property
    def baseline(self) -> str | None:
        """The version the canary is compared with: the heaviest arm that is not the canary."""
        others = [arm for arm in self.arms if arm.version != self.canary]
        if self.canary is None or not others:
            return None
        return max(others, key=lambda arm: (arm.weight, arm.version)).version

    def weight_of(self, version: str) -> int:
        return next((arm.weight for arm in self.arms if arm.version == version), 0)

    def key(self) -> bytes:
        return f"label/{self.name}/{self.label}/{self.revision:010d}".encode()

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


RegistryRecord = PromptVersionRecord | LabelMove


def decode_registry_record(data: bytes) -> RegistryRecord:
    """Read one registry record; ValueError naming what is wrong."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"registry record is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValueError(f"registry record must be a JSON object, got {type(body).__name__}")
    kind = body.get("kind")
    try:
        if kind == _KIND_VERSION:
            return PromptVersionRecord.model_validate(body)
        if kind == _KIND_LABEL:
            return LabelMove.model_validate(body)
    except ValidationError as exc:
        raise ValueError(_describe(exc)) from exc
    raise ValueError(
        f"registry record kind must be {_KIND_VERSION!r} or {_KIND_LABEL!r}, got {kind!r}"
    )


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "record"
        parts.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
    return "; ".join(parts)
