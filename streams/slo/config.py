"""Declarative SLOs: the SLO file model, its loader, and the exact window and burn-rate definitions.

File shape (commented example: ``config/slos.yaml``): ``version: 1``; optional ``defaults`` with
``period`` (error-budget period, whole hours, default 30d), ``allowed_lateness`` (default 2m, see
``streams.slo.burnrate``), ``rules`` (for ratio SLIs; default :data:`DEFAULT_RULES`: fast = 1h/5m at 14.4x,
page; slow = 6h/30m at 6x, ticket) and ``cost_rules`` (default :data:`DEFAULT_COST_RULES`: 1h/5m at
1.0x, ticket); and ``slos``, each with ``name`` (unique, ``[a-z0-9-]+``), ``description``, ``objective``
(0 < x < 1; ratio SLIs only), ``sli``, ``selector``, and optional ``rules`` (replacing the defaults),
``period`` and ``runbook`` (text or URL). A rule is ``{name, long_window, short_window, burn_rate,
severity: page|ticket}``.

SLIs, on the normalized rows of ``streams.ingest.records.CALL_FIELDS`` that match the selector:

- ``latency``: good = ``duration_ms <= threshold_ms``;
- ``availability``: good = ``status == 'ok'`` (429s, timeouts and every other error are bad);
- ``ttft``: only rows whose ``time_to_first_token_ms`` is not NULL count; good = ``ttft <= threshold_ms``;
- ``cost``: ``usd_per_hour`` budget; unknown costs (NULL ``cost_usd``) count as 0 and are counted apart.

Selector: every given field must equal the row's value exactly (``provider`` -> ``provider_name``,
``tenant`` -> ``tenant_id``; ``model`` -> ``request_model``, or ``response_model`` when
``request_model`` is ''). ``span_kind`` defaults to ``'llm'``; ``span_kind: null`` matches every kind.

Windows (:func:`window_bounds`): rows are bucketed by ``start_time`` into 1-minute buckets (floor to the
minute, UTC). At evaluation time T (epoch ms) a window of length W holds the W / 1 min buckets whose
start b satisfies ``floor_minute(T) - W < b <= floor_minute(T)``, i.e. exactly the rows with
``floor_minute(T) - W + 1 min <= start_time < floor_minute(T) + 1 min``. Windows are whole minutes.

Burn rates (:func:`ratio_burn_rate`, :func:`cost_burn_rate`): for ratio SLIs
``(total - good) / total / (1 - objective)``, 0 when total = 0; for cost SLIs
``spent_usd / (W / 1 h) / usd_per_hour``. ``dashboards.slo_sql`` computes the same in SQL on llm_calls.

Errors: :class:`SloFileError` names the file, the SLO (index and name) and the bad value. Durations are
strict: an integer without leading zeros and one unit of s, m, h, d, w (``"5m"``, ``"1h"``, ``"30d"``).
A period must be at least the SLO's longest window.
Reading the file is the only I/O.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self, get_args

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from streams.analytics.pricing.files import describe_errors, shown

__all__ = [
    "DEFAULT_ALLOWED_LATENESS",
    "DEFAULT_COST_RULES",
    "DEFAULT_PERIOD",
    "DEFAULT_RULES",
    "GUARDRAIL_CATEGORIES",
    "GUARDRAIL_FLAGS",
    "HOUR_MS",
    "MINUTE_MS",
    "SELECTOR_COLUMNS",
    "AvailabilitySli",
    "BurnRule",
    "CostSli",
    "GuardrailSli",
    "LatencySli",
    "Selector",
    "Severity",
    "Sli",
    "Slo",
    "SloDefaults",
    "SloFile",
    "SloFileError",
    "TtftSli",
    "cost_burn_rate",
    "floor_minute",
    "load_slo_file",
    "parse_duration",
    "parse_slo_file",
    "ratio_burn_rate",
    "window_bounds",
]

SECOND_MS: Final = 1_000
MINUTE_MS: Final = 60 * SECOND_MS
HOUR_MS: Final = 60 * MINUTE_MS
DAY_MS: Final = 24 * HOUR_MS
WEEK_MS: Final = 7 * DAY_MS
_UNIT_MS: Final = {"s": SECOND_MS, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": WEEK_MS}
_DURATION_RE: Final = re.compile(r"^(0|[1-9][0-9]{0,5})([smhdw])$")
_NAME_PATTERN: Final = r"^[a-z0-9-]+$"

# Selector field -> normalized row column (``model`` is matched apart: request, else response model).
SELECTOR_COLUMNS: Final[dict[str, str]] = {
    "service": "service",
    "environment": "environment",
    "provider": "provider_name",
    "tenant": "tenant_id",
    "span_kind": "span_kind",
}


class SloFileError(ValueError):
    """An SLO file that cannot be used; the message names the file, the SLO and the bad value."""


def parse_duration(text: str) -> int:
    """Milliseconds in a strict duration string (``"5m"`` -> 300000); raises ValueError otherwise."""
    match = _DURATION_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"duration must be an integer and one unit of s, m, h, d, w (e.g. '5m'), got {text!r}"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def _duration(text: str) -> str:
    parse_duration(text)
    return text


def _whole(unit_ms: int, what: str) -> AfterValidator:
    """A check that a duration is a positive whole number of ``unit_ms``."""

    def check(text: str) -> str:
        ms = parse_duration(text)
        if ms <= 0 or ms % unit_ms:
            raise ValueError(f"{what}, got {text!r}")
        return text

    return AfterValidator(check)


Duration = Annotated[str, AfterValidator(_duration)]
Window = Annotated[str, _whole(MINUTE_MS, "a window must be a positive whole number of minutes")]
Period = Annotated[str, _whole(HOUR_MS, "an SLO period must be a positive whole number of hours")]
Name = Annotated[str, Field(pattern=_NAME_PATTERN, max_length=128)]


def floor_minute(ms: int) -> int:
    return ms // MINUTE_MS * MINUTE_MS


def window_bounds(now_ms: int, window_ms: int) -> tuple[int, int]:
    """``(lo, hi)``: the window holds the rows with ``lo <= start_time < hi`` (module docstring)."""
    end = floor_minute(now_ms) + MINUTE_MS
    return end - window_ms, end


def ratio_burn_rate(good: int, total: int, objective: float) -> float:
    """``(total - good) / total / (1 - objective)``; 0 when total is 0."""
    if total == 0:
        return 0.0
    return (total - good) / total / (1 - objective)


def cost_burn_rate(spent_usd: float, window_ms: int, usd_per_hour: float) -> float:
    """Observed USD per hour over the window divided by the budget in USD per hour."""
    return spent_usd / (window_ms / HOUR_MS) / usd_per_hour


class Severity(enum.StrEnum):
    PAGE = "page"
    TICKET = "ticket"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class BurnRule(_Model):
    """Fire when the burn rate exceeds ``burn_rate`` over both the long and the short window."""

    name: Name
    long_window: Window
    short_window: Window
    burn_rate: float = Field(gt=0.0)
    severity: Severity

    @property
    def long_ms(self) -> int:
        return parse_duration(self.long_window)

    @property
    def short_ms(self) -> int:
        return parse_duration(self.short_window)

    @model_validator(mode="after")
    def _short_is_shorter(self) -> Self:
        if self.short_ms >= self.long_ms:
            raise ValueError(
                f"rule {self.name!r}: short_window must be shorter than long_window, got "
                f"short_window={self.short_window!r}, long_window={self.long_window!r}"
            )
        return self


class LatencySli(_Model):
    type: Literal["latency"]
    threshold_ms: float = Field(gt=0.0)


class AvailabilitySli(_Model):
    type: Literal["availability"]


class TtftSli(_Model):
    type: Literal["ttft"]
    threshold_ms: float = Field(gt=0.0)


class CostSli(_Model):
    type: Literal["cost"]
    usd_per_hour: float = Field(gt=0.0)


# Risk categories a guardrail SLI can count (the values of streams.text.findings.RiskCategory).
GuardrailCategory = Literal[
    "pii",
    "secret",
    "prompt_injection",
    "jailbreak",
    "toxicity",
    "banned_topic",
    "data_leak",
    "unknown_url",
    "refusal",
]
GUARDRAIL_CATEGORIES: Final = get_args(GuardrailCategory)
# The row key holding the categories found on an analysed call (rows of the text-analysis consumer).
GUARDRAIL_FLAGS: Final = "guardrail_flags"
# Selector fields a guardrail SLO may use: the dimensions of llm_guardrail_rollup_1m.
GUARDRAIL_SELECTOR_FIELDS: Final = frozenset({"service", "environment", "model", "span_kind"})


class GuardrailSli(_Model):
    """Good event: an analysed call's text without a finding of ``category`` (evaluated by the
    text-analysis consumer, ``llmwatch analyze``, on the calls whose text it analyses)."""

    type: Literal["guardrail"]
    category: GuardrailCategory


Sli = Annotated[
    LatencySli | AvailabilitySli | TtftSli | CostSli | GuardrailSli, Field(discriminator="type")
]


class Selector(_Model):
    """Which rows an SLO counts: every given field must match exactly (see the module docstring)."""

    service: str | None = Field(default=None, min_length=1)
    environment: str | None = Field(default=None, min_length=1)
    provider: str | None = Field(default=None, min_length=1)
    model: str | None = Field(default=None, min_length=1)
    tenant: str | None = Field(default=None, min_length=1)
    span_kind: str | None = Field(default="llm", min_length=1)

    def column_checks(self) -> tuple[tuple[str, str], ...]:
        """``(row column, value)`` pairs to compare, without ``model`` (matched apart)."""
        return tuple(
            (column, value)
            for field, column in SELECTOR_COLUMNS.items()
            if (value := getattr(self, field)) is not None
        )

    def as_dict(self) -> dict[str, str]:
        """The given fields (for alert events and tables)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


