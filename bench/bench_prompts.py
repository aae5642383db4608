"""Latency of ``watch.prompts.get(...)`` (``producers.prompts.client``) and of one canary look.

Run: ``.venv/bin/python -m bench.bench_prompts``. Prints p50/p99/max and writes
``bench/results/prompts.json``:
- ``get``: a label split 90/10 between two versions, a key per call (the sticky split's hash), two
  variables rendered, served from memory (no broker: the registry is folded in directly, as the
  client's thread would). Every call is timed with ``perf_counter_ns`` after a warm-up.
- ``look``: one ``judge_look`` of the default policy at 1,600 canary and 14,400 baseline calls (the rank
  tests' sort dominates): the canary analysis's cost per look.
One thread of this shared 2-core machine: compare runs, do not read them as absolutes.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Final

import numpy as np

from producers.prompts.client import PromptClient
from producers.prompts.records import PromptVersionRecord
from producers.prompts.registry import RegistryState
from streams.prompts.arms import ArmMetrics
from streams.prompts.policy import DEFAULT_POLICY_FILE, load_policy
from streams.prompts.verdict import MetricMemory, judge_look

RESULTS: Final = Path(__file__).resolve().parent / "results" / "prompts.json"
CALLS: Final = 20_000
LOOKS: Final = 20


def _client() -> PromptClient:
    now = int(time.time() * 1000)
    template = "You are a support agent.\n\nOrder: {{ order }}\nCustomer: {{ question }}"
    v1 = PromptVersionRecord.create(name="bot", template=template, created_at_ms=now)
    v2 = PromptVersionRecord.create(
        name="bot", template=template + "\nBe brief.", created_at_ms=now
    )
    state = RegistryState()
    state.apply_all([v1, v2])
    records = [v1, v2]
    for ref, weight in (("1", 100), ("2", 10)):
        move = state.plan_label("bot", ref, "production", weight=weight, moved_by="", reason="",
                                now_ms=now)  # fmt: skip
        state.apply(move)
        records.append(move)
    client = PromptClient("127.0.0.1:1", None)
    client._apply(records, 0)  # what the reader thread does with the topic's records
    return client


def _get_times_us(client: PromptClient) -> np.ndarray:
    variables = {"order": "#1042, shipped", "question": "where is my parcel?"}
    for i in range(1_000):
        client.get("bot", key=f"user-{i}", variables=variables)
    out = np.empty(CALLS)
    for i in range(CALLS):
        start = time.perf_counter_ns()
        client.get("bot", key=f"user-{i}", variables=variables)
        out[i] = (time.perf_counter_ns() - start) / 1e3
    return out


def _look_times_ms() -> np.ndarray:
    rng = np.random.default_rng(1)
    policy = load_policy(DEFAULT_POLICY_FILE)
    arms = []
    for n in (1_600, 14_400):
        arm = ArmMetrics("x" * 12)
        for i in range(n):
            arm.add_call({
                "status": "ok", "duration_ms": float(rng.lognormal(6.7, 0.5)),
                "time_to_first_token_ms": float(rng.lognormal(5.7, 0.4)),
                "cost_usd": float(rng.lognormal(-6.2, 0.6)), "output_tokens": 200 + i % 50,
                "request_model": "m",
            })  # fmt: skip
        arms.append(arm)
    out = np.empty(LOOKS)
    for i in range(LOOKS):
        start = time.perf_counter_ns()
        judge_look(policy, 5, arms[0], arms[1], MetricMemory())
        out[i] = (time.perf_counter_ns() - start) / 1e6
    return out


def _summary(values: np.ndarray, unit: str) -> dict[str, float | str]:
    return {
        "unit": unit,
        "p50": round(float(np.percentile(values, 50)), 2),
        "p99": round(float(np.percentile(values, 99)), 2),
        "max": round(float(values.max()), 2),
    }


def main() -> None:
    client = _client()
    try:
        result = {
            "machine": platform.machine(),
            "get": _summary(_get_times_us(client), "us"),
            "look": _summary(_look_times_ms(), "ms"),
        }
    finally:
        client.close()
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
