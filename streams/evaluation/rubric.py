"""LLM-as-judge rubrics: versioned YAML templates, their chat messages, and the judge's parsed verdicts.

A rubric file (bundled ones in ``streams/evaluation/rubrics/``; extra folders through
:func:`load_rubrics`) holds one mapping: ``name``, ``version``, ``description``, ``kind``
(``pointwise`` or ``pairwise``), ``scale``, ``labels``, ``pass_label``, ``requires``, ``min_kappa``,
``system`` and ``user``. Their meaning and every check are in ``streams.evaluation.rubric_checks``;
``key`` is ``name@version``, recorded with every score.

Rendering guarantees: every judged text is inserted verbatim (braces included: it is a value, never a
template) between the lines ``[BEGIN NAME id]`` and ``[END NAME id]``, where ``id`` is 16 hex digits of
BLAKE2b over the rubric key and all texts of the call. The id is deterministic (the same call renders
the same prompt) yet a judged text cannot close its own block without finding a hash fixed point, so a
prompt injection inside a text cannot pose as the rubric's instructions; the bundled system prompts tell
the judge that block contents are data.

Parsing guarantees (:meth:`Rubric.parse`): the verdict is the first JSON object of the reply (the whole
reply, a fenced block, or an object inside prose) with a numeric ``score`` inside the scale (never
clamped) and a string ``explanation``; ``label`` is required and must be one of the labels
(case-insensitive, returned in declared spelling) when labels are declared, and is free text ("" if
absent) otherwise. Anything else raises :class:`JudgeOutputError` naming the value.

Bias controls: :func:`pairwise_messages` renders one order; call it twice with the outputs swapped and
count only :func:`consistent_preference` results that are not None (position bias). Judge families and
self-judging are ``streams.evaluation.families``.

Errors: ``RubricError`` (``streams.evaluation.rubric_checks``) names the file, the field and the bad
value. Reading rubric files is the only I/O; nothing here blocks otherwise.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from streams.evaluation.items import JudgeRequest
from streams.evaluation.rubric_checks import (
    PAIRWISE_LABELS,
    VERDICT_KEYS,
    Kind,
    RubricError,
    check_rubric,
    number_text,
    rubric_fields,
)

__all__ = [
    "BUNDLED_RUBRICS",
    "JudgeOutputError",
    "Rubric",
    "Verdict",
    "consistent_preference",
    "load_rubric_file",
    "load_rubrics",
    "pairwise_messages",
]

BUNDLED_RUBRICS: Final = Path(__file__).parent / "rubrics"
RUBRIC_SUFFIXES: Final = (".yaml", ".yml")
_UNSWAP: Final = {"A": "B", "B": "A", "tie": "tie"}

# Why a rubric does not apply, per missing text.
_MISSING_REASON: Final[Mapping[str, str]] = {
    "input": "no input text",
    "output": "no output text",
    "reference": "no reference text",
    "context": "no retrieval context text",
}
_BLOCK_ID_BYTES: Final = 8
# A reply is searched for a JSON object from at most this many opening braces (bounded work).
_MAX_OBJECT_STARTS: Final = 64
_FENCE_RE: Final = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)
_SHOWN_CHARS: Final = 200


class JudgeOutputError(ValueError):
    """A judge reply that is not a valid verdict for the rubric; the message names the bad value."""


@dataclass(frozen=True)
class Verdict:
    """The judge's verdict on one call (or one ordered pair) for one rubric."""

    score: float
    label: str
    explanation: str


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "...")


