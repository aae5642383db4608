"""Prompt-registry, canary and per-version call rows for the Prompts dashboard's tests.

A fixed plan over ``[start, end)``; every time is a fraction of the range (callers pass "now" as
``end``, so TTLs hold), except the prompt ``triage``, whose one move is an hour before ``start`` (a
label state carried into the range):
- prompt :data:`PROMPT` (support-bot's prompt in the traffic simulator): versions #1, #2, #3 pushed at
  1%, 15% and 35%. Label ``production``: set #1 (5%), set #2 (20%), split #2 90% / #3 10% with #3 as
  canary (40%), auto-rollback to #2 30 s after the failing look (80%). Label ``staging``: set #3 (36%).
- the canary of revision 3 is looked at four times (50, 60, 70, 80%): waiting, pass, marginal (latency),
  fail (latency and cost, action rolled_back), with eight metrics per look (:data:`METRIC_PLAN`). The
  verdicts are this plan, not the analysis of the calls below.
- calls: the traffic simulator's support-bot alone, its version per user from the production label in
  force (the SDK's sticky split, ``producers.prompts.split.choose_arm``), #3 slower and wordier
  (``PromptVersionSwitch``), through the worker's ingest, cost and rollup code into ``llm_rollup_1m``
  (not ``llm_calls``); one judge score ``relevance`` per LLM call, lower for #3.
Registry and canary rows go through the sink's decoders (``streams.prompts.records``) and every row
through the sink's ``insert_rows``. Deterministic; the label moves and the first look are inserted
twice (a replay, collapsed by FINAL). Source offsets start at :data:`OFFSET_BASE`, clear of ``seed``'s.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from producers.prompts.records import LabelArm, LabelMove, MoveAction, PromptVersionRecord
from producers.prompts.split import choose_arm
from producers.simulator import PromptVersionSwitch, ResolvedPrompt, Simulator
from producers.simulator.catalog import default_scenario
from producers.wire import encode_batch
from sinks.rows import insert_rows
from streams.analytics.record import RecordAnalytics
from streams.analytics.rollups import ROLLUP_1M_FIELDS, ROLLUP_TABLE
from streams.evaluation.items import SCORE_FIELDS, Score, ScoreSource
from streams.ingest.validate import SourcePosition, ingest_record
from streams.prompts.records import (
    CANARY_METRIC_FIELDS,
    CANARY_VERDICT_FIELDS,
    PROMPT_FIELDS,
    PROMPT_LABEL_FIELDS,
    CanaryAction,
    CanaryVerdict,
    decode_canary,
    decode_registry,
)
from streams.prompts.verdict import LookResult, MetricResult, Outcome
from streams.storage import (
    CANARY_METRICS_TABLE,
    CANARY_VERDICTS_TABLE,
    PROMPT_LABELS_TABLE,
    PROMPTS_TABLE,
    SCORES_TABLE,
)

__all__ = [
    "CANARY_REVISION",
    "DRAFTS",
    "LOOKS",
    "METRIC_PLAN",
    "OTHER_PROMPT",
    "PROMPT",
    "PromptSeed",
    "prompt_plan",
    "seed_prompt_tables",
]

PROMPT: Final = "support-answer"
OTHER_PROMPT: Final = "triage"
SERVICE: Final = "support-bot"
PRODUCTION: Final = "production"
STAGING: Final = "staging"
CANARY_WEIGHT: Final = 10
CANARY_REVISION: Final = 3
ROBOT: Final = "llmwatch-canary"
SEED: Final = 23
DRAFTS: Final = ("first", "second", "third")
EVENTS: Final = 900
BATCH: Final = 25
TOPIC: Final = "llmwatch.events"
OFFSET_BASE: Final = 1_000_000
JUDGE: Final = "gpt-4o-mini"
ALPHA: Final = 0.01
# Mean judge score of each version's answers (#1, #2, #3).
SCORE_MEANS: Final = (3.9, 4.3, 3.0)
# Looks: (fraction of the range, canary calls, verdict); the rollback follows the last by 30 s.
LOOKS: Final = (
    (0.50, 20, Outcome.WAITING),
    (0.60, 50, Outcome.PASS),
    (0.70, 100, Outcome.MARGINAL),
    (0.80, 200, Outcome.FAIL),
)
ROLLBACK_DELAY: Final = timedelta(seconds=30)
# Per metric: baseline value, the canary's value at each look, and its outcome at looks 2-4.
PASSING: Final = (Outcome.PASS, Outcome.PASS, Outcome.PASS)
FAILS_LAST: Final = (Outcome.PASS, Outcome.PASS, Outcome.FAIL)
METRIC_PLAN: Final[dict[str, tuple[float, tuple[float, ...], tuple[Outcome, ...]]]] = {
    "latency_p95_ms": (1200.0, (1300, 1350, 1600, 2100), (Outcome.PASS, Outcome.MARGINAL, Outcome.FAIL)),
    "ttft_p95_ms": (350.0, (360, 365, 370, 372), PASSING),
    "error_rate": (0.010, (0.012, 0.011, 0.010, 0.011), PASSING),
    "rate_limit_rate": (0.002, (0.0, 0.002, 0.002, 0.003), PASSING),
    "cost_per_request_usd": (0.0021, (0.0024, 0.0025, 0.0026, 0.0031), FAILS_LAST),
    "output_tokens": (220.0, (260, 270, 272, 275), PASSING),
    "guardrail_hit_rate": (0.01, (0.01, 0.012, 0.011, 0.01), PASSING),
    "score:relevance": (4.3, (4.0, 4.1, 4.05, 4.0), PASSING),
}  # fmt: skip
# Half-width of the difference's interval at looks 2-4, relative to the baseline (look 1: unbounded).
HALF_WIDTHS: Final = (0.40, 0.25, 0.15)
P_VALUES: Final = {Outcome.PASS: 0.9, Outcome.MARGINAL: 0.05, Outcome.FAIL: 0.0004}


@dataclass(frozen=True)
class PromptSeed:
    """What was inserted: the plan's records, the simulated call rows and scores, rows per table."""

    start: datetime
    end: datetime
    versions: tuple[PromptVersionRecord, ...]  # PROMPT's #1, #2, #3, then OTHER_PROMPT's
    moves: tuple[LabelMove, ...]
    verdicts: tuple[CanaryVerdict, ...]
    calls: tuple[dict[str, Any], ...] = ()
    scores: tuple[Score, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)

    def version(self, number: int) -> str:
        """The id of PROMPT's version ``#number``."""
        return self.versions[number - 1].version


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _at(start: datetime, end: datetime, fraction: float) -> datetime:
    return start + (end - start) * fraction


