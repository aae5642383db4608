"""Golden datasets for ``llmwatch eval run``: one JSON object per line.

A line is ``{"id": "...", "input": "text" | [chat messages], "reference": "..."}``; ``reference`` is
optional (the reference metrics and the correctness rubric need it). ``input`` as a string becomes one
user message; as a list, each item must be ``{"role": "system"|"user"|"assistant"|"developer",
"content": "..."}``. Blank lines and lines starting with ``#`` are skipped.

Errors name the file, the line number and the bad value; ids must be unique. Reading is all or nothing:
a dataset with one bad line is refused, so a suite never silently runs on fewer cases.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

__all__ = ["MESSAGE_ROLES", "DatasetError", "GoldenCase", "GoldenDataset", "load_dataset"]

MESSAGE_ROLES: Final = frozenset({"system", "user", "assistant", "developer"})
MAX_CASES: Final = 100_000


class DatasetError(ValueError):
    """A golden dataset that cannot be used, with the file, line and value."""


@dataclass(frozen=True, slots=True)
class GoldenCase:
    case_id: str
    messages: tuple[dict[str, str], ...]
    reference: str | None

    @property
    def input_text(self) -> str:
        """The messages' text as one string (for the judge's rubric templates)."""
        if len(self.messages) == 1:
            return self.messages[0]["content"]
        return "\n".join(f"{m['role']}: {m['content']}" for m in self.messages)


@dataclass(frozen=True, slots=True)
class GoldenDataset:
    path: Path
    sha256: str
    cases: tuple[GoldenCase, ...]

    @property
    def has_references(self) -> bool:
        return all(c.reference is not None for c in self.cases)


def _messages(value: Any, where: str) -> tuple[dict[str, str], ...]:
    if isinstance(value, str):
        if not value.strip():
            raise DatasetError(f"{where}: 'input' is empty")
        return ({"role": "user", "content": value},)
    if not isinstance(value, list) or not value:
        raise DatasetError(
            f"{where}: 'input' must be a string or a non-empty list of messages, "
            f"got {type(value).__name__}"
        )
    messages = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise DatasetError(f"{where}: input[{index}] must be an object, got {item!r:.60}")
        role, content = item.get("role"), item.get("content")
        if role not in MESSAGE_ROLES:
            raise DatasetError(
                f"{where}: input[{index}].role must be one of {sorted(MESSAGE_ROLES)}, got {role!r}"
            )
        if not isinstance(content, str):
            raise DatasetError(
                f"{where}: input[{index}].content must be a string, got {type(content).__name__}"
            )
        messages.append({"role": role, "content": content})
    return tuple(messages)


def _case(doc: Any, where: str) -> GoldenCase:
    if not isinstance(doc, dict):
        raise DatasetError(f"{where}: a line must be a JSON object, got {type(doc).__name__}")
    case_id = doc.get("id")
    if isinstance(case_id, int) and not isinstance(case_id, bool):
        case_id = str(case_id)
    if not isinstance(case_id, str) or not case_id:
        raise DatasetError(f"{where}: 'id' must be a non-empty string or integer, got {case_id!r}")
    if "input" not in doc:
        raise DatasetError(f"{where}: case {case_id!r} has no 'input'")
    reference = doc.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise DatasetError(
            f"{where}: case {case_id!r}: 'reference' must be a string, "
            f"got {type(reference).__name__}"
        )
    return GoldenCase(case_id, _messages(doc["input"], f"{where}: case {case_id!r}"), reference)


def parse_dataset(lines: Sequence[bytes], path: Path) -> list[GoldenCase]:
    cases: list[GoldenCase] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        where = f"{path}:{number}"
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not JSON ({exc}): {line[:60]!r}") from exc
        case = _case(doc, where)
        if case.case_id in seen:
            raise DatasetError(
                f"{where}: duplicate id {case.case_id!r} (first on line {seen[case.case_id]})"
            )
        seen[case.case_id] = number
        cases.append(case)
        if len(cases) > MAX_CASES:
            raise DatasetError(f"{path}: more than {MAX_CASES} cases")
    if not cases:
        raise DatasetError(f"{path}: no cases (every line is blank or a comment)")
    return cases


def load_dataset(path: Path) -> GoldenDataset:
    """Read and validate a golden JSONL file (see the module docstring)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read dataset {str(path)!r}: {exc.strerror or exc}") from exc
    cases = parse_dataset(data.splitlines(), path)
    return GoldenDataset(path, hashlib.sha256(data).hexdigest(), tuple(cases))
