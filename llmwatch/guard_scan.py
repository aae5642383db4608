"""``llmwatch guard scan``: run the guardrail detectors over a JSONL file, so anyone can check them on
their own data.

Input: one JSON object per line with a ``"text"`` string (other keys ignored). Output: one JSON line per
input line, in order::

    {"pii": [{"type": "EMAIL", "start": 10, "end": 27, "score": 0.99}, ...],
     "injection": {"score": 0.93, "flagged": true, "category": "instruction_override"},
     "content": {"toxicity": 0.02, "toxic": false, "banned_topics": [], ...}}

Offsets are Python string indices into the given text; PII types are ``streams.text.findings.PiiType``.
A line that is not a JSON object with a string ``"text"`` gives ``{"error": "line N: ..."}`` in its
place (the output stays aligned with the input) and a warning on stderr; the command then exits 1.
Texts are analysed in batches of ``batch_size`` (one call per detector per batch).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Final

import orjson

from streams.text.analyzer import ScanResult, TextAnalyzer

__all__ = ["DEFAULT_BATCH_SIZE", "ScanSummary", "parse_line", "scan_lines", "scan_result_json"]

DEFAULT_BATCH_SIZE: Final = 64


@dataclass(slots=True)
class ScanSummary:
    lines: int = 0
    errors: int = 0
    flagged_injection: int = 0
    pii_spans: int = 0


def parse_line(line: str, number: int) -> str:
    """The text of one input line; ValueError naming the line and the problem."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"line {number}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"line {number}: expected a JSON object, got {type(doc).__name__}")
    text = doc.get("text")
    if not isinstance(text, str):
        raise ValueError(f'line {number}: "text" must be a string, got {text!r:.60}')
    return text


def scan_result_json(result: ScanResult) -> dict[str, Any]:
    """The output object of one scanned text."""
    content = None if result.content is None else dataclasses.asdict(result.content)
    if content is not None:
        content["banned_topics"] = list(content["banned_topics"])
        content["echoed_pii"] = [str(t) for t in content["echoed_pii"]]
    injection = result.injection
    return {
        "pii": [
            {"type": str(s.type), "start": s.start, "end": s.end, "score": round(s.score, 4)}
            for s in result.pii
        ],
        "injection": None
        if injection is None
        else {
            "score": round(injection.score, 4),
            "flagged": injection.flagged,
            "category": injection.category,
        },
        "content": content,
    }


def _batches(lines: Iterable[str], size: int) -> Iterator[list[tuple[int, str]]]:
    batch: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        batch.append((number, line))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def scan_lines(
    analyzer: TextAnalyzer,
    lines: Iterable[str],
    out: IO[bytes],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    warn: Callable[[str], None] = lambda _message: None,
    progress: Callable[[int], None] = lambda _lines: None,
) -> ScanSummary:
    """Scan every non-blank line of ``lines`` and write one result line each to ``out``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    summary = ScanSummary()
    for batch in _batches(lines, batch_size):
        parsed: list[str | ValueError] = []
        for number, line in batch:
            try:
                parsed.append(parse_line(line, number))
            except ValueError as exc:
                parsed.append(exc)
        texts = [t for t in parsed if isinstance(t, str)]
        results = iter(analyzer.scan(texts))
        for item in parsed:
            doc = _one(item, results, summary, warn)
            out.write(orjson.dumps(doc) + b"\n")
        summary.lines += len(batch)
        progress(len(batch))
    return summary


def _one(
    item: str | ValueError,
    results: Iterator[ScanResult],
    summary: ScanSummary,
    warn: Callable[[str], None],
) -> dict[str, Any]:
    if isinstance(item, ValueError):
        summary.errors += 1
        warn(str(item))
        return {"error": str(item)}
    result = next(results)
    summary.pii_spans += len(result.pii)
    summary.flagged_injection += bool(result.injection and result.injection.flagged)
    return scan_result_json(result)