def _versions(start: datetime, end: datetime) -> tuple[PromptVersionRecord, ...]:
    """PROMPT's drafts (their ids sort third, first, second: numbering must follow push order)."""
    made = [
        PromptVersionRecord.create(
            name=PROMPT,
            template=f"You are the shop's support assistant ({draft} draft). Answer from the order "
            "record: {{ order_record }}\nCustomer: {{ question }}",
            model="gpt-4o-mini",
            params={"temperature": 0.3},
            description=f"{draft} draft",
            created_at_ms=_ms(_at(start, end, at)),
            created_by="alice",
        )
        for draft, at in zip(DRAFTS, (0.01, 0.15, 0.35), strict=True)
    ]
    other = PromptVersionRecord.create(
        name=OTHER_PROMPT,
        template="Classify the ticket: {{ ticket }}",
        created_at_ms=_ms(start - timedelta(hours=2)),
        created_by="carol",
    )
    return (*made, other)


def _move(
    name: str, label: str, revision: int, arms: Sequence[tuple[str, int]], **fields: Any
) -> LabelMove:
    return LabelMove(
        name=name,
        label=label,
        revision=revision,
        arms=tuple(LabelArm(version=v, weight=w) for v, w in arms),
        **fields,
    )


def _moves(
    start: datetime, end: datetime, versions: Sequence[PromptVersionRecord]
) -> tuple[LabelMove, ...]:
    v1, v2, v3, other = (record.version for record in versions)

    def at(fraction: float) -> int:
        return _ms(_at(start, end, fraction))

    split = ((v2, 100 - CANARY_WEIGHT), (v3, CANARY_WEIGHT))
    previous_split = tuple(LabelArm(version=v, weight=w) for v, w in split)
    rollback_at = _ms(_at(start, end, LOOKS[-1][0]) + ROLLBACK_DELAY)
    set_ = MoveAction.SET
    return (
        _move(PROMPT, PRODUCTION, 1, [(v1, 100)], action=set_, moved_at_ms=at(0.05),
              moved_by="alice", reason="first release"),
        _move(PROMPT, PRODUCTION, 2, [(v2, 100)], action=set_, moved_at_ms=at(0.20),
              moved_by="alice", reason="shorter answers", previous=(LabelArm(version=v1, weight=100),)),
        _move(PROMPT, PRODUCTION, 3, split, canary=v3, action=MoveAction.SPLIT, moved_at_ms=at(0.40),
              moved_by="bob", reason="canary the friendlier rewrite",
              previous=(LabelArm(version=v2, weight=100),)),
        _move(PROMPT, PRODUCTION, 4, [(v2, 100)], action=MoveAction.AUTO_ROLLBACK,
              moved_at_ms=rollback_at, moved_by=ROBOT,
              reason="canary failed: latency_p95_ms, cost_per_request_usd",
              previous=previous_split, previous_canary=v3),
        _move(PROMPT, STAGING, 1, [(v3, 100)], action=set_, moved_at_ms=at(0.36), moved_by="bob",
              reason="try the rewrite"),
        _move(OTHER_PROMPT, PRODUCTION, 1, [(other, 100)], action=set_,
              moved_at_ms=_ms(start - timedelta(hours=1)), moved_by="carol", reason="first release"),
    )  # fmt: skip


