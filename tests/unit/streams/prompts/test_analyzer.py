"""The canary analyzer on call rows: it judges at the planned looks, rolls a failed canary back once
(or only alerts with act: false), ignores rows from before the move, and a replay finds nothing to do."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from producers.prompts.records import LabelMove, MoveAction, PromptVersionRecord
from producers.prompts.registry import RegistryState
from streams.prompts.analyzer import CanaryAnalyzer, Decision, rollback_command
from streams.prompts.policy import DEFAULT_POLICY_FILE, LabelPolicy, load_policy
from streams.prompts.records import CanaryAction, decode_canary
from streams.prompts.verdict import Outcome
from streams.storage import CANARY_METRICS_TABLE, CANARY_VERDICTS_TABLE

NAME = "support-bot"


def _registry(now_ms: int) -> tuple[list[PromptVersionRecord | LabelMove], str, str]:
    state = RegistryState()
    v7 = PromptVersionRecord.create(name=NAME, template="v7 {{ q }}", created_at_ms=now_ms)
    v8 = PromptVersionRecord.create(name=NAME, template="v8 {{ q }}", created_at_ms=now_ms + 1)
    state.apply_all([v7, v8])
    first = state.plan_label(NAME, "1", "production", moved_by="ana", reason="", now_ms=now_ms)
    state.apply(first)
    split = state.plan_label(
        NAME, "2", "production", weight=10, moved_by="ana", reason="canary", now_ms=now_ms + 10
    )
    return [v7, v8, first, split], v7.version, v8.version


def _row(version: str, start: int, rng: np.random.Generator, slow: float) -> dict[str, Any]:
    failed = rng.random() < 0.02
    return {
        "prompt_name": NAME,
        "prompt_version": version,
        "start_time": start,
        "duration_ms": float(rng.lognormal(np.log(800), 0.5) * slow),
        "time_to_first_token_ms": float(rng.lognormal(np.log(300), 0.4) * slow),
        "status": "error" if failed else "ok",
        "http_status": 500 if failed else 200,
        "cost_usd": float(rng.lognormal(np.log(0.002), 0.5)),
        "output_tokens": int(rng.lognormal(np.log(200), 0.5)),
    }


def _traffic(
    analyzer: CanaryAnalyzer, v7: str, v8: str, n: int, start: int, slow: float, seed: int
):
    rng = np.random.default_rng(seed)
    decisions: list[Decision] = []
    for i in range(n):
        canary = rng.random() < 0.1
        analyzer.add_call(_row(v8 if canary else v7, start + i, rng, slow if canary else 1.0))
        if i % 50 == 0:
            decisions += analyzer.due()
    return decisions + analyzer.due()


def _analyzer(policy: LabelPolicy, now_ms: int) -> tuple[CanaryAnalyzer, str, str]:
    analyzer = CanaryAnalyzer(policy, clock_ms=lambda: now_ms + 60_000)
    records, v7, v8 = _registry(now_ms)
    for record in records:
        analyzer.apply_registry(record)
    return analyzer, v7, v8


def test_a_slow_canary_is_failed_at_the_first_look_and_rolled_back_once(now_ms: int) -> None:
    analyzer, v7, v8 = _analyzer(load_policy(DEFAULT_POLICY_FILE), now_ms)
    assert analyzer.active == 1
    decisions = _traffic(analyzer, v7, v8, 3_000, now_ms + 20, slow=2.0, seed=1)
    assert len(decisions) == 1
    decision = decisions[0]
    verdict = decision.verdict
    assert verdict.result.outcome is Outcome.FAIL and verdict.result.look == 1
    assert "latency_p95_ms" in verdict.result.failed_metrics
    assert verdict.action == CanaryAction.ROLLED_BACK
    rollback = decision.rollback
    assert rollback is not None and rollback.action is MoveAction.AUTO_ROLLBACK
    assert [(a.version, a.weight) for a in rollback.arms] == [(v7, 100)]
    assert rollback.revision == 3 and "latency_p95_ms" in rollback.reason
    assert decision.alert is not None and "latency_p95_ms" in decision.alert.description
    # Replay: the analyzer sees its own rollback come back; nothing more to judge or roll back.
    analyzer.apply_registry(rollback)
    assert analyzer.active == 0
    assert _traffic(analyzer, v7, v8, 1_000, now_ms + 5_000, slow=2.0, seed=2) == []


def test_a_replay_of_the_registry_after_the_rollback_starts_no_analysis(now_ms: int) -> None:
    analyzer, v7, v8 = _analyzer(load_policy(DEFAULT_POLICY_FILE), now_ms)
    (decision,) = _traffic(analyzer, v7, v8, 3_000, now_ms + 20, slow=2.0, seed=3)
    assert decision.rollback is not None
    replay, _v7, _v8 = _analyzer(load_policy(DEFAULT_POLICY_FILE), now_ms)
    replay.apply_registry(decision.rollback)
    assert replay.active == 0
    assert _traffic(replay, v7, v8, 3_000, now_ms + 20, slow=2.0, seed=3) == []


def test_with_act_false_it_alerts_with_the_rollback_command(now_ms: int) -> None:
    policy = load_policy(DEFAULT_POLICY_FILE).model_copy(update={"act": False})
    analyzer, v7, v8 = _analyzer(policy, now_ms)
    (decision,) = _traffic(analyzer, v7, v8, 3_000, now_ms + 20, slow=2.0, seed=4)
    assert decision.rollback is None
    assert decision.verdict.action == CanaryAction.ALERT
    assert decision.alert is not None
    assert decision.alert.runbook == rollback_command(NAME, "production")


def test_rows_from_before_the_move_are_ignored(now_ms: int) -> None:
    analyzer, v7, v8 = _analyzer(load_policy(DEFAULT_POLICY_FILE), now_ms)
    assert _traffic(analyzer, v7, v8, 3_000, now_ms - 10_000_000, slow=2.0, seed=5) == []
    run = analyzer.runs[(NAME, "production")]
    assert run.canary.calls == 0 and run.baseline.calls == 0


def test_an_equal_canary_passes_its_looks(now_ms: int) -> None:
    analyzer, v7, v8 = _analyzer(load_policy(DEFAULT_POLICY_FILE), now_ms)
    decisions = _traffic(analyzer, v7, v8, 5_000, now_ms + 20, slow=1.0, seed=6)
    outcomes = [d.verdict.result.outcome for d in decisions]
    assert len(outcomes) >= 3
    assert Outcome.FAIL not in outcomes and all(d.rollback is None for d in decisions)


def test_labels_the_policy_does_not_watch_are_not_analysed(now_ms: int) -> None:
    policy = load_policy(DEFAULT_POLICY_FILE).model_copy(update={"labels": ("staging",)})
    analyzer, _v7, _v8 = _analyzer(policy, now_ms)
    assert analyzer.active == 0


@pytest.mark.parametrize("slow", [2.0])
def test_a_verdict_record_becomes_one_verdict_row_and_a_row_per_metric(now_ms, slow) -> None:
    analyzer, v7, v8 = _analyzer(load_policy(DEFAULT_POLICY_FILE), now_ms)
    (decision,) = _traffic(analyzer, v7, v8, 3_000, now_ms + 20, slow=slow, seed=7)
    tables = decode_canary(decision.verdict.to_json())
    (verdict,) = tables[CANARY_VERDICTS_TABLE]
    assert verdict["verdict"] == "fail" and verdict["action"] == "rolled_back"
    metrics = {row["metric"]: row for row in tables[CANARY_METRICS_TABLE]}
    assert set(metrics) == {rule.name for rule in analyzer.policy.metrics}
    latency = metrics["latency_p95_ms"]
    assert latency["verdict"] == "fail"
    assert latency["canary_value"] > 1.5 * latency["baseline_value"]
    assert latency["diff_low"] > 0
    # Scores never arrived: waiting, with an unbounded (NULL) interval.
    assert metrics["score:relevance"]["verdict"] == "waiting"
    assert metrics["score:relevance"]["diff_low"] is None


def _mix_rows(version: str, n: int, start: int, pricey_share: float, factor: float, seed: int):
    rng = np.random.default_rng(seed)
    for i in range(n):
        pricey = rng.random() < pricey_share
        price = 0.004 if pricey else 0.0004
        yield {
            "prompt_name": NAME,
            "prompt_version": version,
            "request_model": "big" if pricey else "small",
            "start_time": start + i,
            "duration_ms": float(rng.lognormal(np.log(800), 0.5)),
            "status": "ok",
            "cost_usd": float(rng.lognormal(np.log(price), 0.3) * factor),
        }


@pytest.mark.parametrize(
    ("canary_pricey_share", "factor", "expected"),
    [
        (
            0.6,
            1.0,
            {Outcome.PASS, Outcome.MARGINAL},
        ),  # same prices, pricier mix: not the prompt's fault
        (0.3, 2.0, {Outcome.FAIL}),  # twice the cost on every model
    ],
)
def test_cost_is_compared_model_by_model(now_ms, canary_pricey_share, factor, expected) -> None:
    policy = load_policy(DEFAULT_POLICY_FILE)
    analyzer, v7, v8 = _analyzer(policy, now_ms)
    for row in _mix_rows(v7, 2_000, now_ms + 20, 0.3, 1.0, seed=8):
        analyzer.add_call(row)
    for row in _mix_rows(v8, 200, now_ms + 20, canary_pricey_share, factor, seed=9):
        analyzer.add_call(row)
    (decision,) = analyzer.due()
    cost = next(m for m in decision.verdict.result.metrics if m.metric == "cost_per_request_usd")
    assert cost.outcome in expected, cost
    assert cost.canary_n == 200
