"""The label policy file: which metrics judge a canary, how much worse it may be, and whether to act.

File shape (documented example: ``streams/prompts/data/canary.yaml``, :data:`DEFAULT_POLICY_FILE`)::

    version: 1
    labels: [production]        # the labels whose canaries are analysed
    alpha: 0.01                 # false-rollback budget of one canary: all metrics, all looks
    act: true                   # roll back on a fail verdict; false: alert with the command only
    looks: {first: 50, factor: 2, count: 8}   # canary calls at each planned look: 50, 100, ... 6400
    metrics:
      - {name: latency_p95_ms, max_increase: 0.2}     # relative: fail only beyond +20 %
      - {name: error_rate, max_increase: 0.02}        # absolute for rates: +2 points
      - {name: "score:relevance", max_increase: 0.1}  # scores: lower is worse

Metric names are the built-in ones (:data:`BUILTIN_METRICS`) or ``score:<name>`` for a judge, metric
or human score of that name. Each metric has a test: ``rank`` (Mann-Whitney at the planned looks) for
latencies, ``mean`` (mixture SPRT) for rates, costs, tokens and scores. ``critical: false`` makes a
metric's failure a marginal verdict instead of a failed one.

Errors: :class:`PolicyError` names the file, the field and the bad value. Reading the file is the only
I/O.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from producers.prompts.records import DEFAULT_LABEL
from streams.analytics.pricing.files import read_mapping, shown

__all__ = [
    "BUILTIN_METRICS",
    "DEFAULT_POLICY_FILE",
    "SCORE_PREFIX",
    "LabelPolicy",
    "Looks",
    "MetricKind",
    "MetricRule",
    "PolicyError",
    "load_policy",
]

DEFAULT_POLICY_FILE: Final = Path(__file__).parent / "data" / "canary.yaml"
SCORE_PREFIX: Final = "score:"


class PolicyError(ValueError):
    """A label policy file that cannot be used; the message names the file, field and value."""


class MetricKind(enum.StrEnum):
    RANK = "rank"  # a latency distribution: Mann-Whitney at the looks, p95 reported
    RATE = "rate"  # a 0/1 outcome per call: mixture SPRT, absolute tolerance
    MEAN = "mean"  # a per-call amount: mixture SPRT, relative tolerance


# name -> (kind, higher is worse)
BUILTIN_METRICS: Final[dict[str, tuple[MetricKind, bool]]] = {
    "latency_p95_ms": (MetricKind.RANK, True),
    "ttft_p95_ms": (MetricKind.RANK, True),
    "error_rate": (MetricKind.RATE, True),
    "rate_limit_rate": (MetricKind.RATE, True),
    "guardrail_hit_rate": (MetricKind.RATE, True),
    "cost_per_request_usd": (MetricKind.MEAN, True),
    "output_tokens": (MetricKind.MEAN, True),
}


class MetricRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    # Tolerated degradation: relative for rank and mean metrics (0.2 = +20 %), absolute for rates.
    max_increase: float = Field(ge=0.0, le=100.0)
    critical: bool = True
    # Minimum observations per arm before this metric is judged (scores arrive sampled and late).
    min_samples: int = Field(default=30, ge=2)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name in BUILTIN_METRICS:
            return name
        if name.startswith(SCORE_PREFIX) and len(name) > len(SCORE_PREFIX):
            return name
        known = ", ".join(sorted(BUILTIN_METRICS))
        raise ValueError(f"unknown metric {name!r}; known: {known}, or score:<name>")

    @property
    def kind(self) -> MetricKind:
        return BUILTIN_METRICS.get(self.name, (MetricKind.MEAN, False))[0]

    @property
    def higher_is_worse(self) -> bool:
        return BUILTIN_METRICS.get(self.name, (MetricKind.MEAN, False))[1]


class Looks(BaseModel):
    """Planned looks, in canary calls: ``first``, ``first * factor``, ... (``count`` of them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first: int = Field(default=50, ge=10)
    factor: float = Field(default=2.0, gt=1.0, le=10.0)
    count: int = Field(default=8, ge=1, le=30)

    def counts(self) -> tuple[int, ...]:
        return tuple(round(self.first * self.factor**index) for index in range(self.count))


class LabelPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    labels: tuple[str, ...] = (DEFAULT_LABEL,)
    alpha: float = Field(default=0.01, gt=0.0, lt=0.5)
    act: bool = True
    looks: Looks = Looks()
    metrics: tuple[MetricRule, ...] = Field(min_length=1)

    @field_validator("version")
    @classmethod
    def _version(cls, version: int) -> int:
        if version != 1:
            raise ValueError(f"only version 1 is known, got {version!r}")
        return version

    @model_validator(mode="after")
    def _unique(self) -> LabelPolicy:
        names = [metric.name for metric in self.metrics]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"metrics named twice: {twice!r}")
        return self

    @property
    def alpha_per_metric(self) -> float:
        """Bonferroni over metrics: a canary is falsely failed with probability <= ``alpha``."""
        return self.alpha / len(self.metrics)

    def watches(self, label: str) -> bool:
        return label in self.labels


def load_policy(path: Path | str) -> LabelPolicy:
    """Read and validate a label policy file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{source}: cannot read the label policy: {exc}") from exc
    raw = read_mapping(text, source, PolicyError)
    return parse_policy(raw, source)


def parse_policy(raw: dict[str, Any], source: str = "<policy>") -> LabelPolicy:
    try:
        return LabelPolicy.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "policy"
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message} (got {shown(error.get('input'))})")
        raise PolicyError(f"{source}: invalid label policy: " + "; ".join(problems)) from exc