@dataclass(frozen=True)
class Rubric:
    """One validated rubric (see the module docstring); construction validates it (RubricError)."""

    name: str
    version: str
    kind: Kind
    description: str
    score_min: float
    score_max: float
    labels: tuple[str, ...]
    pass_label: str | None
    requires: tuple[str, ...]
    min_kappa: float
    system: str
    user: str

    def __post_init__(self) -> None:
        check_rubric(self)

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    # --- applicability and rendering --------------------------------------------------------------

    def _missing(self, request: JudgeRequest) -> str | None:
        present = {
            "input": request.input_text,
            "output": request.output_text,
            "reference": request.reference_text,
            "context": request.context_text,
        }
        for text in self.requires:
            value = present[text]
            if value is None or not value.strip():
                return _MISSING_REASON[text]
        return None

    def applies_to(self, request: JudgeRequest) -> str | None:
        """None when the rubric can judge ``request`` alone, else why not (``"no reference text"``)."""
        if self.kind == "pairwise":
            return "pairwise rubric: it compares two outputs (use pairwise_messages)"
        return self._missing(request)

    def _render(self, texts: Mapping[str, str]) -> list[dict[str, str]]:
        digest = hashlib.blake2b(digest_size=_BLOCK_ID_BYTES)
        for part in (self.key, *(f"{k}={v}" for k, v in sorted(texts.items()))):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\x00")
        block_id = digest.hexdigest()
        blocks = _Blocks(
            {
                name: f"[BEGIN {name.upper()} {block_id}]\n{text}\n[END {name.upper()} {block_id}]"
                for name, text in texts.items()
            },
            rubric=self.key,
        )
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user.format_map(blocks)},
        ]

    def messages(self, request: JudgeRequest) -> list[dict[str, str]]:
        """The judge's chat messages (system, user) for ``request``; ValueError if it does not apply."""
        reason = self.applies_to(request)
        if reason is not None:
            raise ValueError(
                f"rubric {self.key} does not apply to request {request.event_id!r}: {reason}"
            )
        return self._render(
            {
                "input": request.input_text,
                "output": request.output_text,
                "reference": request.reference_text or "",
                "context": request.context_text or "",
            }
        )

    # --- verdicts ---------------------------------------------------------------------------------

    def parse(self, text: str) -> Verdict:
        """The verdict in a judge reply (see the module docstring); JudgeOutputError naming the value."""
        data = _json_object(text)
        required = VERDICT_KEYS if self.labels else ("score", "explanation")
        missing = [k for k in required if k not in data]
        if missing:
            raise JudgeOutputError(
                f"judge reply for rubric {self.key} lacks {missing}: got {_shown(json.dumps(data))}"
            )
        score = _score(data["score"], self.key)
        if not self.score_min <= score <= self.score_max:
            raise JudgeOutputError(
                f"score {data['score']!r} is outside the scale {number_text(self.score_min)} to "
                f"{number_text(self.score_max)} of rubric {self.key}"
            )
        label = data.get("label", "")
        if label is None and not self.labels:
            label = ""
        if not isinstance(label, str):
            raise JudgeOutputError(f"label must be a string for rubric {self.key}: got {label!r}")
        label = label.strip()
        if self.labels:
            label = self._canonical_label(label)
        explanation = data["explanation"]
        if not isinstance(explanation, str):
            raise JudgeOutputError(
                f"explanation must be a string for rubric {self.key}: got {explanation!r}"
            )
        return Verdict(score=score, label=label, explanation=explanation.strip())

    def _canonical_label(self, label: str) -> str:
        for known in self.labels:
            if known.casefold() == label.casefold():
                return known
        raise JudgeOutputError(
            f"label {label!r} is not one of {list(self.labels)} of rubric {self.key}"
        )

    def normalized(self, score: float) -> float:
        """``score`` mapped linearly from the scale to [0, 1]; ValueError outside the scale."""
        if not (math.isfinite(score) and self.score_min <= score <= self.score_max):
            raise ValueError(
                f"score {score!r} is outside the scale {number_text(self.score_min)} to "
                f"{number_text(self.score_max)} of rubric {self.key}"
            )
        return (score - self.score_min) / (self.score_max - self.score_min)


class _Blocks(dict[str, str]):
    """The rendering mapping: only known placeholders (validated at load) resolve."""

    def __init__(self, values: Mapping[str, str], *, rubric: str) -> None:
        super().__init__(values)
        self.rubric = rubric

    def __missing__(self, key: str) -> str:
        raise KeyError(f"rubric {self.rubric} has no text for placeholder {{{key}}}")


# --- parsing replies ------------------------------------------------------------------------------