DEFAULT_RULES: Final = (
    BurnRule(
        name="fast", long_window="1h", short_window="5m", burn_rate=14.4, severity=Severity.PAGE
    ),
    BurnRule(
        name="slow", long_window="6h", short_window="30m", burn_rate=6.0, severity=Severity.TICKET
    ),
)
DEFAULT_COST_RULES: Final = (
    BurnRule(
        name="budget", long_window="1h", short_window="5m", burn_rate=1.0, severity=Severity.TICKET
    ),
)
DEFAULT_PERIOD: Final = "30d"
DEFAULT_ALLOWED_LATENESS: Final = "2m"


def _unique_rules(rules: tuple[BurnRule, ...] | None) -> tuple[BurnRule, ...] | None:
    if rules is None:
        return None
    if not rules:
        raise ValueError("needs at least one rule, got none")
    names = [rule.name for rule in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"rule names must be unique, got duplicates {duplicates}")
    return rules


Rules = Annotated[tuple[BurnRule, ...], AfterValidator(_unique_rules)]
OptionalRules = Annotated[tuple[BurnRule, ...] | None, AfterValidator(_unique_rules)]


class SloDefaults(_Model):
    period: Period = DEFAULT_PERIOD
    allowed_lateness: Duration = DEFAULT_ALLOWED_LATENESS
    rules: Rules = DEFAULT_RULES
    cost_rules: Rules = DEFAULT_COST_RULES


