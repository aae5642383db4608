"""``llmwatch trace <trace_id>``: one trace's spans from ClickHouse, printed as a tree with timings and cost.

Reads ``llm_calls FINAL`` (a replayed span is shown once) through the table's trace-id bloom filter, so it
does not scan the time range. Spans are nested by ``parent_span_id``; a span whose parent is not stored
(dropped by the app, or sent by a service that does not report to llmwatch) is shown at the top level
and marked ``(orphan)``, so nothing in the trace is hidden. Children are ordered by start time. Each line
shows the step's kind and name, its offset from the trace start and duration, tokens, cost and status;
the header totals duration (first start to last end), steps, LLM calls, tokens and cost.

What can block: one ClickHouse query. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from rich.tree import Tree

from streams.storage import CALLS_TABLE

__all__ = ["TraceSpan", "fetch_trace", "render_trace", "trace_summary"]

_COLUMNS: Final = (
    "span_id",
    "parent_span_id",
    "span_kind",
    "operation_name",
    "service",
    "provider_name",
    "request_model",
    "agent_name",
    "tool_name",
    "status",
    "error_type",
    "toUnixTimestamp64Milli(start_time)",
    "toUnixTimestamp64Milli(end_time)",
    "input_tokens",
    "output_tokens",
    "cost_usd",
)


@dataclass(frozen=True, slots=True)
class TraceSpan:
    """One stored span of a trace."""

    span_id: str
    parent_span_id: str
    span_kind: str
    operation_name: str
    service: str
    provider_name: str
    request_model: str
    agent_name: str
    tool_name: str
    status: str
    error_type: str
    start_ms: int
    end_ms: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def name(self) -> str:
        """What the step is: tool or agent name, else the model, else the operation."""
        return self.tool_name or self.agent_name or self.request_model or self.operation_name


def fetch_trace(client: Any, database: str, trace_id: str) -> list[TraceSpan]:
    """Every stored span of ``trace_id``, by start time (empty when the trace is unknown)."""
    if not trace_id.strip():
        raise ValueError(f"trace id must be non-empty, got {trace_id!r}")
    query = (
        f"SELECT {', '.join(_COLUMNS)} FROM {database}.{CALLS_TABLE} FINAL "
        "WHERE trace_id = {trace_id:String} ORDER BY start_time, span_id"
    )
    rows = client.query(query, parameters={"trace_id": trace_id}).result_rows
    return [_span(row) for row in rows]


def _span(row: Sequence[Any]) -> TraceSpan:
    text = [str(v) for v in row[:11]]
    return TraceSpan(
        span_id=text[0],
        parent_span_id=text[1],
        span_kind=text[2],
        operation_name=text[3],
        service=text[4],
        provider_name=text[5],
        request_model=text[6],
        agent_name=text[7],
        tool_name=text[8],
        status=text[9],
        error_type=text[10],
        start_ms=int(row[11]),
        end_ms=int(row[12]),
        input_tokens=int(row[13]),
        output_tokens=int(row[14]),
        cost_usd=None if row[15] is None else float(row[15]),
    )


@dataclass(frozen=True, slots=True)
class TraceSummary:
    duration_ms: int
    steps: int
    llm_calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    unpriced: int


def trace_summary(spans: Sequence[TraceSpan]) -> TraceSummary:
    """Totals of a non-empty trace."""
    if not spans:
        raise ValueError("a trace summary needs at least one span, got none")
    return TraceSummary(
        duration_ms=max(s.end_ms for s in spans) - min(s.start_ms for s in spans),
        steps=len(spans),
        llm_calls=sum(s.span_kind == "llm" for s in spans),
        errors=sum(s.status == "error" for s in spans),
        input_tokens=sum(s.input_tokens for s in spans),
        output_tokens=sum(s.output_tokens for s in spans),
        cost_usd=sum(s.cost_usd or 0.0 for s in spans),
        unpriced=sum(s.span_kind == "llm" and s.cost_usd is None for s in spans),
    )


def _label(span: TraceSpan, trace_start_ms: int, orphan: bool) -> str:
    parts = [
        f"[bold]{span.span_kind}[/bold] {span.name}",
        f"+{span.start_ms - trace_start_ms} ms",
        f"{span.duration_ms} ms",
    ]
    if span.input_tokens or span.output_tokens:
        parts.append(f"{span.input_tokens}/{span.output_tokens} tok")
    if span.cost_usd is not None:
        parts.append(f"${span.cost_usd:.6f}")
    if span.status == "error":
        parts.append(f"[red]error {span.error_type}[/red]".rstrip())
    if orphan:
        parts.append("[yellow](orphan)[/yellow]")
    return "  ".join(parts)


def render_trace(trace_id: str, spans: Sequence[TraceSpan]) -> Tree:
    """The span tree of a non-empty trace (see the module docstring)."""
    total = trace_summary(spans)
    start = min(s.start_ms for s in spans)
    unpriced = f" ({total.unpriced} unpriced)" if total.unpriced else ""
    root = Tree(
        f"trace [bold]{trace_id}[/bold]: {total.duration_ms} ms, {total.steps} steps, "
        f"{total.llm_calls} LLM calls, {total.errors} errors, "
        f"{total.input_tokens}/{total.output_tokens} tok, ${total.cost_usd:.6f}{unpriced}"
    )
    ids = {s.span_id for s in spans}
    children: dict[str, list[TraceSpan]] = {}
    tops: list[tuple[TraceSpan, bool]] = []
    for span in sorted(spans, key=lambda s: (s.start_ms, s.span_id)):
        if (
            span.parent_span_id
            and span.parent_span_id in ids
            and span.parent_span_id != span.span_id
        ):
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            tops.append((span, bool(span.parent_span_id)))
    stack: list[tuple[Tree, TraceSpan, bool]] = [(root, s, orphan) for s, orphan in reversed(tops)]
    seen: set[str] = set()
    while stack:
        parent, span, orphan = stack.pop()
        if span.span_id in seen:  # a parent cycle in bad data: show each span once
            continue
        seen.add(span.span_id)
        node = parent.add(_label(span, start, orphan))
        stack += [(node, c, False) for c in reversed(children.get(span.span_id, []))]
    for span in spans:  # spans only reachable through a parent cycle
        if span.span_id not in seen:
            seen.add(span.span_id)
            root.add(_label(span, start, orphan=True))
    return root