def _json_object(text: str) -> dict[str, Any]:
    """The first JSON object of a reply: the whole reply, a fenced block, or one inside prose."""
    if not isinstance(text, str):
        raise JudgeOutputError(f"judge reply must be text, got {type(text).__name__}")
    stripped = text.strip()
    candidates = [stripped, *(m.group(1).strip() for m in _FENCE_RE.finditer(text))]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    start = text.find("{")
    tries = 0
    while start != -1 and tries < _MAX_OBJECT_STARTS:
        tries += 1
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            if "score" in value:
                return value
            found.append(value)
        start = text.find("{", end)
    if found:
        return found[0]
    raise JudgeOutputError(f"no JSON object in the judge reply: got {_shown(text)}")


def _score(value: object, key: str) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise JudgeOutputError(f"score must be a finite number for rubric {key}: got {value!r}")
    return number


def load_rubric_file(path: Path | str) -> Rubric:
    """One rubric file; RubricError naming the file, the field and the bad value."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RubricError(f"{path}: cannot read rubric file: {exc}") from exc
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise RubricError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return Rubric(**rubric_fields(data))
    except RubricError as exc:
        raise RubricError(f"{path}: {exc}") from exc


def load_rubrics(folder: Path | str | None = None) -> dict[str, Rubric]:
    """Every rubric file (``*.yaml``, ``*.yml``) of ``folder`` (default: the bundled rubrics), by name.

    RubricError for a missing or empty folder, a bad file, or a name defined by two files.
    """
    root = BUNDLED_RUBRICS if folder is None else Path(folder)
    if not root.is_dir():
        raise RubricError(f"{root}: not a folder of rubric files")
    files = sorted(p for p in root.iterdir() if p.suffix in RUBRIC_SUFFIXES and p.is_file())
    if not files:
        raise RubricError(
            f"{root}: no rubric files ({', '.join('*' + s for s in RUBRIC_SUFFIXES)})"
        )
    rubrics: dict[str, Rubric] = {}
    origin: dict[str, Path] = {}
    for path in files:
        rubric = load_rubric_file(path)
        if rubric.name in rubrics:
            raise RubricError(
                f"{path}: field 'name': rubric {rubric.name!r} is already defined in {origin[rubric.name]}"
            )
        rubrics[rubric.name] = rubric
        origin[rubric.name] = path
    return rubrics


# --- pairwise -------------------------------------------------------------------------------------


def pairwise_messages(
    rubric: Rubric, request: JudgeRequest, output_a: str, output_b: str
) -> list[dict[str, str]]:
    """The judge's messages comparing ``output_a`` (shown as A) with ``output_b`` (B) for ``request``.

    Run it twice, the second time with the outputs swapped, and keep :func:`consistent_preference`.
    ValueError for a pointwise rubric, an empty output, or a required text the request lacks.
    """
    if rubric.kind != "pairwise":
        raise ValueError(f"rubric {rubric.key} is {rubric.kind}, not pairwise")
    for name, output in (("output_a", output_a), ("output_b", output_b)):
        if not output.strip():
            raise ValueError(f"rubric {rubric.key} needs a non-empty {name}, got {output!r}")
    reason = rubric._missing(request)
    if reason is not None:
        raise ValueError(
            f"rubric {rubric.key} does not apply to request {request.event_id!r}: {reason}"
        )
    return rubric._render(
        {
            "input": request.input_text,
            "output_a": output_a,
            "output_b": output_b,
            "reference": request.reference_text or "",
            "context": request.context_text or "",
        }
    )


def _preference(verdict: Verdict) -> str:
    for label in PAIRWISE_LABELS:
        if verdict.label.strip().casefold() == label.casefold():
            return label
    raise ValueError(
        f"a pairwise verdict's label is one of {list(PAIRWISE_LABELS)}, got {verdict.label!r}"
    )


def consistent_preference(first: Verdict, swapped: Verdict) -> str | None:
    """``"A"``, ``"B"`` or ``"tie"`` when both orders agree, else None (position bias: not counted).

    ``first`` judged (A, B); ``swapped`` judged the same outputs as (B, A), so its label is un-swapped
    before comparing. ValueError for a label outside A, B, tie.
    """
    a = _preference(first)
    b = _UNSWAP[_preference(swapped)]
    return a if a == b else None