def _metric(name: str, look: int, canary_n: int) -> MetricResult:
    baseline, canary, outcomes = METRIC_PLAN[name]
    value = float(canary[look - 1])
    if look == 1:
        outcome = Outcome.WAITING
        low, high, p_value = -math.inf, math.inf, 1.0
    else:
        outcome = outcomes[look - 2]
        half = baseline * HALF_WIDTHS[look - 2]
        low, high, p_value = value - baseline - half, value - baseline + half, P_VALUES[outcome]
    baseline_n = canary_n * (100 - CANARY_WEIGHT) // CANARY_WEIGHT
    return MetricResult(name, canary_n, baseline_n, value, baseline, low, high, p_value, outcome)


def _verdicts(
    start: datetime, end: datetime, versions: Sequence[PromptVersionRecord]
) -> tuple[CanaryVerdict, ...]:
    made = []
    for look, (fraction, calls, outcome) in enumerate(LOOKS, start=1):
        metrics = tuple(_metric(name, look, calls) for name in METRIC_PLAN)
        judged = [m for m in metrics if m.outcome is not Outcome.WAITING]
        score = (
            100.0 * sum(m.outcome is Outcome.PASS for m in judged) / len(judged) if judged else 0.0
        )
        failed = outcome is Outcome.FAIL
        made.append(
            CanaryVerdict(
                name=PROMPT,
                label=PRODUCTION,
                revision=CANARY_REVISION,
                canary_version=versions[2].version,
                baseline_version=versions[1].version,
                canary_weight=CANARY_WEIGHT,
                canary_calls=calls,
                baseline_calls=calls * (100 - CANARY_WEIGHT) // CANARY_WEIGHT,
                evaluated_at=_ms(_at(start, end, fraction)),
                alpha=ALPHA,
                result=LookResult(look, outcome, score, metrics),
                action=CanaryAction.ROLLED_BACK if failed else CanaryAction.NONE,
            )
        )
    return tuple(made)


def prompt_plan(start: datetime, end: datetime) -> PromptSeed:
    """The registry and canary part of the plan (no I/O, no simulation)."""
    versions = _versions(start, end)
    return PromptSeed(
        start, end, versions, _moves(start, end, versions), _verdicts(start, end, versions)
    )


@dataclass(frozen=True, slots=True)
class _LabelPrompts:
    """support-bot's version per user from one production label state, as ``watch.prompts.get``."""

    move: LabelMove
    slow: str

    @property
    def weak_versions(self) -> frozenset[str]:
        return frozenset({self.slow})

    def resolve(self, service: str, user_id: str) -> ResolvedPrompt | None:
        if service != SERVICE:
            return None
        arm = choose_arm(self.move, user_id)
        variant = "canary" if arm.version == self.move.canary else self.move.label
        effects = (PromptVersionSwitch(arm.version),) if arm.version == self.slow else ()
        return ResolvedPrompt(
            name=self.move.name, version=arm.version, variant=variant, effects=effects
        )


def _segments(plan: PromptSeed) -> Iterator[tuple[LabelMove, datetime, datetime]]:
    """(production state, from, to): each move's state until the next move (the last to end - 2 min)."""
    production = [m for m in plan.moves if m.name == PROMPT and m.label == PRODUCTION]
    times = [datetime.fromtimestamp(m.moved_at_ms / 1000, plan.start.tzinfo) for m in production]
    ends = [*times[1:], plan.end - timedelta(minutes=2)]
    yield from zip(production, times, ends, strict=True)


