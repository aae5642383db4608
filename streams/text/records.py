"""What the text-analysis consumer publishes: guardrail findings, per-minute rollups, stored texts.

One source record (a batch of text records, ``producers.texts``) gives one ``guardrails`` record: a
rows-per-table envelope (``streams.table_rows``, kind :data:`GUARDRAILS_KIND`) for three tables
(migration ``0009_guardrails.sql``):

- ``llm_guardrail_findings``: one row per finding, with its ``gen_ai.security.*`` values (category,
  decision, severity, score), its type and its span offsets. Never the matched text.
- ``llm_guardrail_rollup_1m``: per minute and (service, environment, model, prompt version, span kind),
  texts analysed and flagged per category, keyed by the source record's position (replays replace).
- ``llm_texts``: for ``store`` captures only, the texts with every PII span replaced by ``<TYPE>``.

Guarantees: rows depend only on the source record and the detectors' verdicts (deterministic detectors
give identical rows on replay); no row holds a matched span's text. Nothing here does I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from producers.events import TextCapture
from producers.texts import TextRecord
from streams.ingest.validate import SourcePosition
from streams.storage import GUARDRAIL_FINDINGS_TABLE, GUARDRAIL_ROLLUP_TABLE, TEXTS_TABLE
from streams.table_rows import decode_tables, encode_tables
from streams.text.findings import (
    ContentVerdict,
    Decision,
    InjectionVerdict,
    PiiSpan,
    PiiType,
    RiskCategory,
    Severity,
)

__all__ = [
    "FINDING_FIELDS",
    "GUARDRAILS_KIND",
    "GUARDRAIL_ROLLUP_FIELDS",
    "TEXT_FIELDS",
    "FieldAnalysis",
    "Finding",
    "TextAnalysis",
    "decode_guardrails",
    "findings_of",
    "guardrail_tables",
    "redact_spans",
    "redacted_texts",
]

GUARDRAILS_KIND: Final = "guardrails"
MINUTE_MS: Final = 60_000
INPUT: Final = "input"
OUTPUT: Final = "output"
_SECRET_TYPES: Final = frozenset({PiiType.API_KEY, PiiType.SECRET})
_HIGH_PII: Final = frozenset({PiiType.CREDIT_CARD, PiiType.US_SSN, PiiType.IBAN})
# An injection verdict this sure is reported as "block": what an in-line guard should stop.
BLOCK_SCORE: Final = 0.9
# Injection families reported as jailbreaks rather than prompt injection.
_JAILBREAK_FAMILIES: Final = frozenset({"roleplay_jailbreak", "roleplay"})

FINDING_FIELDS: Final = (
    "start_time",
    "event_id",
    "trace_id",
    "span_id",
    "service",
    "environment",
    "provider_name",
    "model",
    "prompt_name",
    "prompt_version",
    "span_kind",
    "field",
    "category",
    "type",
    "decision",
    "severity",
    "score",
    "span_start",
    "span_end",
    "detector",
)
GUARDRAIL_ROLLUP_FIELDS: Final = (
    "window_start",
    "service",
    "environment",
    "model",
    "prompt_version",
    "span_kind",
    "source_topic",
    "source_partition",
    "source_offset",
    "texts",
    "flagged_texts",
    "flagged",
    "pii_entities",
    "injection_score_max",
)
TEXT_FIELDS: Final = (
    "start_time",
    "event_id",
    "trace_id",
    "span_id",
    "service",
    "environment",
    "model",
    "prompt_version",
    "span_kind",
    "input_text",
    "output_text",
    "redactions",
)

Row = dict[str, Any]
# The dimensions of a rollup row, in key order (what _labels returns).
_LABEL_KEYS: Final = ("service", "environment", "model", "prompt_version", "span_kind")


@dataclass(frozen=True, slots=True)
class FieldAnalysis:
    """The detectors' verdicts on one text of a record (``input`` or ``output``)."""

    field: str
    pii: tuple[PiiSpan, ...] = ()
    injection: InjectionVerdict | None = None
    content: ContentVerdict | None = None


@dataclass(frozen=True, slots=True)
class TextAnalysis:
    record: TextRecord
    fields: tuple[FieldAnalysis, ...] = ()


