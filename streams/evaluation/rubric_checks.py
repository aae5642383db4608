"""What a valid rubric is: the rubric file's fields, their checks, and :class:`RubricError`.

A rubric file (see ``streams.evaluation.rubric``) holds one mapping:

- ``name`` (``[a-z][a-z0-9_]*``) and ``version`` (a quoted string of dotted numbers, ``"1.0"``: an
  unquoted ``1.10`` would silently become ``1.1``); ``key`` is ``name@version``, recorded with every
  score. Change the version whenever the prompt or the scale changes.
- ``description``; ``kind``: ``pointwise`` (default: one output) or ``pairwise`` (two outputs, labels
  exactly ``A``, ``B``, ``tie``).
- ``scale: {min, max}`` (min < max). Higher is better in every bundled rubric (the score-drop alert
  assumes it). Optional ``labels`` (at least two, distinct, no commas) and ``pass_label`` (one of them).
- ``requires``: the texts the call must carry, any of ``input``, ``output``, ``reference``,
  ``context`` (the retrieval span's text); each must be a placeholder of ``user``. A pairwise rubric
  cannot require ``output``: it takes ``{output_a}`` and ``{output_b}``.
- ``min_kappa`` in [0, 1] (default 0): the judge-human weighted kappa the rubric must reach before its
  scores drive alerts; 0 = no gate.
- ``system``: the fixed instructions; no placeholders (judged texts never go into the system message).
  It must state the scale on a line ``Scale: <min> to <max>``, the labels (if any) on a line
  ``Labels: a, b, c`` in declared order, and name the JSON keys ``"score"``, ``"label"`` and
  ``"explanation"``, so the prompt a judge reads always agrees with what ``Rubric.parse`` accepts.
- ``user``: the template, with placeholders ``{input}``, ``{output}``, ``{reference}``, ``{context}``
  (pairwise: ``{output_a}``, ``{output_b}`` instead of ``{output}``); a literal brace is ``{{``/``}}``.
  Conversions, format specs and attribute access are rejected.

:func:`rubric_fields` turns a parsed file into ``Rubric`` fields (unknown or missing fields, wrong
types); :func:`check_rubric`, run by every ``Rubric`` construction, enforces the rest. Both raise
:class:`RubricError` naming the field and the bad value (the loader adds the file). Pure checks: no I/O,
never blocks.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from producers.events import MAX_LABEL_CHARS

if TYPE_CHECKING:
    from streams.evaluation.rubric import Rubric

__all__ = [
    "KINDS",
    "PAIRWISE_LABELS",
    "PAIRWISE_OUTPUTS",
    "PLACEHOLDERS",
    "TEXTS",
    "VERDICT_KEYS",
    "Kind",
    "RubricError",
    "Text",
    "check_rubric",
    "number_text",
    "rubric_fields",
]

Kind = Literal["pointwise", "pairwise"]
KINDS: Final = get_args(Kind)
Text = Literal["input", "output", "reference", "context"]
TEXTS: Final = get_args(Text)
PAIRWISE_OUTPUTS: Final = ("output_a", "output_b")
PLACEHOLDERS: Final[Mapping[str, frozenset[str]]] = {
    "pointwise": frozenset(TEXTS),
    "pairwise": frozenset(("input", "reference", "context", *PAIRWISE_OUTPUTS)),
}
PAIRWISE_LABELS: Final = ("A", "B", "tie")
_REQUIRED_FIELDS: Final = ("name", "version", "description", "scale", "requires", "system", "user")
_OPTIONAL_FIELDS: Final = ("kind", "labels", "pass_label", "min_kappa")
_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSION_RE: Final = re.compile(r"^\d+(?:\.\d+)*$")
_MAX_VERSION_CHARS: Final = 32
_SCALE_LINE_RE: Final = re.compile(
    r"^[ \t]*Scale:[ \t]*(-?\d+(?:\.\d+)?)[ \t]*to[ \t]*(-?\d+(?:\.\d+)?)[ \t]*$", re.MULTILINE
)
_LABELS_LINE_RE: Final = re.compile(r"^[ \t]*Labels:[ \t]*(.*?)[ \t]*$", re.MULTILINE)
VERDICT_KEYS: Final = ("score", "label", "explanation")
_SYSTEM_PLACEHOLDER_RE: Final = re.compile(
    r"(?<!\{)\{(" + "|".join(sorted(PLACEHOLDERS["pointwise"] | PLACEHOLDERS["pairwise"])) + r")\}"
)


class RubricError(ValueError):
    """A rubric that cannot be used; the message names the file (or rubric), the field and the value."""


def number_text(value: float) -> str:
    """A scale bound as the prompt states it: ``5`` for 5.0, ``0.5`` for 0.5."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _fail(field: str, message: str) -> RubricError:
    return RubricError(f"field {field!r}: {message}")