class Slo(_Model):
    """One SLO. In a loaded :class:`SloFile`, ``rules`` and ``period`` are always filled."""

    name: Name
    description: str = ""
    objective: float | None = Field(default=None, gt=0.0, lt=1.0)
    sli: Sli
    selector: Selector = Selector()
    rules: OptionalRules = None
    period: Period | None = None
    runbook: str = ""

    @model_validator(mode="after")
    def _objective_fits_sli(self) -> Self:
        if self.sli.type == "cost" and self.objective is not None:
            raise ValueError(
                f"SLO {self.name!r}: a cost SLI takes no objective (its budget is "
                f"sli.usd_per_hour), got objective={self.objective!r}"
            )
        if self.sli.type == "guardrail":
            extra = sorted(set(self.selector.as_dict()) - GUARDRAIL_SELECTOR_FIELDS)
            if extra:
                raise ValueError(
                    f"SLO {self.name!r}: a guardrail SLI selects by "
                    f"{sorted(GUARDRAIL_SELECTOR_FIELDS)} only, got {extra}"
                )
        if self.sli.type != "cost" and self.objective is None:
            raise ValueError(
                f"SLO {self.name!r}: SLI type {self.sli.type!r} needs an objective (0 < x < 1), "
                "got none"
            )
        return self

    @property
    def burn_rules(self) -> tuple[BurnRule, ...]:
        if self.rules is None:
            raise ValueError(f"SLO {self.name!r} has no rules: load it through an SloFile")
        return self.rules

    @property
    def period_ms(self) -> int:
        return parse_duration(self.period or DEFAULT_PERIOD)

    @property
    def longest_window_ms(self) -> int:
        return max(rule.long_ms for rule in self.burn_rules)


