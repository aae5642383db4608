"""Run the guardrail detectors over captured texts, in batches: PII and secrets, injection, content.

:class:`TextAnalyzer` takes many text records at once (the text-analysis consumer passes one poll's
worth) and calls each detector once per batch, which is what makes the MiniLM encoder affordable.
Where a text came from decides how injection is scored: a prompt, a retrieved passage (``retrieval``
spans' output), a tool's output (``tool`` spans' output) or a model's output. Output-side content checks
get the call's prompt and the PII spans of both texts (echoed secrets and personal data).

Guarantees: :meth:`TextAnalyzer.analyze` never raises for any record. If a detector fails on a batch
(a bug, not bad text: detectors never raise on text), the failure is logged, counted in
:attr:`TextAnalyzer.detector_errors`, and the batch's analyses simply lack that detector's verdicts.

What can block: the detectors are CPU-bound (see ``docs/guardrails.md`` for texts/s); models load on
first use. Run it in the text-analysis consumer or the scan CLI, never on the metrics path.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol, TypeVar

from producers.events import SpanKind
from producers.texts import TextRecord
from streams.text.findings import ContentVerdict, InjectionVerdict, PiiSpan
from streams.text.records import INPUT, OUTPUT, FieldAnalysis, TextAnalysis, redact_spans
from streams.text.redaction import Redactor

__all__ = [
    "ContentChecking",
    "InjectionScoring",
    "PiiDetecting",
    "ScanResult",
    "TextAnalyzer",
    "injection_source",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
# Where an output text came from, by span kind (anything else is a model's output).
_OUTPUT_SOURCES: Final = {SpanKind.RETRIEVAL: "retrieval", SpanKind.TOOL: "tool"}


class PiiDetecting(Protocol):
    def detect_batch(self, texts: Sequence[str]) -> list[list[PiiSpan]]: ...


class InjectionScoring(Protocol):
    def score_batch(
        self, texts: Sequence[str], sources: Sequence[str]
    ) -> list[InjectionVerdict]: ...


class ContentChecking(Protocol):
    def check_batch(
        self,
        texts: Sequence[str],
        *,
        role: Literal["input", "output"] = "input",
        prompts: Sequence[str | None] | None = None,
        input_spans: Sequence[Sequence[PiiSpan]] | None = None,
        output_spans: Sequence[Sequence[PiiSpan]] | None = None,
    ) -> list[ContentVerdict]: ...


def injection_source(span_kind: SpanKind | str, field: str) -> str:
    """How the injection detector should treat a text: prompt, retrieval, tool or output."""
    if field == INPUT:
        return "tool" if span_kind == SpanKind.TOOL else "prompt"
    return _OUTPUT_SOURCES.get(SpanKind(span_kind), "output")


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The verdicts on one free-standing text (``llmwatch guard scan``)."""

    pii: tuple[PiiSpan, ...]
    injection: InjectionVerdict | None
    content: ContentVerdict | None


@dataclass(frozen=True, slots=True)
class _Text:
    index: int  # the record's position in the batch
    field: str
    text: str
    source: str


class TextAnalyzer:
    """The detectors a deployment runs; any may be None (switched off)."""

    def __init__(
        self,
        pii: PiiDetecting | None = None,
        injection: InjectionScoring | None = None,
        content: ContentChecking | None = None,
    ) -> None:
        self.pii = pii
        self.injection = injection
        self.content = content
        self.detector_errors = 0

    def _guarded(self, name: str, run: Callable[[], Sequence[T]], count: int) -> list[T | None]:
        try:
            results: list[T | None] = list(run())
        except Exception:
            log.exception("llmwatch: the %s detector failed on a batch of %d texts", name, count)
            self.detector_errors += 1
            return [None] * count
        if len(results) != count:
            log.error(
                "llmwatch: the %s detector gave %d results for %d texts", name, len(results), count
            )
            self.detector_errors += 1
            return [None] * count
        return results

    def _spans(self, texts: Sequence[str]) -> list[tuple[PiiSpan, ...]]:
        if self.pii is None or not texts:
            return [() for _ in texts]
        detector = self.pii
        found = self._guarded("PII", lambda: detector.detect_batch(texts), len(texts))
        return [tuple(spans or ()) for spans in found]

    def redact(self, texts: Sequence[str]) -> list[str]:
        """Each text with the PII detector's spans replaced by ``<TYPE>`` (for text that is not
        analysed otherwise: feedback comments, reference answers). Without a PII detector, the
        pattern redactor (emails, cards, keys...) stands in."""
        if self.pii is None:
            redactor = Redactor()
            return [redactor.redact(text).text for text in texts]
        return [
            redact_spans(text, spans) for text, spans in zip(texts, self._spans(texts), strict=True)
        ]

    def _injection(
        self, texts: Sequence[str], sources: Sequence[str]
    ) -> list[InjectionVerdict | None]:
        if self.injection is None or not texts:
            return [None for _ in texts]
        detector = self.injection
        return self._guarded("injection", lambda: detector.score_batch(texts, sources), len(texts))

    def analyze(self, records: Sequence[TextRecord]) -> list[TextAnalysis]:
        """One analysis per record, in order."""
        items = [
            _Text(i, name, text, injection_source(record.span_kind, name))
            for i, record in enumerate(records)
            for name, text in ((INPUT, record.input_text), (OUTPUT, record.output_text))
            if text
        ]
        texts = [item.text for item in items]
        spans = self._spans(texts)
        injections = self._injection(texts, [item.source for item in items])
        contents = self._content(records, items, spans)
        fields: list[list[FieldAnalysis]] = [[] for _ in records]
        for n, item in enumerate(items):
            fields[item.index].append(
                FieldAnalysis(item.field, spans[n], injections[n], contents[n])
            )
        return [
            TextAnalysis(record, tuple(parts))
            for record, parts in zip(records, fields, strict=True)
        ]

    def _content(
        self,
        records: Sequence[TextRecord],
        items: Sequence[_Text],
        spans: Sequence[tuple[PiiSpan, ...]],
    ) -> list[ContentVerdict | None]:
        verdicts: list[ContentVerdict | None] = [None] * len(items)
        if self.content is None:
            return verdicts
        checker = self.content
        input_spans = {item.index: spans[n] for n, item in enumerate(items) if item.field == INPUT}
        for role in (INPUT, OUTPUT):
            chosen = [n for n, item in enumerate(items) if item.field == role]
            if not chosen:
                continue
            texts = [items[n].text for n in chosen]
            run = functools.partial(checker.check_batch, texts)
            if role == OUTPUT:
                run = functools.partial(
                    checker.check_batch,
                    texts,
                    role=OUTPUT,
                    prompts=[records[items[n].index].input_text for n in chosen],
                    input_spans=[input_spans.get(items[n].index, ()) for n in chosen],
                    output_spans=[spans[n] for n in chosen],
                )
            found: list[ContentVerdict | None] = self._guarded("content", run, len(chosen))
            for n, verdict in zip(chosen, found, strict=True):
                verdicts[n] = verdict
        return verdicts

    def scan(self, texts: Sequence[str]) -> list[ScanResult]:
        """Verdicts on free-standing texts, each treated as a prompt."""
        spans = self._spans(texts)
        injections = self._injection(texts, ["prompt"] * len(texts))
        contents: list[ContentVerdict | None] = [None] * len(texts)
        if self.content is not None and texts:
            checker = self.content
            contents = self._guarded("content", lambda: checker.check_batch(texts), len(texts))
        return [ScanResult(spans[i], injections[i], contents[i]) for i in range(len(texts))]