@dataclass(frozen=True, slots=True)
class Finding:
    """One ``gen_ai.security`` finding on one text, without the text."""

    field: str
    category: RiskCategory
    type: str
    decision: Decision
    severity: Severity
    score: float
    start: int = 0
    end: int = 0
    detector: str = ""


def _pii_findings(analysis: FieldAnalysis) -> list[Finding]:
    found = []
    for span in analysis.pii:
        secret = span.type in _SECRET_TYPES
        found.append(
            Finding(
                field=analysis.field,
                category=RiskCategory.SECRET if secret else RiskCategory.PII,
                type=str(span.type),
                decision=Decision.FLAG,
                severity=Severity.HIGH if secret or span.type in _HIGH_PII else Severity.MEDIUM,
                score=span.score,
                start=span.start,
                end=span.end,
                detector="pii",
            )
        )
    return found


def _injection_finding(analysis: FieldAnalysis) -> list[Finding]:
    verdict = analysis.injection
    if verdict is None or not verdict.flagged:
        return []
    family = verdict.category or "unknown"
    jailbreak = family in _JAILBREAK_FAMILIES
    return [
        Finding(
            field=analysis.field,
            category=RiskCategory.JAILBREAK if jailbreak else RiskCategory.PROMPT_INJECTION,
            type=family,
            decision=Decision.BLOCK if verdict.score >= BLOCK_SCORE else Decision.FLAG,
            severity=Severity.CRITICAL if verdict.score >= BLOCK_SCORE else Severity.HIGH,
            score=verdict.score,
            start=verdict.start,
            end=verdict.end,
            detector="injection",
        )
    ]


def _content_findings(analysis: FieldAnalysis) -> list[Finding]:
    verdict = analysis.content
    if verdict is None:
        return []
    where = analysis.field

    def finding(category: RiskCategory, kind: str, severity: Severity, score: float) -> Finding:
        return Finding(where, category, kind, Decision.FLAG, severity, score, detector="content")

    found = []
    if verdict.toxic:
        found.append(finding(RiskCategory.TOXICITY, "toxicity", Severity.MEDIUM, verdict.toxicity))
    found += [
        finding(RiskCategory.BANNED_TOPIC, topic, Severity.MEDIUM, 1.0)
        for topic in verdict.banned_topics
    ]
    found += [
        finding(RiskCategory.DATA_LEAK, str(kind), Severity.HIGH, 1.0)
        for kind in verdict.echoed_pii
    ]
    if verdict.unknown_urls:
        found.append(finding(RiskCategory.UNKNOWN_URL, "url", Severity.LOW, 1.0))
    if verdict.refusal:
        found.append(finding(RiskCategory.REFUSAL, "refusal", Severity.LOW, 1.0))
    return found


def findings_of(analysis: TextAnalysis) -> list[Finding]:
    """Every finding on a record's texts, in a stable order."""
    found: list[Finding] = []
    for part in analysis.fields:
        found += _pii_findings(part) + _injection_finding(part) + _content_findings(part)
    return found


def redact_spans(text: str, spans: Sequence[PiiSpan]) -> str:
    """``text`` with each span replaced by ``<TYPE>``; of overlapping spans, a later one replaces
    only what the earlier left (so no character of either survives)."""
    pieces: list[str] = []
    cursor = 0
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        start, end = max(span.start, cursor), min(span.end, len(text))
        if start >= end:
            continue
        pieces += [text[cursor:start], f"<{span.type}>"]
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def _labels(record: TextRecord) -> Row:
    return {
        "service": record.service,
        "environment": record.environment,
        "model": record.model,
        "prompt_version": record.prompt_version or "",
        "span_kind": str(record.span_kind),
    }


def _finding_row(record: TextRecord, finding: Finding) -> Row:
    row = {
        "start_time": record.start_ms,
        "event_id": record.event_id,
        "trace_id": record.trace_id or "",
        "span_id": record.span_id or "",
        **_labels(record),
        "provider_name": record.provider_name or "",
        "prompt_name": record.prompt_name or "",
        "field": finding.field,
        "category": str(finding.category),
        "type": finding.type,
        "decision": str(finding.decision),
        "severity": str(finding.severity),
        "score": round(float(finding.score), 6),
        "span_start": finding.start,
        "span_end": finding.end,
        "detector": finding.detector,
    }
    return {name: row[name] for name in FINDING_FIELDS}


