"""Deterministic LLM traffic: whole traces of :class:`~producers.events.LlmCallEvent` at injected times.

Guarantees:
- Deterministic: a :class:`Simulator` draws only from its own ``random.Random`` generators; the same
  seed, id seed, scenario and sequence of calls give identical events (ids included). The id seed
  changes ids only, never the traffic. It never reads the clock.
- Every event is built with full ``LlmCallEvent`` validation (``model_validate``, which is also faster
  than ``model_construct`` here), so no invalid event can leave the simulator.
- Trace structure: the spans of one trace share ``trace_id``; every ``parent_span_id`` names a span of
  the same trace listed earlier; children are laid out one after another strictly inside their parent's
  time range. A trace is returned parent first, in start-time order.
- :meth:`Simulator.events` yields exactly ``n`` events in non-decreasing ``start_time`` order, with trace
  starts spread evenly over ``[start, end]``; a trace's later spans and end times may run past ``end``
  by that trace's duration. The last trace may be cut short (parents are always kept).
- Incidents of the scenario apply to traces whose run progress falls in their window.

Nothing here blocks or does I/O.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Final

from producers.events import LlmCallEvent, SpanKind
from producers.simulator.catalog import default_scenario
from producers.simulator.sampling import Weighted, hex_id, lognormal, zipf_weights
from producers.simulator.scenario import CallPlan, Scenario, ServiceProfile, TraceShape
from producers.simulator.spans import ERROR_RATE_LIMIT, Draft, SpanFactory, TraceContext

__all__ = ["Simulator"]

GAP_MS: Final = 2.0  # median application overhead between spans
CHAT_RETRIEVAL_SHARE: Final = 0.6
AGENT_MAX_TOOL_STEPS: Final = 4
MAP_REDUCE_SHARE: Final = 0.3
MAP_REDUCE_MAX_CHUNKS: Final = 4
RATE_LIMIT_ATTEMPTS: Final = 3  # the app retries a 429 twice, with exponential backoff
BACKOFF_MS: Final = 500.0
SESSION_BUCKETS: Final = 200  # a user's session lasts 1/200 of the run
TENANT_SPREAD: Final = 7_919  # a prime: spreads popular users over tenants

_Shape = Callable[[TraceContext], list[Draft]]


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def _check_progress(progress: float) -> None:
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be within [0, 1], got {progress!r}")


def _materialize(drafts: list[Draft], origin: datetime) -> list[LlmCallEvent]:
    events = []
    for draft in drafts:
        fields = draft.fields
        fields["start_time"] = origin + timedelta(milliseconds=draft.start_ms)
        fields["end_time"] = origin + timedelta(milliseconds=draft.end_ms)
        events.append(LlmCallEvent.model_validate(fields))
    return events


class Simulator:
    """Generates traces for a :class:`Scenario` (the default fleet when None).

    ``seed`` fixes the traffic; ids (trace, span, event, response) come from a second generator seeded
    with ``id_seed`` (default: derived from ``seed``), so two runs can share traffic but not ids.
    """

    def __init__(
        self, seed: int, scenario: Scenario | None = None, *, id_seed: int | str | None = None
    ) -> None:
        self._rng = random.Random(seed)
        self._ids = random.Random(f"ids:{seed}" if id_seed is None else id_seed)
        self._scenario = scenario if scenario is not None else default_scenario()
        sc = self._scenario
        self._spans = SpanFactory(self._rng, self._ids)
        self._services = Weighted(sc.services, [s.weight for s in sc.services])
        self._service_models = {
            s.name: Weighted([m for m, _ in s.models], [w for _, w in s.models])
            for s in sc.services
        }
        self._models = {m.model: m for m in sc.models}
        self._users = Weighted(range(sc.users), zipf_weights(sc.users, sc.zipf_exponent))
        width = len(str(sc.users))
        self._user_ids = [f"user-{rank:0{width}d}" for rank in range(sc.users)]
        tenants = sc.tenants
        self._user_tenants = [tenants[(r * TENANT_SPREAD) % len(tenants)] for r in range(sc.users)]
        self._environments = Weighted(
            [name for name, _ in sc.environments], [w for _, w in sc.environments]
        )
        self._shapes: dict[TraceShape, _Shape] = {
            TraceShape.CHAT: self._chat,
            TraceShape.RAG: self._rag,
            TraceShape.AGENT: self._agent,
            TraceShape.SUMMARIZE: self._summarize,
        }

    @property
    def scenario(self) -> Scenario:
        return self._scenario

    def trace_at(self, ts: datetime, progress: float) -> list[LlmCallEvent]:
        """One trace whose root span starts at ``ts``, at ``progress`` (0..1) of the run."""
        _check_progress(progress)
        return _materialize(self._trace(progress), _utc(ts))

    def trace_ending_at(self, ts: datetime, progress: float) -> list[LlmCallEvent]:
        """One trace whose last span ends at ``ts`` (a trace that just finished: no future times)."""
        _check_progress(progress)
        drafts = self._trace(progress)
        duration_ms = max(draft.end_ms for draft in drafts)
        return _materialize(drafts, _utc(ts) - timedelta(milliseconds=duration_ms))

    def events(self, n: int, start: datetime, end: datetime) -> Iterator[LlmCallEvent]:
        """``n`` events from traces spread evenly over ``[start, end]``, in start-time order."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n!r}")
        start, end = _utc(start), _utc(end)
        if end < start:
            raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
        return self._spread(n, start, end)

    def _spread(self, n: int, start: datetime, end: datetime) -> Iterator[LlmCallEvent]:
        window = end - start
        pending: list[tuple[datetime, int, LlmCallEvent]] = []
        produced = 0
        while produced < n:
            fraction = produced / n
            at = start + window * fraction
            # Later traces start at or after ``at``, so everything pending before it is final.
            while pending and pending[0][0] <= at:
                yield heapq.heappop(pending)[2]
            for event in self.trace_at(at, fraction)[: n - produced]:
                heapq.heappush(pending, (event.start_time, produced, event))
                produced += 1
        while pending:
            yield heapq.heappop(pending)[2]

    def _trace(self, progress: float) -> list[Draft]:
        ctx = self._context(progress)
        return self._shapes[ctx.service.shape](ctx)

    def _context(self, progress: float) -> TraceContext:
        rng, sc = self._rng, self._scenario
        service: ServiceProfile = self._services(rng)
        rank = self._users.index(rng)
        plan = CallPlan(
            model=self._service_models[service.name](rng),
            prompt_version=service.prompt.version,
            failures=sc.failures,
        )
        for incident in sc.incidents:
            if incident.applies(service.name, progress):
                for effect in incident.effects:
                    effect.apply(plan)
        user_id = self._user_ids[rank]
        if sc.prompts is not None:
            resolved = sc.prompts.resolve(service.name, user_id)
            if resolved is not None:
                for effect in resolved.effects:
                    effect.apply(plan)
                plan.model = resolved.model or plan.model
                plan.prompt_name = resolved.name
                plan.prompt_version, plan.variant = resolved.version, resolved.variant
        model = self._models.get(plan.model)
        if model is None:
            raise ValueError(
                f"an incident or prompt switched {service.name!r} to unknown model {plan.model!r}"
            )
        variants = service.prompt.variants
        base = {
            "service": service.name,
            "environment": self._environments(rng),
            "user_id": user_id,
            "tenant_id": self._user_tenants[rank],
            "session_id": f"{service.name}-{user_id}-{math.floor(progress * SESSION_BUCKETS)}",
            "trace_id": hex_id(self._ids, 128),
        }
        embedding = self._models[service.embedding_model] if service.embedding_model else None
        return TraceContext(service, model, embedding, plan, variants[rank % len(variants)], base)

    def _gap(self) -> float:
        return lognormal(self._rng, GAP_MS, 0.5)

    def _add(self, drafts: list[Draft], draft: Draft) -> float:
        """Appends a child span; returns where the next sibling may start."""
        drafts.append(draft)
        return draft.end_ms + self._gap()

    def _llm_retrying(
        self,
        ctx: TraceContext,
        drafts: list[Draft],
        cursor: float,
        *,
        tool_step: bool = False,
        input_scale: float = 1.0,
    ) -> tuple[float, str | None]:
        """One LLM call, retried after a 429; returns the next cursor and the final error."""
        error: str | None = None
        for attempt in range(RATE_LIMIT_ATTEMPTS):
            draft = self._spans.llm(ctx, cursor, tool_step=tool_step, input_scale=input_scale)
            cursor = self._add(drafts, draft)
            error = draft.error_type
            if error != ERROR_RATE_LIMIT:
                break
            cursor += lognormal(self._rng, BACKOFF_MS * 2**attempt, 0.3)
        return cursor, error

    def _chat(self, ctx: TraceContext) -> list[Draft]:
        root = self._spans.root(ctx, SpanKind.CHAIN)
        drafts = [root]
        cursor = self._gap()
        if self._rng.random() < CHAT_RETRIEVAL_SHARE:
            cursor = self._add(drafts, self._spans.retrieval(ctx, cursor))
        cursor, error = self._llm_retrying(ctx, drafts, cursor)
        self._spans.close_root(root, cursor, error)
        return drafts

    def _rag(self, ctx: TraceContext) -> list[Draft]:
        root = self._spans.root(ctx, SpanKind.CHAIN)
        drafts = [root]
        cursor = self._add(drafts, self._spans.embedding(ctx, self._gap()))
        cursor = self._add(drafts, self._spans.retrieval(ctx, cursor))
        cursor, error = self._llm_retrying(ctx, drafts, cursor)
        self._spans.close_root(root, cursor, error)
        return drafts

    def _agent(self, ctx: TraceContext) -> list[Draft]:
        root = self._spans.root(ctx, SpanKind.AGENT)
        drafts = [root]
        cursor = self._add(drafts, self._spans.retrieval(ctx, self._gap()))
        error: str | None = None
        steps = self._rng.randint(1, AGENT_MAX_TOOL_STEPS)
        for step in range(steps):
            # The conversation grows with every tool result.
            scale = 1.0 + 0.25 * step
            cursor, error = self._llm_retrying(
                ctx, drafts, cursor, tool_step=True, input_scale=scale
            )
            if error is not None:
                break
            cursor = self._add(drafts, self._spans.tool(ctx, cursor))
        if error is None:
            cursor, error = self._llm_retrying(ctx, drafts, cursor, input_scale=1.0 + 0.25 * steps)
        self._spans.close_root(root, cursor, error)
        return drafts

    def _summarize(self, ctx: TraceContext) -> list[Draft]:
        if self._rng.random() >= MAP_REDUCE_SHARE:
            return [self._spans.llm(ctx, 0.0)]  # a bare call: the only span of its trace
        root = self._spans.root(ctx, SpanKind.CHAIN)
        drafts = [root]
        cursor = self._gap()
        error: str | None = None
        for _ in range(self._rng.randint(2, MAP_REDUCE_MAX_CHUNKS)):
            cursor, error = self._llm_retrying(ctx, drafts, cursor, input_scale=0.6)
            if error is not None:
                break
        if error is None:
            cursor, error = self._llm_retrying(ctx, drafts, cursor, input_scale=0.25)
        self._spans.close_root(root, cursor, error)
        return drafts
