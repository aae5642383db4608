"""The judge sampling file: its model (rules, filters, budgets) and its parsing.

File shape (documented example: ``streams/evaluation/data/sampling.yaml``, :data:`DEFAULT_SAMPLING_FILE`):
``version: 1``; ``rules``, a non-empty list of ``{name, match, rate, always, rubrics, metrics, budget}``;
and an optional overall ``budget: {usd_per_hour, calls_per_minute}``.

- ``name``: unique, ``[a-z0-9][a-z0-9_-]*`` (it names counters; ``overall`` is reserved).
- ``match`` (:class:`RuleFilter`): any of ``service``, ``environment``, ``model``, ``prompt_name``,
  ``prompt_version``, ``span_kind``, ``status``; each a string or a non-empty list of strings (any
  listed value matches); a missing field matches every value. Only ``model`` takes a glob, one
  trailing ``*`` (``gpt-4o*``). A candidate without a prompt name or version never matches a filter on it.
- ``rate``: in [0, 1]. A matching call is sampled iff ``trace_fraction(trace_id) < rate``.
- ``always``: any of ``error`` (status is error), ``guardrail`` (a guardrail finding), ``feedback``
  (negative user feedback): a matching call with such a trigger fires the rule whatever the rate. A rule
  needs a ``rate`` or ``always`` (an explicit ``rate: 0`` disables a rule).
- ``rubrics`` / ``metrics``: what to apply (at least one of the two), checked against the known names
  given to the loader.
- ``budget``: the rule's own caps (same shape as the overall one; at least one limit).

The models are frozen pydantic models that reject unknown keys, NaN and infinities. What a valid file
means at run time (sampling, budgets, decisions) is ``streams.evaluation.sampling``.

Errors: :class:`SamplingError` names the file, the rule (index and name), the field and the bad value.
Reading the file is the only I/O; nothing here blocks otherwise.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, Self, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from producers.events import MAX_LABEL_CHARS, SpanKind, Status
from streams.analytics.pricing.files import describe_errors, shown

if TYPE_CHECKING:
    from streams.evaluation.sampling import Candidate

__all__ = [
    "CALLS_PER_MINUTE",
    "DEFAULT_SAMPLING_FILE",
    "OVERALL_NAME",
    "USD_PER_HOUR",
    "Budget",
    "Rule",
    "RuleFilter",
    "SamplingConfig",
    "SamplingError",
    "Trigger",
    "load_sampling",
    "parse_sampling",
]

DEFAULT_SAMPLING_FILE: Final = Path(__file__).parent / "data" / "sampling.yaml"

# The name of the overall budget in counters and biting() (a rule may not take it).
OVERALL_NAME: Final = "overall"

# The budget limits.
CALLS_PER_MINUTE: Final = "calls_per_minute"
USD_PER_HOUR: Final = "usd_per_hour"

Trigger = Literal["error", "guardrail", "feedback"]
TRIGGERS: Final = get_args(Trigger)

_SPAN_KINDS: Final = tuple(kind.value for kind in SpanKind)
_STATUSES: Final = tuple(status.value for status in Status)
_GLOB: Final = "*"
_NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]*$"


class SamplingError(ValueError):
    """A sampling file that cannot be used; the message names the file, the rule and the bad value."""


def _as_values(value: Any) -> Any:
    """A filter value as a tuple of strings: one string, or a list; integers become their text."""
    if value is None:
        return None
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise ValueError(
            f"an empty list matches nothing; leave the field out to match every value, got {value!r}"
        )
    out: list[Any] = []
    for item in items:
        if isinstance(item, float):
            raise ValueError(
                f"quote labels that look like numbers (YAML reads 1.10 as 1.1), got {item!r}"
            )
        out.append(str(item) if isinstance(item, int) and not isinstance(item, bool) else item)
    return tuple(out)


Label = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_CHARS)]
Values = Annotated[tuple[Label, ...] | None, BeforeValidator(_as_values)]
RuleName = Annotated[str, Field(pattern=_NAME_PATTERN, max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RuleFilter(_Model):
    """Which calls a rule considers: every given field must match (see the module docstring)."""

    service: Values = None
    environment: Values = None
    model: Values = None
    prompt_name: Values = None
    prompt_version: Values = None
    span_kind: Values = None
    status: Values = None

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if data is None:
            return {}
        if isinstance(data, dict):
            unknown = [key for key in data if key not in cls.model_fields]
            if unknown:
                raise ValueError(
                    f"unknown filter key {unknown[0]!r}; valid keys: {', '.join(cls.model_fields)}"
                )
        return data

    @field_validator(
        "service", "environment", "prompt_name", "prompt_version", "span_kind", "status"
    )
    @classmethod
    def _no_glob(
        cls, values: tuple[str, ...] | None, info: ValidationInfo
    ) -> tuple[str, ...] | None:
        for value in values or ():
            if _GLOB in value:
                raise ValueError(f"only model takes a '*' glob, got {info.field_name}={value!r}")
        return values

    @field_validator("model")
    @classmethod
    def _trailing_glob(cls, values: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for value in values or ():
            if _GLOB in value[:-1]:
                raise ValueError(f"a model glob takes one trailing '*' only, got {value!r}")
        return values

    @field_validator("span_kind")
    @classmethod
    def _span_kinds(cls, values: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return _one_of(values, _SPAN_KINDS, "span kind")

    @field_validator("status")
    @classmethod
    def _statuses(cls, values: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return _one_of(values, _STATUSES, "status")

    def matches(self, call: Candidate) -> bool:
        return (
            _has(self.service, call.service)
            and _has(self.environment, call.environment)
            and _has(self.prompt_name, call.prompt_name)
            and _has(self.prompt_version, call.prompt_version)
            and _has(self.span_kind, call.span_kind)
            and _has(self.status, call.status)
            and (self.model is None or any(_model_matches(p, call.model) for p in self.model))
        )


def _one_of(
    values: tuple[str, ...] | None, valid: tuple[str, ...], what: str
) -> tuple[str, ...] | None:
    for value in values or ():
        if value not in valid:
            raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")
    return values


def _has(values: tuple[str, ...] | None, value: str | None) -> bool:
    return values is None or (value is not None and value in values)


def _model_matches(pattern: str, model: str) -> bool:
    if pattern.endswith(_GLOB):
        return model.startswith(pattern[:-1])
    return model == pattern


class Budget(_Model):
    """Caps over sliding windows: judge calls in the last minute, estimated USD in the last hour."""

    usd_per_hour: float | None = Field(default=None, gt=0.0)
    calls_per_minute: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _has_a_limit(self) -> Self:
        if self.usd_per_hour is None and self.calls_per_minute is None:
            raise ValueError(
                f"a budget needs {USD_PER_HOUR} and/or {CALLS_PER_MINUTE}, got neither"
            )
        return self

    def limits(self) -> dict[str, float]:
        """``{limit name: cap}`` of the limits that are set."""
        caps = {USD_PER_HOUR: self.usd_per_hour, CALLS_PER_MINUTE: self.calls_per_minute}
        return {name: float(cap) for name, cap in caps.items() if cap is not None}


def _known(names: tuple[str, ...], info: ValidationInfo, key: str, what: str) -> tuple[str, ...]:
    """``names`` without repeats; ValueError naming an unknown one when the context lists the known."""
    known = (info.context or {}).get(key)
    if known is not None:
        for name in names:
            if name not in known:
                listed = ", ".join(sorted(known)) or "none"
                raise ValueError(f"unknown {what} {name!r}; known {what}s: {listed}")
    return tuple(dict.fromkeys(names))


class Rule(_Model):
    """One sampling rule (see the module docstring)."""

    name: RuleName
    match: RuleFilter = RuleFilter()
    rate: float = Field(default=0.0, ge=0.0, le=1.0)
    always: tuple[Trigger, ...] = ()
    rubrics: tuple[Label, ...] = ()
    metrics: tuple[Label, ...] = ()
    budget: Budget | None = None

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name == OVERALL_NAME:
            raise ValueError(f"rule name {name!r} is reserved for the overall budget")
        return name

    @field_validator("always")
    @classmethod
    def _distinct_triggers(cls, always: tuple[Trigger, ...]) -> tuple[Trigger, ...]:
        return tuple(dict.fromkeys(always))

    @field_validator("rubrics")
    @classmethod
    def _known_rubrics(cls, rubrics: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        return _known(rubrics, info, "known_rubrics", "rubric")

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        return _known(metrics, info, "known_metrics", "metric")

    @model_validator(mode="after")
    def _does_something(self) -> Self:
        if "rate" not in self.model_fields_set and not self.always:
            raise ValueError(
                f"rule {self.name!r} needs a rate (0..1) or always ({', '.join(TRIGGERS)}), "
                "got neither"
            )
        if not self.rubrics and not self.metrics:
            raise ValueError(f"rule {self.name!r} needs rubrics or metrics to apply, got neither")
        return self


class SamplingConfig(_Model):
    """The whole sampling file."""

    version: Literal[1]
    rules: tuple[Rule, ...]
    budget: Budget | None = None

    @field_validator("rules")
    @classmethod
    def _some_rules(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        if not rules:
            raise ValueError("needs at least one rule, got none")
        return rules

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        seen: dict[str, int] = {}
        for index, rule in enumerate(self.rules):
            if rule.name in seen:
                raise ValueError(
                    f"duplicate rule name {rule.name!r} (rules[{seen[rule.name]}] and "
                    f"rules[{index}])"
                )
            seen[rule.name] = index
        return self

    @property
    def rule_names(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.rules)


def _rule_label(entry: dict[str, Any]) -> str:
    return f"name={entry.get('name')!r}"


def parse_sampling(
    text: str,
    source: str = "<string>",
    known_rubrics: Collection[str] | None = None,
    known_metrics: Collection[str] | None = None,
) -> SamplingConfig:
    """Parse and check sampling YAML; raises :class:`SamplingError` naming ``source`` and the bad value.

    Rubric and metric names are checked against ``known_rubrics`` / ``known_metrics`` when given.
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SamplingError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SamplingError(
            f"{source}: expected a mapping with 'version' and 'rules', got {shown(raw)}"
        )
    context = {
        "known_rubrics": None if known_rubrics is None else frozenset(known_rubrics),
        "known_metrics": None if known_metrics is None else frozenset(known_metrics),
    }
    try:
        return SamplingConfig.model_validate(raw, context=context)
    except ValidationError as exc:
        raise SamplingError(
            describe_errors(
                source,
                "sampling file",
                raw,
                exc,
                list_key="rules",
                label=_rule_label,
                own_messages=True,
            )
        ) from exc


def load_sampling(
    path: Path,
    known_rubrics: Collection[str] | None = None,
    known_metrics: Collection[str] | None = None,
) -> SamplingConfig:
    """Read and check a sampling file; raises :class:`SamplingError` (also for an unreadable file)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SamplingError(f"{path}: cannot read the sampling file: {exc}") from exc
    return parse_sampling(text, str(path), known_rubrics, known_metrics)