def redacted_texts(analysis: TextAnalysis) -> tuple[str, str]:
    """The record's input and output text with every PII span the detector found replaced by
    ``<TYPE>``: the only form in which text is stored or sent on (to the judge)."""
    record = analysis.record
    spans = {part.field: part.pii for part in analysis.fields}
    return (
        redact_spans(record.input_text or "", spans.get(INPUT, ())),
        redact_spans(record.output_text or "", spans.get(OUTPUT, ())),
    )


def _text_row(analysis: TextAnalysis) -> Row:
    record = analysis.record
    input_text, output_text = redacted_texts(analysis)
    counts: dict[str, int] = defaultdict(int)
    for part in analysis.fields:
        for span in part.pii:
            counts[str(span.type)] += 1
    return {
        "start_time": record.start_ms,
        "event_id": record.event_id,
        "trace_id": record.trace_id or "",
        "span_id": record.span_id or "",
        **_labels(record),
        "input_text": input_text,
        "output_text": output_text,
        "redactions": dict(counts),
    }


@dataclass(slots=True)
class _Group:
    texts: int = 0
    flagged_texts: int = 0
    flagged: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pii_entities: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    injection_score_max: float = 0.0


def _rollup_rows(
    analyses: Iterable[tuple[TextAnalysis, list[Finding]]], source: SourcePosition
) -> list[Row]:
    groups: dict[tuple[Any, ...], _Group] = defaultdict(_Group)
    for analysis, found in analyses:
        labels = _labels(analysis.record)
        key = (analysis.record.start_ms // MINUTE_MS * MINUTE_MS, *labels.values())
        group = groups[key]
        group.texts += 1
        group.flagged_texts += bool(found)
        for category in {str(f.category) for f in found}:
            group.flagged[category] += 1
        for finding in found:
            if finding.category in (RiskCategory.PII, RiskCategory.SECRET):
                group.pii_entities[finding.type] += 1
        for part in analysis.fields:
            if part.injection is not None:
                group.injection_score_max = max(group.injection_score_max, part.injection.score)
    return [
        {
            "window_start": key[0],
            **dict(zip(_LABEL_KEYS, key[1:], strict=True)),
            "source_topic": source.topic,
            "source_partition": source.partition,
            "source_offset": source.offset,
            "texts": group.texts,
            "flagged_texts": group.flagged_texts,
            "flagged": dict(group.flagged),
            "pii_entities": dict(group.pii_entities),
            "injection_score_max": round(group.injection_score_max, 6),
        }
        for key, group in sorted(groups.items(), key=lambda item: repr(item[0]))
    ]


def guardrail_tables(
    analyses: Sequence[TextAnalysis],
    source: SourcePosition,
    findings: Sequence[list[Finding]] | None = None,
) -> dict[str, list[Row]]:
    """The rows of one source record's analyses, per table (empty tables omitted).

    ``findings``: ``findings_of`` of each analysis, when the caller has them already."""
    if findings is None:
        findings = [findings_of(analysis) for analysis in analyses]
    pairs = list(zip(analyses, findings, strict=True))
    tables: dict[str, list[Row]] = {
        GUARDRAIL_FINDINGS_TABLE: [
            _finding_row(analysis.record, finding) for analysis, found in pairs for finding in found
        ],
        GUARDRAIL_ROLLUP_TABLE: _rollup_rows(pairs, source),
        TEXTS_TABLE: [
            _text_row(analysis)
            for analysis in analyses
            if analysis.record.capture is TextCapture.STORE
        ],
    }
    return {table: rows for table, rows in tables.items() if rows}


def encode_guardrails(tables: Mapping[str, list[Row]]) -> bytes:
    return encode_tables(GUARDRAILS_KIND, tables)


def decode_guardrails(value: bytes | None) -> dict[str, list[Row]]:
    """Rows per table of one ``guardrails`` record; raises ValueError naming what is wrong."""
    return decode_tables(value, GUARDRAILS_KIND)
