"""The canary verdict's false-alarm guarantee and its power, by simulation.

Arms are filled in bulk per look (the same accumulators ``CanaryAnalyzer`` fills row by row), so a few
hundred whole canaries run in seconds. Traffic: 10% canary, 90% baseline, every metric of the default
policy. Documented in docs/prompts.md:
- A/A: a canary identical to its baseline, judged at every planned look, fails in at most the policy's
  alpha (1%) of runs;
- a 2x latency regression is failed by the second look (100 canary calls, ~1,000 events at 10%) in
  >= 99% of runs (measured: 197 of 200 runs at the first look, 50 canary calls, the rest at the second).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np
import pytest

from streams.prompts.arms import ArmMetrics
from streams.prompts.policy import DEFAULT_POLICY_FILE, LabelPolicy, load_policy
from streams.prompts.verdict import MetricMemory, Outcome, judge_look

CANARY_SHARE = 0.1
RUNS_AA = 200
RUNS_POWER = 100


@dataclass(frozen=True)
class Traffic:
    latency_factor: float = 1.0
    cost_factor: float = 1.0
    error_rate: float = 0.02


def _policy(looks: int) -> LabelPolicy:
    policy = load_policy(DEFAULT_POLICY_FILE)
    return policy.model_copy(update={"looks": policy.looks.model_copy(update={"count": looks})})


def _fill(arm: ArmMetrics, n: int, traffic: Traffic, rng: np.random.Generator) -> None:
    arm.calls += n
    latency = rng.lognormal(np.log(800.0), 0.5, n) * traffic.latency_factor
    arm.samples.setdefault("latency_p95_ms", array("d")).extend(latency)
    ttft = rng.lognormal(np.log(300.0), 0.4, n) * traffic.latency_factor
    arm.samples.setdefault("ttft_p95_ms", array("d")).extend(ttft)
    for metric, rate in (
        ("error_rate", traffic.error_rate),
        ("rate_limit_rate", 0.01),
        ("guardrail_hit_rate", 0.03),
    ):
        hits = float(rng.binomial(n, rate))
        arm._moments(metric).add_sum(n, hits, hits)
    for metric, values in (
        ("cost_per_request_usd", rng.lognormal(np.log(0.002), 0.8, n) * traffic.cost_factor),
        ("output_tokens", rng.lognormal(np.log(250.0), 0.6, n)),
    ):
        arm._moments(metric).add_sum(n, float(values.sum()), float((values**2).sum()))
    scored = max(1, n // 10)  # the judge samples a tenth of the calls
    scores = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], scored, p=[0.05, 0.05, 0.1, 0.3, 0.5])
    arm._moments("score:relevance").add_sum(scored, float(scores.sum()), float((scores**2).sum()))
    thumbs = rng.binomial(1, 0.8, scored).astype(float)
    arm._moments("score:thumbs").add_sum(scored, float(thumbs.sum()), float(thumbs.sum()))


def _first_fail(policy: LabelPolicy, canary_traffic: Traffic, seed: int) -> int | None:
    """The look at which the canary fails, or None if it passes every look."""
    rng = np.random.default_rng(seed)
    canary, baseline = ArmMetrics("c" * 12), ArmMetrics("b" * 12)
    memory = MetricMemory()
    done = 0
    for look, count in enumerate(policy.looks.counts(), start=1):
        _fill(canary, count - done, canary_traffic, rng)
        baseline_n = round((count - done) * (1 - CANARY_SHARE) / CANARY_SHARE)
        _fill(baseline, baseline_n, Traffic(), rng)
        done = count
        if judge_look(policy, look, canary, baseline, memory).outcome is Outcome.FAIL:
            return look
    return None


def test_aa_canaries_are_falsely_failed_in_at_most_alpha_of_runs() -> None:
    policy = _policy(looks=6)  # 50 ... 1600 canary calls, 16,000 events per run
    fails = sum(_first_fail(policy, Traffic(), seed) is not None for seed in range(RUNS_AA))
    margin = 3 * np.sqrt(policy.alpha * (1 - policy.alpha) / RUNS_AA)
    assert fails / RUNS_AA <= policy.alpha + margin, f"{fails} false rollbacks in {RUNS_AA} runs"


@pytest.mark.parametrize(
    ("traffic", "within_look"),
    [
        (Traffic(latency_factor=2.0), 2),  # 100 canary calls: ~1,000 events at 10%
        (Traffic(cost_factor=2.0), 4),  # 400 canary calls: ~4,000 events
        (Traffic(error_rate=0.10), 6),  # errors 2% -> 10%: 1,600 canary calls
    ],
)
def test_regressions_are_failed_within_the_documented_look(
    traffic: Traffic, within_look: int
) -> None:
    policy = _policy(looks=8)
    looks = [_first_fail(policy, traffic, 10_000 + seed) for seed in range(RUNS_POWER)]
    caught = sum(look is not None and look <= within_look for look in looks)
    assert caught >= 0.99 * RUNS_POWER, (
        f"caught by look {within_look}: {caught}/{RUNS_POWER}; {looks}"
    )


def test_a_small_degradation_within_tolerance_is_not_failed() -> None:
    """+10% latency is inside the policy's 25% tolerance: never a rollback."""
    policy = _policy(looks=6)
    looks = [_first_fail(policy, Traffic(latency_factor=1.1), 20_000 + s) for s in range(40)]
    assert looks.count(None) == len(looks)
