"""Declarative judge sampling: file validation with errors naming file, rule, field and value; sampling
deterministic by trace id (same rate = same traces, lower rate = subset, binomial rate); filters,
triggers, applicability; per-rule and overall budgets on a fake clock; the bundled example file."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from streams.evaluation.sampling import OVERALL, Candidate, Decision, Sampler, trace_fraction
from streams.evaluation.sampling_rules import (
    DEFAULT_SAMPLING_FILE,
    SamplingConfig,
    SamplingError,
    load_sampling,
    parse_sampling,
)

RUBRICS = frozenset({"relevance", "groundedness", "correctness", "toxicity", "refusal"})
METRICS = frozenset({"bleu", "chrf", "exact"})
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
N_IDS = 20_000


class Clock:
    """A clock the test advances by hand."""

    def __init__(self, start_ms: int = 1_000_000) -> None:
        self.now = start_ms

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def _ids(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(128):032x}" for _ in range(n)]


def _config(rules: str, budget: str = "") -> SamplingConfig:
    return parse_sampling(f"version: 1\n{budget}rules:\n{rules}", "test.yaml", RUBRICS, METRICS)


def _sampler(
    config: SamplingConfig, clock: Clock | None = None, cost: float = 0.01, **kwargs: object
) -> Sampler:
    return Sampler(
        config,
        cost_of=lambda call, rubrics: cost * len(rubrics),
        clock_ms=clock or Clock(),
        **kwargs,  # type: ignore[arg-type]
    )


def _call(trace_id: str = "t-1", **fields: Any) -> Candidate:
    return Candidate(trace_id=trace_id, service=fields.pop("service", "chat"), **fields)


# --- the file --------------------------------------------------------------------------------------

GOOD_RULE = "  - name: chat\n    rate: 0.1\n    rubrics: [relevance]\n"


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            "  - name: chat\n    rate: 1.5\n    rubrics: [relevance]\n",
            ["rules[0] (name='chat')", "rate", "1.5"],
        ),
        (
            GOOD_RULE + "  - name: rag\n    match: {servise: chat}\n    rate: 0.1\n"
            "    rubrics: [relevance]\n",
            [
                "rules[1] (name='rag')",
                "match",
                "unknown filter key 'servise'",
                "valid keys: service",
            ],
        ),
        (
            "  - name: chat\n    rate: 0.1\n    rubrics: [relevence]\n",
            ["rules[0] (name='chat')", "rubrics", "'relevence'", "correctness, groundedness"],
        ),
        (
            "  - name: chat\n    rate: 0.1\n    metrics: [rouge]\n",
            ["rules[0] (name='chat')", "metrics", "'rouge'", "bleu, chrf, exact"],
        ),
        (GOOD_RULE + GOOD_RULE, ["duplicate rule name 'chat'", "rules[0] and rules[1]"]),
        (
            "  - name: errs\n    always: [errors]\n    rubrics: [refusal]\n",
            ["rules[0] (name='errs')", "always.0", "'errors'", "'guardrail'"],
        ),
        ("  []\n", ["rules", "at least one rule"]),
        (
            "  - name: chat\n    rubrics: [relevance]\n",
            ["rules[0] (name='chat')", "needs a rate", "got neither"],
        ),
        ("  - name: chat\n    rate: 0.1\n", ["rules[0] (name='chat')", "needs rubrics or metrics"]),
        (
            "  - name: chat\n    match: {service: 'ch*'}\n    rate: 0.1\n    rubrics: [relevance]\n",
            ["rules[0] (name='chat')", "match.service", "service='ch*'"],
        ),
        (
            "  - name: chat\n    match: {model: 'gpt*-mini'}\n    rate: 0.1\n    rubrics: [relevance]\n",
            ["match.model", "'gpt*-mini'"],
        ),
        (
            "  - name: chat\n    match: {span_kind: [llm, lmm]}\n    rate: 0.1\n"
            "    rubrics: [relevance]\n",
            ["match.span_kind", "'lmm'", "retrieval"],
        ),
        (
            "  - name: chat\n    match: {status: failed}\n    rate: 0.1\n    rubrics: [relevance]\n",
            ["match.status", "'failed'", "ok, error"],
        ),
        (
            "  - name: chat\n    match: {prompt_version: 1.10}\n    rate: 0.1\n"
            "    rubrics: [relevance]\n",
            ["match.prompt_version", "quote", "1.1"],
        ),
        (
            "  - name: chat\n    match: {service: []}\n    rate: 0.1\n    rubrics: [relevance]\n",
            ["match.service", "empty list"],
        ),
        (
            "  - name: chat\n    rate: 0.1\n    rubrics: [relevance]\n    budget: {}\n",
            ["rules[0] (name='chat')", "budget", "got neither"],
        ),
        (
            "  - name: chat\n    rate: 0.1\n    rubrics: [relevance]\n"
            "    budget: {calls_per_minute: 0}\n",
            ["rules[0] (name='chat')", "budget.calls_per_minute", "got 0"],
        ),
        (
            "  - name: overall\n    rate: 0.1\n    rubrics: [relevance]\n",
            ["rules[0] (name='overall')", "reserved"],
        ),
        (
            "  - name: Chat Rule\n    rate: 0.1\n    rubrics: [relevance]\n",
            ["rules[0] (name='Chat Rule')", "name", "'Chat Rule'"],
        ),
    ],
)
def test_bad_files_are_refused_naming_file_rule_field_and_value(
    tmp_path: Path, rules: str, expected: list[str]
) -> None:
    path = tmp_path / "sampling.yaml"
    path.write_text(f"version: 1\nrules:\n{rules}", encoding="utf-8")
    with pytest.raises(SamplingError) as info:
        load_sampling(path, RUBRICS, METRICS)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for fragment in expected:
        assert fragment in message, message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nrules: [\n", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping with 'version' and 'rules', got ['a', 'b']"),
        (f"version: 2\nrules:\n{GOOD_RULE}", "version: Input should be 1, got 2"),
        (
            f"version: 1\nbudget: {{usd_per_hour: -2}}\nrules:\n{GOOD_RULE}",
            "file: budget.usd_per_hour: Input should be greater than 0, got -2",
        ),
    ],
)
def test_bad_file_shapes_are_refused(text: str, expected: str) -> None:
    with pytest.raises(SamplingError, match=r"^where\.yaml: ") as info:
        parse_sampling(text, "where.yaml")
    assert expected in str(info.value)


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SamplingError, match=r"missing\.yaml: cannot read the sampling file"):
        load_sampling(tmp_path / "missing.yaml")


def test_names_are_checked_only_when_known_names_are_given() -> None:
    text = "version: 1\nrules:\n  - name: x\n    rate: 0.5\n    rubrics: [anything, anything]\n"
    config = parse_sampling(text)
    assert config.rules[0].rubrics == ("anything",)  # repeats dropped
    with pytest.raises(SamplingError, match="unknown rubric 'anything'"):
        parse_sampling(text, known_rubrics=RUBRICS)


def test_filter_values_are_normalized_to_tuples() -> None:
    config = _config(
        "  - name: x\n    match: {service: chat, prompt_version: [2, '2.1'], model: 'gpt-4o*'}\n"
        "    always: [error, error]\n    rubrics: [relevance]\n"
    )
    rule = config.rules[0]
    assert rule.match.service == ("chat",)
    assert rule.match.prompt_version == ("2", "2.1")
    assert rule.always == ("error",)
    assert rule.rate == 0.0


# --- determinism -----------------------------------------------------------------------------------


def test_trace_fraction_is_a_fixed_function_of_the_trace_id() -> None:
    # Fixed values: a change of hash would resample every trace and break cross-process agreement.
    assert trace_fraction("4bf92f3577b34da6a3ce929d0e0e4736") == 0.15039768000230236
    assert trace_fraction("") == 0.8931675160897388
    fractions = [trace_fraction(t) for t in _ids(1_000)]
    assert all(0.0 <= f < 1.0 for f in fractions)
    assert len(set(fractions)) == len(fractions)


def _chosen(rate: float, ids: list[str]) -> set[str]:
    sampler = _sampler(_config(f"  - name: r\n    rate: {rate}\n    rubrics: [relevance]\n"))
    return {t for t in ids if sampler.decide(_call(t)) is not None}


def test_lower_rates_choose_subsets_and_repeat_exactly() -> None:
    ids = _ids(5_000)
    low, mid, high = _chosen(0.02, ids), _chosen(0.1, ids), _chosen(0.4, ids)
    assert low < mid < high
    assert _chosen(0.1, ids) == mid
    assert _chosen(0.0, ids) == set()
    assert _chosen(1.0, ids) == set(ids)


def test_rules_with_the_same_rate_choose_the_same_traces() -> None:
    config = _config(
        "  - name: a\n    match: {service: chat}\n    rate: 0.15\n    rubrics: [relevance]\n"
        "  - name: b\n    match: {model: 'gpt*'}\n    rate: 0.15\n    rubrics: [toxicity]\n"
    )
    sampler = _sampler(config)
    decisions = [sampler.decide(_call(t, model="gpt-4o")) for t in _ids(3_000)]
    fired = [d for d in decisions if d is not None]
    assert fired
    assert all(d.rules == ("a", "b") and d.rubrics == ("relevance", "toxicity") for d in fired)


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.5])
def test_observed_rate_is_within_binomial_tolerance(rate: float) -> None:
    chosen = len(_chosen(rate, _ids(N_IDS, seed=11)))
    sd = math.sqrt(N_IDS * rate * (1 - rate))
    assert abs(chosen - N_IDS * rate) < 4 * sd, (chosen, N_IDS * rate, sd)


def test_fractions_are_uniform_over_ten_bins() -> None:
    counts = [0] * 10
    for t in _ids(N_IDS, seed=3):
        counts[int(trace_fraction(t) * 10)] += 1
    expected = N_IDS / 10
    chi2 = sum((c - expected) ** 2 / expected for c in counts)
    assert chi2 < 27.88  # chi-square, 9 degrees of freedom, p = 0.001


# --- filters, triggers, applicability --------------------------------------------------------------


def test_filters_match_lists_globs_and_exact_values() -> None:
    config = _config(
        "  - name: r\n"
        "    match:\n"
        "      service: [chat, search]\n"
        "      environment: production\n"
        "      model: ['gpt-4o*', claude-3-haiku]\n"
        "      prompt_name: answer\n"
        "      prompt_version: [3]\n"
        "      span_kind: llm\n"
        "      status: ok\n"
        "    rate: 1.0\n    rubrics: [relevance]\n"
    )
    sampler = _sampler(config)
    base: dict[str, Any] = {
        "service": "search",
        "environment": "production",
        "model": "gpt-4o-mini",
        "prompt_name": "answer",
        "prompt_version": "3",
    }
    assert sampler.decide(_call(**base)) is not None
    assert sampler.decide(_call(**{**base, "model": "gpt-4o"})) is not None
    assert sampler.decide(_call(**{**base, "model": "claude-3-haiku"})) is not None
    changes: list[dict[str, Any]] = [
        {"service": "billing"},
        {"environment": "staging"},
        {"model": "gpt-4"},
        {"model": "claude-3-haiku-2"},
        {"prompt_name": None},
        {"prompt_version": "4"},
        {"span_kind": "retrieval"},
        {"status": "error"},
    ]
    for change in changes:
        assert sampler.decide(_call(**{**base, **change})) is None, change
    assert sampler.considered == 11
    assert sampler.sampled == {"r": 3}


def test_always_triggers_fire_whatever_the_rate_within_the_filter() -> None:
    config = _config(
        "  - name: errors\n    match: {environment: production}\n    always: [error]\n"
        "    rubrics: [refusal]\n"
        "  - name: guard\n    always: [guardrail, feedback]\n    rubrics: [toxicity]\n"
        "  - name: base\n    rate: 1.0\n    rubrics: [relevance]\n"
    )
    sampler = _sampler(config)
    assert sampler.decide(_call(status="error")) == Decision(
        rules=("errors", "base"),
        rubrics=("refusal", "relevance"),
        metrics=(),
        reason="always:error",
        estimated_cost_usd=pytest.approx(0.02),  # type: ignore[arg-type]
    )
    staging_error = sampler.decide(_call(status="error", environment="staging"))
    assert staging_error is not None and staging_error.rules == ("base",)
    assert staging_error.reason == "base"
    hit = sampler.decide(_call(guardrail_hit=True, negative_feedback=True))
    assert hit is not None and hit.reason == "always:guardrail" and hit.rules == ("guard", "base")
    feedback = sampler.decide(_call(negative_feedback=True))
    assert feedback is not None and feedback.reason == "always:feedback"
    only_triggers = _sampler(
        _config("  - name: g\n    always: [guardrail]\n    rubrics: [toxicity]\n")
    )
    assert all(only_triggers.decide(_call(t)) is None for t in _ids(500))


def test_rubrics_and_metrics_the_call_cannot_support_are_dropped() -> None:
    config = _config(
        "  - name: rag\n    rate: 1.0\n    rubrics: [groundedness]\n"
        "  - name: fb\n    always: [feedback]\n    rubrics: [relevance, correctness]\n"
        "    metrics: [chrf]\n"
    )
    sampler = _sampler(config)
    assert sampler.decide(_call()) is None  # no context: the RAG rule has nothing left
    rag = sampler.decide(_call(has_context=True))
    assert rag is not None and rag.rubrics == ("groundedness",)
    feedback = sampler.decide(_call(negative_feedback=True))
    assert feedback is not None
    assert (feedback.rubrics, feedback.metrics) == (("relevance",), ())
    full = sampler.decide(_call(negative_feedback=True, has_reference=True, has_context=True))
    assert full is not None
    assert full.rubrics == ("groundedness", "relevance", "correctness")
    assert full.metrics == ("chrf",)
    assert full.estimated_cost_usd == pytest.approx(0.03)
    custom = _sampler(config, applicable=lambda rubric, call: rubric == "toxicity")
    assert custom.decide(_call(negative_feedback=True)) is None


def test_a_bad_cost_is_refused_naming_it() -> None:
    sampler = Sampler(
        _config(GOOD_RULE.replace("0.1", "1.0")),
        cost_of=lambda call, rubrics: float("nan"),
        clock_ms=Clock(),
    )
    with pytest.raises(ValueError, match=r"cost_of must return .* got nan"):
        sampler.decide(_call())


# --- budgets ---------------------------------------------------------------------------------------


def test_rule_calls_cap_slides_and_is_counted_and_shown() -> None:
    clock = Clock()
    config = _config(
        "  - name: capped\n    rate: 1.0\n    rubrics: [relevance]\n"
        "    budget: {calls_per_minute: 3}\n"
        "  - name: free\n    match: {service: chat}\n    rate: 1.0\n    metrics: [exact]\n"
    )
    sampler = _sampler(config, clock)
    assert [sampler.decide(_call(f"a{i}")) is not None for i in range(2)] == [True, True]
    clock.advance(30_000)
    assert sampler.decide(_call("b0")) is not None
    assert sampler.biting() == []
    clock.advance(15_000)
    assert sampler.decide(_call("b1", service="other")) is None  # 3 in the last minute
    # The other rule still fires; the capped one is left out of the decision.
    kept = sampler.decide(_call("b2", has_reference=True))
    assert kept is not None and kept.rules == ("free",) and kept.rubrics == ()
    assert sampler.biting() == ["capped.calls_per_minute"]
    assert sampler.capped == {"capped": 2, "free": 0, OVERALL: 0}
    clock.advance(16_000)  # the two first calls have left the window; the third has not
    assert sampler.usage()["capped"]["calls_per_minute"] == 1.0
    assert [sampler.decide(_call(f"c{i}", service="x")) is not None for i in range(3)] == [
        True,
        True,
        False,
    ]
    clock.advance(MINUTE_MS)
    assert sampler.biting() == []
    assert sampler.counters() == {
        "considered": 8,
        "decided": 6,
        "sampled.capped": 5,
        "sampled.free": 1,
        "capped.capped": 3,
        "capped.free": 0,
        "capped.overall": 0,
    }


def test_rule_usd_cap_over_an_hour() -> None:
    clock = Clock()
    config = _config(
        "  - name: r\n    rate: 1.0\n    rubrics: [relevance, toxicity]\n"
        "    budget: {usd_per_hour: 1.0}\n"
    )
    sampler = _sampler(config, clock, cost=0.25)  # 0.5 USD a decision
    assert [sampler.decide(_call(f"a{i}")) is not None for i in range(3)] == [True, True, False]
    assert sampler.biting() == ["r.usd_per_hour"]
    clock.advance(HOUR_MS - MINUTE_MS)
    assert sampler.decide(_call("b")) is None
    clock.advance(MINUTE_MS + 10_000)
    assert sampler.decide(_call("c")) is not None
    assert sampler.capped["r"] == 2 and sampler.sampled["r"] == 3


def test_overall_cap_sends_nothing_and_charges_no_rule() -> None:
    clock = Clock()
    config = _config(
        "  - name: a\n    rate: 1.0\n    rubrics: [relevance]\n    budget: {calls_per_minute: 100}\n"
        "  - name: b\n    rate: 1.0\n    rubrics: [relevance, toxicity]\n",
        budget="budget: {calls_per_minute: 5, usd_per_hour: 10.0}\n",
    )
    sampler = _sampler(config, clock)
    # Each decision is one judge call per distinct rubric: 2, then 2, then 2 > 5 - 4.
    assert [sampler.decide(_call(f"a{i}")) is not None for i in range(3)] == [True, True, False]
    assert sampler.capped == {"a": 0, "b": 0, OVERALL: 1}
    assert sampler.sampled == {"a": 2, "b": 2}
    assert sampler.usage()["a"] == {"calls_per_minute": 2.0}  # the refused call is not charged
    assert sampler.usage()["overall"]["calls_per_minute"] == 4.0
    assert sampler.biting() == ["overall.calls_per_minute"]
    counters = sampler.counters()
    assert counters["capped.overall"] == 1 and counters["decided"] == 2
    clock.advance(61_000)
    assert sampler.decide(_call("later")) is not None
    assert sampler.biting() == []  # the last refusal was 61 s ago


def test_windows_stay_bounded_under_sustained_traffic() -> None:
    clock = Clock()
    config = _config(
        "  - name: r\n    rate: 1.0\n    rubrics: [relevance]\n"
        "    budget: {usd_per_hour: 1000.0, calls_per_minute: 100000}\n",
        budget="budget: {usd_per_hour: 1000.0}\n",
    )
    sampler = _sampler(config, clock, cost=0.001)
    for i in range(20_000):  # 20k calls over 2 h 47 min
        assert sampler.decide(_call(f"t{i}")) is not None
        clock.advance(500)
    usage = sampler.usage()
    # The last hour (plus at most one 10 s bucket) of 0.001 USD every 0.5 s: about 7.2 USD.
    assert 7.2 - 1e-6 <= usage["overall"]["usd_per_hour"] <= 7.22 + 1e-6
    assert 120 <= usage["r"]["calls_per_minute"] <= 122
    windows = [w for meter in sampler._meters.values() for w in meter.windows.values()]
    assert all(len(w._buckets) <= (w._buckets.maxlen or 0) for w in windows)
    assert max(len(w._buckets) for w in windows) <= 362


def test_the_bundled_example_loads_and_samples_sensibly() -> None:
    config = load_sampling(DEFAULT_SAMPLING_FILE, RUBRICS, METRICS)
    assert config.budget is not None
    assert (config.budget.usd_per_hour, config.budget.calls_per_minute) == (2.0, 60)
    assert config.rule_names == (
        "chat-relevance",
        "rag-groundedness",
        "errors",
        "guardrail-hits",
        "negative-feedback",
    )
    clock = Clock()
    sampler = _sampler(config, clock, cost=0.0001)
    chat = []
    for t in _ids(2_000):
        chat.append(sampler.decide(_call(t)))
        clock.advance(10_000)  # well under the overall 60 judge calls a minute
    share = sum(d is not None for d in chat) / len(chat)
    assert 0.07 < share < 0.13
    assert {d.rubrics for d in chat if d is not None} == {("relevance",)}
    error = sampler.decide(_call("e", status="error", service="billing"))
    assert error is not None and error.reason == "always:error" and "refusal" in error.rubrics
    with pytest.raises(SamplingError, match="unknown rubric 'groundedness'"):
        load_sampling(DEFAULT_SAMPLING_FILE, {"relevance"})


def test_triggers_only_ignores_the_rate_but_not_the_triggers() -> None:
    config = parse_sampling(
        "version: 1\nrules:\n"
        "  - name: all\n    rate: 1.0\n    rubrics: [relevance]\n"
        "  - name: feedback\n    always: [feedback]\n    rubrics: [correctness]\n"
    )
    sampler = Sampler(config, cost_of=lambda _c, _r: 0.0, clock_ms=lambda: 0)
    call = Candidate(trace_id="t", service="s", has_reference=True)
    assert sampler.decide(call, triggers_only=True) is None
    decision = sampler.decide(
        Candidate(trace_id="t", service="s", has_reference=True, negative_feedback=True),
        triggers_only=True,
    )
    assert decision is not None
    assert (decision.rules, decision.rubrics) == (("feedback",), ("correctness",))
    assert sampler.sampled["all"] == 0
