"""Per-version metric accumulators of a canary analysis: what each arm's calls, guardrail results and
scores add up to since the label moved.

Memory: the mean and rate metrics keep three numbers each (``streams.prompts.sequential.Moments``); the
rank metrics keep their values, up to :data:`MAX_RANK_SAMPLES` per arm (the planned looks never need
more: the last look is at most a few thousand canary calls, and the baseline's values beyond the cap
are not needed for a rank test at that precision). So one analysed canary costs at most ~1 MB.

What counts (one call row of the ``calls`` topic, ``streams.ingest.records.CALL_FIELDS``):
- ``latency_p95_ms``: ``duration_ms`` of successful calls; ``ttft_p95_ms``: their time to first token;
- ``error_rate``: status ``error``; ``rate_limit_rate``: HTTP 429;
- ``cost_per_request_usd`` and ``output_tokens``: when known (unpriced calls are not counted as 0),
  overall and per request model (:data:`STRATIFIED`): the verdict compares them model by model, so a
  canary that happened to get more traffic on a pricier model is not blamed for it;
- ``guardrail_hit_rate``: flagged texts out of analysed texts, from the guardrail rollups;
- ``score:<name>``: judge, metric and human scores of that name.
Nothing here does I/O.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from streams.prompts.policy import SCORE_PREFIX
from streams.prompts.sequential import Moments

__all__ = ["MAX_RANK_SAMPLES", "STRATIFIED", "ArmMetrics"]

MAX_RANK_SAMPLES: Final = 65_536
RATE_LIMITED: Final = 429
ERROR_STATUS: Final = "error"
# Metrics that depend on the model as much as on the prompt: also kept per request model.
STRATIFIED: Final = frozenset({"cost_per_request_usd", "output_tokens"})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(slots=True)
class ArmMetrics:
    """Everything one prompt version's calls added up to, since the move under analysis."""

    version: str
    calls: int = 0
    moments: dict[str, Moments] = field(default_factory=dict)
    samples: dict[str, array[float]] = field(default_factory=dict)
    # metric -> request model -> moments, for the STRATIFIED metrics
    strata: dict[str, dict[str, Moments]] = field(default_factory=dict)

    def _moments(self, metric: str) -> Moments:
        found = self.moments.get(metric)
        if found is None:
            found = self.moments[metric] = Moments()
        return found

    def _sample(self, metric: str, value: float) -> None:
        values = self.samples.get(metric)
        if values is None:
            values = self.samples[metric] = array("d")
        if len(values) < MAX_RANK_SAMPLES:
            values.append(value)

    def add_call(self, row: Mapping[str, Any]) -> None:
        self.calls += 1
        failed = row.get("status") == ERROR_STATUS
        self._moments("error_rate").add(1.0 if failed else 0.0)
        self._moments("rate_limit_rate").add(1.0 if row.get("http_status") == RATE_LIMITED else 0.0)
        if not failed:
            duration = _number(row.get("duration_ms"))
            if duration is not None:
                self._sample("latency_p95_ms", duration)
            ttft = _number(row.get("time_to_first_token_ms"))
            if ttft is not None:
                self._sample("ttft_p95_ms", ttft)
        model = str(row.get("request_model") or "")
        for metric, value in (
            ("cost_per_request_usd", _number(row.get("cost_usd"))),
            ("output_tokens", _number(row.get("output_tokens"))),
        ):
            if value is not None:
                self._moments(metric).add(value)
                by_model = self.strata.setdefault(metric, {})
                by_model.setdefault(model, Moments()).add(value)

    def add_guardrails(self, texts: int, flagged: int) -> None:
        """Analysed and flagged texts (one guardrail rollup row): a 0/1 outcome per text."""
        if texts > 0:
            self._moments("guardrail_hit_rate").add_sum(texts, float(flagged), float(flagged))

    def add_score(self, name: str, value: float) -> None:
        self._moments(SCORE_PREFIX + name).add(value)

    def moments_of(self, metric: str) -> Moments:
        return self.moments.get(metric) or Moments()

    def samples_of(self, metric: str) -> array[float]:
        return self.samples.get(metric) or array("d")