def _simulate(plan: PromptSeed) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(call rows, rollup rows) of support-bot's traffic under each production state."""
    analytics = RecordAnalytics()
    fleet = default_scenario(incident_start=None)
    support = tuple(s for s in fleet.services if s.name == SERVICE)
    calls: list[dict[str, Any]] = []
    rollups: list[dict[str, Any]] = []
    offset = OFFSET_BASE
    span = (plan.end - plan.start).total_seconds()
    for index, (move, begin, finish) in enumerate(_segments(plan)):
        source = _LabelPrompts(move, plan.version(3))
        scenario = dataclasses.replace(fleet, services=support, prompts=source)
        count = round(EVENTS * (finish - begin).total_seconds() / span)
        events = list(Simulator(SEED + index, scenario).events(count, begin, finish))
        for first in range(0, len(events), BATCH):
            batch = events[first : first + BATCH]
            sent = _ms(max(e.end_time for e in batch)) + 80
            position = SourcePosition(TOPIC, offset % 3, offset)
            value = encode_batch([e.to_wire() for e in batch], sent)
            result = ingest_record(value, position, record_ms=sent, cost_fn=analytics.cost_fields)
            stamp = {"ingested_at": sent + 500}
            calls += result.rows
            rollups += [
                {**{k: r[k] for k in ROLLUP_1M_FIELDS}, **stamp}
                for r in analytics.rollups(result.rows, position).rollup_1m
            ]
            offset += 1
    return calls, rollups


def _scores(calls: Sequence[dict[str, Any]], plan: PromptSeed) -> list[Score]:
    rng = random.Random(SEED)
    means = {plan.version(n): mean for n, mean in enumerate(SCORE_MEANS, start=1)}
    scores = []
    for call in calls:
        if call["span_kind"] != "llm" or call["prompt_version"] not in means:
            continue
        value = min(5, max(1, round(rng.gauss(means[call["prompt_version"]], 0.5))))
        fields = {
            k: call[k]
            for k in ("event_id", "trace_id", "span_id", "response_id", "service", "environment")
        }
        fields.update(
            {k: call[k] for k in ("provider_name", "prompt_name", "prompt_version", "variant")}
        )
        scores.append(
            Score(
                name="relevance",
                source=ScoreSource.JUDGE,
                evaluator=JUDGE,
                score_value=value,
                label="pass" if value >= 3 else "fail",
                explanation="seeded",
                model=call["request_model"] or call["response_model"],
                judge_model=JUDGE,
                judge_family="openai",
                min_kappa=0.4,
                cost_usd=0.0004,
                start_time_ms=call["start_time"],
                scored_at_ms=call["end_time"] + 2_000,
                **fields,
            )
        )
    return scores


FIELDS: Final[dict[str, Sequence[str]]] = {
    PROMPTS_TABLE: PROMPT_FIELDS,
    PROMPT_LABELS_TABLE: PROMPT_LABEL_FIELDS,
    CANARY_VERDICTS_TABLE: CANARY_VERDICT_FIELDS,
    CANARY_METRICS_TABLE: CANARY_METRIC_FIELDS,
}


def _insert(
    client: Client, database: str, table: str, rows: list[dict[str, Any]], columns: Sequence[str]
) -> int:
    return insert_rows(client, database, table, rows, list(columns)) if rows else 0


def _insert_records(
    client: Client,
    database: str,
    registry: Sequence[PromptVersionRecord | LabelMove],
    canary: Sequence[CanaryVerdict],
) -> Counter[str]:
    """The records' rows as the sink decodes them, one insert per table; rows per table."""
    decoded = [decode_registry(r.to_json()) for r in registry]
    decoded += [decode_canary(v.to_json()) for v in canary]
    counts: Counter[str] = Counter()
    for table, columns in FIELDS.items():
        rows = [row for tables in decoded for row in tables.get(table, [])]
        counts[table] = _insert(client, database, table, rows, columns)
    return counts


def seed_prompt_tables(client: Client, database: str, start: datetime, end: datetime) -> PromptSeed:
    """Insert the plan's rows (migration 0011 must be applied); see the module docstring."""
    plan = prompt_plan(start, end)
    counts = _insert_records(client, database, [*plan.versions, *plan.moves], plan.verdicts)
    counts += _insert_records(client, database, plan.moves, plan.verdicts[:1])  # a replay
    calls, rollups = _simulate(plan)
    scores = _scores(calls, plan)
    rollup_columns = [*ROLLUP_1M_FIELDS, "ingested_at"]
    counts[f"{ROLLUP_TABLE}:prompts"] = _insert(
        client, database, ROLLUP_TABLE, rollups, rollup_columns
    )
    counts[f"{SCORES_TABLE}:prompts"] = _insert(
        client, database, SCORES_TABLE, [s.row() for s in scores], SCORE_FIELDS
    )
    return dataclasses.replace(plan, calls=tuple(calls), scores=tuple(scores), counts=dict(counts))