def _template_fields(template: str, field: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise _fail(
            field, f"malformed braces ({exc}); write a literal brace as {{{{ or }}}}"
        ) from exc
    names: list[str] = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name:
            raise _fail(field, "an empty placeholder {} (name the text, e.g. {output})")
        if spec or conversion:
            shown = (
                f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
            )
            raise _fail(field, f"placeholders take no conversion or format spec, got {shown}")
        names.append(name)
    return names


def check_rubric(rubric: Rubric) -> None:
    """Semantic checks of a rubric; RubricError naming the field and the bad value."""
    if not isinstance(rubric.name, str) or not _NAME_RE.match(rubric.name):
        raise _fail("name", f"must match {_NAME_RE.pattern}, got {rubric.name!r}")
    if len(rubric.name) + 1 + len(str(rubric.version)) > MAX_LABEL_CHARS:
        raise _fail("name", f"name@version must fit {MAX_LABEL_CHARS} chars, got {rubric.name!r}")
    if (
        not isinstance(rubric.version, str)
        or not _VERSION_RE.match(rubric.version)
        or len(rubric.version) > _MAX_VERSION_CHARS
    ):
        hint = ' (quote it: version: "1.0")' if not isinstance(rubric.version, str) else ""
        raise _fail(
            "version",
            f'must be a string of dotted numbers like "1.0"{hint}, got {rubric.version!r}',
        )
    if rubric.kind not in KINDS:
        raise _fail("kind", f"must be one of {list(KINDS)}, got {rubric.kind!r}")
    if not isinstance(rubric.description, str) or not rubric.description.strip():
        raise _fail("description", f"must be a non-empty string, got {rubric.description!r}")
    for bound in (rubric.score_min, rubric.score_max):
        if (
            isinstance(bound, bool)
            or not isinstance(bound, int | float)
            or not math.isfinite(bound)
        ):
            raise _fail("scale", f"min and max must be finite numbers, got {bound!r}")
    if not rubric.score_min < rubric.score_max:
        raise _fail(
            "scale",
            f"min must be below max, got min {rubric.score_min!r}, max {rubric.score_max!r}",
        )
    _check_labels(rubric)
    if isinstance(rubric.min_kappa, bool) or not isinstance(rubric.min_kappa, int | float):
        raise _fail("min_kappa", f"must be a number in [0, 1], got {rubric.min_kappa!r}")
    if not 0.0 <= rubric.min_kappa <= 1.0:
        raise _fail("min_kappa", f"must be in [0, 1] (0 = no gate), got {rubric.min_kappa!r}")
    _check_requires(rubric)
    _check_system(rubric)


def _check_labels(rubric: Rubric) -> None:
    labels = rubric.labels
    if labels:
        if len(labels) < 2:
            raise _fail("labels", f"declare at least two labels, got {list(labels)!r}")
        for label in labels:
            if (
                not isinstance(label, str)
                or not label.strip()
                or "," in label
                or label != label.strip()
            ):
                raise _fail(
                    "labels", f"labels are non-empty trimmed strings without commas, got {label!r}"
                )
        folded = [label.casefold() for label in labels]
        if len(set(folded)) != len(folded):
            raise _fail("labels", f"labels must differ (ignoring case), got {list(labels)!r}")
    if rubric.kind == "pairwise" and sorted(labels) != sorted(PAIRWISE_LABELS):
        raise _fail(
            "labels",
            f"a pairwise rubric's labels are {list(PAIRWISE_LABELS)}, got {list(labels)!r}",
        )
    if rubric.pass_label is not None:
        if rubric.kind == "pairwise":
            raise _fail(
                "pass_label", f"a pairwise rubric has no pass label, got {rubric.pass_label!r}"
            )
        if rubric.pass_label not in labels:
            raise _fail(
                "pass_label",
                f"must be one of the labels {list(labels)!r}, got {rubric.pass_label!r}",
            )


def _check_requires(rubric: Rubric) -> None:
    for text in rubric.requires:
        if text not in TEXTS:
            raise _fail("requires", f"each entry is one of {list(TEXTS)}, got {text!r}")
    if len(set(rubric.requires)) != len(rubric.requires):
        raise _fail("requires", f"entries must be distinct, got {list(rubric.requires)!r}")
    if rubric.kind == "pointwise" and "output" not in rubric.requires:
        raise _fail(
            "requires", f"a pointwise rubric judges the output, got {list(rubric.requires)!r}"
        )
    if rubric.kind == "pairwise" and "output" in rubric.requires:
        raise _fail(
            "requires",
            "a pairwise rubric takes {output_a} and {output_b}, not 'output', "
            f"got {list(rubric.requires)!r}",
        )
    if not isinstance(rubric.user, str) or not rubric.user.strip():
        raise _fail("user", f"must be a non-empty template, got {rubric.user!r}")
    used = _template_fields(rubric.user, "user")
    allowed = PLACEHOLDERS[rubric.kind]
    for name in used:
        if name not in allowed:
            raise _fail(
                "user",
                f"unknown placeholder {{{name}}}; a {rubric.kind} rubric takes {sorted(allowed)}",
            )
    needed = list(rubric.requires) + (list(PAIRWISE_OUTPUTS) if rubric.kind == "pairwise" else [])
    unused = [text for text in needed if text not in used]
    if unused:
        raise _fail("user", f"the template must show every required text, missing {unused}")


def _check_system(rubric: Rubric) -> None:
    system = rubric.system
    if not isinstance(system, str) or not system.strip():
        raise _fail("system", f"must be non-empty text, got {system!r}")
    placeholder = _SYSTEM_PLACEHOLDER_RE.search(system)
    if placeholder is not None:
        raise _fail(
            "system",
            f"holds placeholder {placeholder.group(0)}: judged texts go in the user template only",
        )
    scale = _SCALE_LINE_RE.findall(system)
    wanted = f"Scale: {number_text(rubric.score_min)} to {number_text(rubric.score_max)}"
    if len(scale) != 1 or (float(scale[0][0]), float(scale[0][1])) != (
        float(rubric.score_min),
        float(rubric.score_max),
    ):
        raise _fail("system", f"must state the scale on one line {wanted!r}, got {scale!r}")
    lines = _LABELS_LINE_RE.findall(system)
    if rubric.labels:
        declared = ", ".join(rubric.labels)
        stated = [tuple(n.strip() for n in line.split(",")) for line in lines]
        if stated != [rubric.labels]:
            raise _fail(
                "system", f"must list the labels on one line 'Labels: {declared}', got {lines!r}"
            )
    elif lines:
        raise _fail("system", f"states labels {lines!r} but the rubric declares none")
    for key in VERDICT_KEYS:
        if f'"{key}"' not in system:
            raise _fail("system", f'must tell the judge to answer JSON with key "{key}"')


def _scale_of(value: object) -> tuple[Any, Any]:
    if not isinstance(value, dict):
        raise _fail("scale", f"must be a mapping {{min: <number>, max: <number>}}, got {value!r}")
    extra = sorted(set(value) - {"min", "max"})
    if extra or "min" not in value or "max" not in value:
        raise _fail("scale", f"must have exactly the keys min and max, got {value!r}")
    return _as_float(value["min"]), _as_float(value["max"])


def _as_float(value: object) -> Any:
    """YAML integers as floats (the declared type); anything else unchanged, for the checks to name."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _strings(value: object, field: str) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise _fail(field, f"must be a list, got {value!r}")
    for item in value:
        if not isinstance(item, str):
            raise _fail(field, f"entries must be strings, got {item!r}")
    return tuple(value)


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise _fail(field, f"must be text, got {value!r}")
    return value.strip()


def rubric_fields(data: object) -> dict[str, Any]:
    """The :class:`Rubric` fields of one parsed rubric file; RubricError naming the field and value."""
    if not isinstance(data, dict):
        raise RubricError(f"a rubric file holds one mapping, got {type(data).__name__}")
    unknown = sorted(str(k) for k in set(data) - set(_REQUIRED_FIELDS) - set(_OPTIONAL_FIELDS))
    if unknown:
        raise _fail(
            unknown[0], f"unknown field (known: {sorted(_REQUIRED_FIELDS + _OPTIONAL_FIELDS)})"
        )
    for field in _REQUIRED_FIELDS:
        if field not in data:
            raise _fail(field, "missing")
    score_min, score_max = _scale_of(data["scale"])
    labels = _strings(data.get("labels") or [], "labels")
    pass_label = data.get("pass_label")
    if pass_label is not None and not isinstance(pass_label, str):
        raise _fail("pass_label", f"must be a string, got {pass_label!r}")
    min_kappa = _as_float(data.get("min_kappa", 0.0))
    return dict(
        name=data["name"],
        version=data["version"],
        kind=data.get("kind", "pointwise"),
        description=_text(data["description"], "description"),
        score_min=score_min,
        score_max=score_max,
        labels=labels,
        pass_label=pass_label,
        requires=_strings(data["requires"], "requires"),
        min_kappa=min_kappa,
        system=_text(data["system"], "system"),
        user=_text(data["user"], "user"),
    )