class SloFile(_Model):
    """The whole SLO file; after validation every SLO carries its rules and period."""

    version: Literal[1]
    defaults: SloDefaults = SloDefaults()
    slos: tuple[Slo, ...] = ()

    @model_validator(mode="after")
    def _unique_and_resolved(self) -> Self:
        seen: dict[str, int] = {}
        for index, slo in enumerate(self.slos):
            if slo.name in seen:
                raise ValueError(
                    f"duplicate SLO name {slo.name!r} (slos[{seen[slo.name]}] and slos[{index}])"
                )
            seen[slo.name] = index
        resolved = tuple(self._resolve(slo) for slo in self.slos)
        for slo in resolved:
            if slo.period_ms < slo.longest_window_ms:
                raise ValueError(
                    f"SLO {slo.name!r}: period {slo.period!r} is shorter than its longest window "
                    f"({max(slo.burn_rules, key=lambda r: r.long_ms).long_window!r})"
                )
        object.__setattr__(self, "slos", resolved)
        return self

    def _resolve(self, slo: Slo) -> Slo:
        default_rules = self.defaults.cost_rules if slo.sli.type == "cost" else self.defaults.rules
        return slo.model_copy(
            update={
                "rules": slo.rules if slo.rules is not None else default_rules,
                "period": slo.period if slo.period is not None else self.defaults.period,
            }
        )

    @property
    def allowed_lateness_ms(self) -> int:
        return parse_duration(self.defaults.allowed_lateness)

    def split_guardrails(self) -> tuple[SloFile | None, SloFile | None]:
        """(the SLOs the worker evaluates on call rows, the guardrail SLOs the text-analysis
        consumer evaluates); None where a part has no SLO."""
        calls = tuple(slo for slo in self.slos if slo.sli.type != "guardrail")
        guards = tuple(slo for slo in self.slos if slo.sli.type == "guardrail")
        return (
            self.model_copy(update={"slos": calls}) if calls else None,
            self.model_copy(update={"slos": guards}) if guards else None,
        )


def _slo_label(entry: dict[str, Any]) -> str:
    return f"name={entry.get('name')!r}"


def parse_slo_file(text: str, source: str = "<string>") -> SloFile:
    """Parse and check SLO YAML; raises :class:`SloFileError` naming ``source`` and the bad value."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SloFileError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SloFileError(
            f"{source}: expected a mapping with 'version' and 'slos', got {shown(raw)}"
        )
    try:
        return SloFile.model_validate(raw)
    except ValidationError as exc:
        raise SloFileError(
            describe_errors(
                source, "SLO file", raw, exc, list_key="slos", label=_slo_label, own_messages=True
            )
        ) from exc


def load_slo_file(path: str | Path) -> SloFile:
    """Read and check an SLO file; raises :class:`SloFileError` (also for an unreadable file)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SloFileError(f"{path}: cannot read the SLO file: {exc}") from exc
    return parse_slo_file(text, str(path))
