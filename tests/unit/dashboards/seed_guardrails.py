"""Guardrail rows for the dashboards' tests: a fixed plan of analysed texts through the consumer's row code.

Every text is a ``producers.texts.TextRecord`` with hand-set detector verdicts (no detector runs: the
dashboards, not the detectors, are under test). The verdicts go through the text-analysis consumer's own
row code (``streams.text.records.guardrail_tables``, 40 texts per source record) and the sink's
``insert_rows``, so the three tables of migration 0009 hold exactly what ``llmwatch analyze`` would
write for these verdicts.

The plan (:data:`COHORTS`) fixes how many texts of each (environment, service, model, prompt version,
span kind) carry each risk category, so tests can assert exact numbers (:func:`expected`). Texts are
spread evenly over ``[start, end)``; one extra cohort lies before ``start`` (outside the dashboards'
range), and the first two source records are inserted twice (a replay, collapsed by FINAL). The
alphabetically first environment, service, model and prompt version (what a user picking the first value
of each filter sees) have findings of every kind the panels show. Deterministic; times are relative to
``end`` (callers pass "now" so the tables' TTLs never expire the rows).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from producers.events import SpanKind, TextCapture
from producers.texts import TextRecord
from sinks.rows import insert_rows
from streams.ingest.validate import SourcePosition
from streams.storage import GUARDRAIL_FINDINGS_TABLE, GUARDRAIL_ROLLUP_TABLE, TEXTS_TABLE
from streams.text.findings import ContentVerdict, InjectionVerdict, PiiSpan, PiiType, RiskCategory
from streams.text.records import (
    FINDING_FIELDS,
    GUARDRAIL_ROLLUP_FIELDS,
    TEXT_FIELDS,
    FieldAnalysis,
    TextAnalysis,
    guardrail_tables,
)

__all__ = [
    "COHORTS",
    "OUT_OF_RANGE",
    "Cohort",
    "Expected",
    "SeededText",
    "expected",
    "seed_guardrail_tables",
    "seeded_texts",
]

TOPIC: Final = "llmwatch.texts"
PARTITIONS: Final = 3
PER_RECORD: Final = 40
REPLAYED_RECORDS: Final = 2
INPUT_TEXT: Final = "Hello, my name is Ann Lee, mail ann@example.org or call 555-0100 today please."
OUTPUT_TEXT: Final = "Sure. I have noted ann@example.org and will call you back at 555-0100 soon."
# Span offsets into INPUT_TEXT of the PII types the cohorts use (EMAIL, PHONE, PERSON, CREDIT_CARD).
PII_OFFSETS: Final = {
    PiiType.PERSON: (18, 25),
    PiiType.EMAIL: (32, 47),
    PiiType.PHONE: (56, 64),
    PiiType.CREDIT_CARD: (65, 70),
    PiiType.API_KEY: (71, 76),
}
INJECTION_SCORE: Final = 0.95  # >= streams.text.records.BLOCK_SCORE: block, critical
JAILBREAK_SCORE: Final = 0.8  # flag, high
CLEAN_SCORE: Final = 0.02


@dataclass(frozen=True, slots=True)
class Cohort:
    """``texts`` analysed calls of one label set; each count is how many of them carry that finding.

    Index ranges (overlapping on purpose, so flagged texts < sum of categories): injections
    ``[0, injections)``, jailbreaks next, then toxic, then refusals; secrets ``[0, secrets)``; PII
    and leaks are the last ``pii`` and ``leaks`` texts. Injections sit in the input (``llm``) or the
    output (retrieved passages, ``retrieval``)."""

    environment: str
    service: str
    model: str
    prompt_version: str
    span_kind: str
    texts: int
    injections: int = 0
    jailbreaks: int = 0
    pii: tuple[PiiType, ...] = ()  # the PII types each PII text holds (one span each)
    pii_texts: int = 0
    secrets: int = 0  # texts holding one API key
    toxic: int = 0
    refusals: int = 0
    leaks: int = 0  # outputs echoing the input's email (data_leak)

    def categories(self, index: int) -> frozenset[str]:
        """The risk categories of text ``index`` of the cohort."""
        found: set[str] = set()
        toxic_from = self.injections + self.jailbreaks
        ranges = (
            (RiskCategory.PROMPT_INJECTION, 0, self.injections),
            (RiskCategory.JAILBREAK, self.injections, toxic_from),
            (RiskCategory.TOXICITY, toxic_from, toxic_from + self.toxic),
            (
                RiskCategory.REFUSAL,
                toxic_from + self.toxic,
                toxic_from + self.toxic + self.refusals,
            ),
            (RiskCategory.SECRET, 0, self.secrets),
            (RiskCategory.PII, self.texts - self.pii_texts, self.texts),
            (RiskCategory.DATA_LEAK, self.texts - self.leaks, self.texts),
        )
        for category, low, high in ranges:
            if low <= index < high:
                found.add(str(category))
        return frozenset(found)


COHORTS: Final = (
    Cohort("production", "code-agent", "claude-sonnet-4", "v3", "llm", 200, injections=6,
           jailbreaks=2, pii=(PiiType.EMAIL, PiiType.CREDIT_CARD), pii_texts=10, secrets=8),
    Cohort("production", "search-rag", "gpt-4o", "v5", "retrieval", 300, injections=9,
           pii=(PiiType.PERSON,), pii_texts=30, refusals=3),
    Cohort("production", "support-bot", "gpt-4o-mini", "v7", "llm", 400, injections=4,
           jailbreaks=4, pii=(PiiType.EMAIL,), pii_texts=40, toxic=8, refusals=4),
    Cohort("production", "support-bot", "gpt-4o-mini", "v8", "llm", 200, injections=4,
           jailbreaks=2, pii=(PiiType.EMAIL, PiiType.PHONE), pii_texts=20, toxic=2, leaks=30),
    Cohort("staging", "support-bot", "gpt-4o-mini", "v8", "llm", 50, injections=10),
)  # fmt: skip
# Before the range: must not count anywhere.
OUT_OF_RANGE: Final = Cohort(
    "production", "support-bot", "gpt-4o-mini", "v7", "llm", 100, injections=100, secrets=100
)
OUT_OF_RANGE_AGE: Final = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class SeededText:
    """One seeded analysed call: its cohort, start time and risk categories."""

    cohort: Cohort
    start_time: datetime
    categories: frozenset[str]


@dataclass(frozen=True, slots=True)
class Expected:
    """Totals over the in-range texts (what the dashboard's stats must show with no filter)."""

    texts: int
    flagged_texts: int
    flagged: dict[str, int]  # texts per category
    pii_entities: dict[str, int]  # entities per PII or secret type
    high_findings: int  # findings of severity high or critical


def _spread(cohort: Cohort, first: datetime, last: datetime) -> Iterator[SeededText]:
    step = (last - first) / cohort.texts
    for index in range(cohort.texts):
        at = first + step * index + step / 2
        yield SeededText(cohort, at.replace(microsecond=0), cohort.categories(index))


def seeded_texts(start: datetime, end: datetime) -> list[SeededText]:
    """Every seeded text, in-range cohorts first, then the out-of-range one."""
    texts = [t for cohort in COHORTS for t in _spread(cohort, start, end)]
    early = start - OUT_OF_RANGE_AGE
    return texts + list(_spread(OUT_OF_RANGE, early, early + timedelta(minutes=10)))


def _pii_spans(text: SeededText) -> tuple[PiiSpan, ...]:
    types = list(text.cohort.pii) if str(RiskCategory.PII) in text.categories else []
    if str(RiskCategory.SECRET) in text.categories:
        types.append(PiiType.API_KEY)
    return tuple(PiiSpan(kind, *PII_OFFSETS[kind], 0.97) for kind in types)


def _injection(text: SeededText) -> InjectionVerdict:
    if str(RiskCategory.PROMPT_INJECTION) in text.categories:
        return InjectionVerdict(INJECTION_SCORE, True, "instruction_override", 0, 20)
    if str(RiskCategory.JAILBREAK) in text.categories:
        return InjectionVerdict(JAILBREAK_SCORE, True, "roleplay", 0, 20)
    return InjectionVerdict(CLEAN_SCORE, False)


def _analysis(text: SeededText, event_id: str) -> TextAnalysis:
    cohort, cats = text.cohort, text.categories
    record = TextRecord(
        capture=TextCapture.STORE
        if int(event_id.rsplit("-", 1)[1]) % 5 == 0
        else TextCapture.ANALYZE,
        event_id=event_id,
        trace_id=f"t-{event_id}",
        span_kind=SpanKind(cohort.span_kind),
        service=cohort.service,
        environment=cohort.environment,
        provider_name="openai",
        request_model=cohort.model,
        prompt_name="main",
        prompt_version=cohort.prompt_version,
        start_time=text.start_time,
        input_text=INPUT_TEXT,
        output_text=OUTPUT_TEXT,
    )
    content_out = ContentVerdict(
        toxicity=0.9 if str(RiskCategory.TOXICITY) in cats else 0.01,
        toxic=str(RiskCategory.TOXICITY) in cats,
        refusal=str(RiskCategory.REFUSAL) in cats,
        echoed_pii=(PiiType.EMAIL,) if str(RiskCategory.DATA_LEAK) in cats else (),
    )
    injection = _injection(text)
    injected_output = cohort.span_kind == "retrieval"  # indirect injection in retrieved passages
    clean = InjectionVerdict(CLEAN_SCORE, False)
    fields = (
        FieldAnalysis("input", _pii_spans(text), clean if injected_output else injection),
        FieldAnalysis("output", (), injection if injected_output else None, content_out),
    )
    return TextAnalysis(record, fields)


def _batches(texts: Sequence[SeededText]) -> Iterator[tuple[list[TextAnalysis], SourcePosition]]:
    for offset, first in enumerate(range(0, len(texts), PER_RECORD)):
        chunk = texts[first : first + PER_RECORD]
        analyses = [_analysis(t, f"ev-{first + i}") for i, t in enumerate(chunk)]
        yield analyses, SourcePosition(TOPIC, offset % PARTITIONS, offset // PARTITIONS)


_COLUMNS: Final = {
    GUARDRAIL_FINDINGS_TABLE: FINDING_FIELDS,
    GUARDRAIL_ROLLUP_TABLE: GUARDRAIL_ROLLUP_FIELDS,
    TEXTS_TABLE: TEXT_FIELDS,
}


def _insert_all(
    client: Client, database: str, tables: Iterable[dict[str, list[Any]]]
) -> Counter[str]:
    merged: dict[str, list[Any]] = {table: [] for table in _COLUMNS}
    for rows in tables:
        for table, table_rows in rows.items():
            merged[table] += table_rows
    return Counter(
        {t: insert_rows(client, database, t, rows, _COLUMNS[t]) for t, rows in merged.items()}
    )


def seed_guardrail_tables(
    client: Client, database: str, start: datetime, end: datetime
) -> dict[str, int]:
    """Insert the plan's rows for ``[start, end)`` (migration 0009 must be applied); rows per table,
    replayed copies included."""
    records = [guardrail_tables(a, pos) for a, pos in _batches(seeded_texts(start, end))]
    counts = _insert_all(client, database, records)
    counts += _insert_all(client, database, records[:REPLAYED_RECORDS])  # a replay: FINAL collapses
    return dict(counts)


def _high_findings(text: SeededText) -> int:
    high = {RiskCategory.PROMPT_INJECTION, RiskCategory.JAILBREAK, RiskCategory.SECRET}
    high |= {RiskCategory.DATA_LEAK}
    count = sum(str(c) in text.categories for c in high)
    if str(RiskCategory.PII) in text.categories:
        count += PiiType.CREDIT_CARD in text.cohort.pii
    return count


def expected(texts: Sequence[SeededText], start: datetime, end: datetime) -> Expected:
    """Totals of the texts whose start time is in ``[start, end)``."""
    inside = [t for t in texts if start <= t.start_time < end]
    flagged: Counter[str] = Counter(c for t in inside for c in t.categories)
    entities: Counter[str] = Counter()
    for text in inside:
        entities.update(str(span.type) for span in _pii_spans(text))
    return Expected(
        texts=len(inside),
        flagged_texts=sum(bool(t.categories) for t in inside),
        flagged=dict(flagged),
        pii_entities=dict(entities),
        high_findings=sum(_high_findings(t) for t in inside),
    )
