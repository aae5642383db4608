"""Turn a panel's SQL into the SQL the ClickHouse plugin would send, for a fixed time range.

Grafana runs a panel query in two steps, reproduced here in the same order:

1. Template variables (the frontend): ``${name:singlequote}``, ``${name}`` and ``$name``. A multi-value
   variable formats as ``'a','b'`` with ``:singlequote``; a variable set to All with a custom
   ``allValue`` yields that value verbatim, whatever the format (Grafana does not format custom all
   values). Grafana's ``$__interval``/``$__from``-style globals are not used by llmwatch and raise.
2. The plugin's backend macros (grafana-clickhouse-datasource ``pkg/macros``): ``$__timeFilter(c)``
   -> ``c >= toDateTime(from) AND c <= toDateTime(to)`` (seconds), ``$__timeFilter_ms(c)``,
   ``$__dateFilter(c)``, ``$__fromTime``/``$__toTime`` (``toDateTime(s)``), ``$__fromTime_ms``/
   ``$__toTime_ms`` (``fromUnixTimestamp64Milli(ms)``), ``$__timeInterval(c)`` ->
   ``toStartOfInterval(toDateTime(c), INTERVAL n second)``, ``$__timeInterval_ms(c)`` and
   ``$__interval_s``, with the interval at least 1 s as the plugin does.

Anything else that looks like a macro or variable raises ``ValueError`` naming it, so a typo in a
dashboard fails the tests instead of failing in Grafana. Pure string work: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

__all__ = [
    "AllValue",
    "QueryWindow",
    "VariableValue",
    "expand_macros",
    "interpolate_variables",
    "referenced_variables",
    "render_sql",
]

_MACRO_RE: Final = re.compile(r"\$__([A-Za-z_]+)")
# ${name}, ${name:format} or $name (not $__macros).
_VARIABLE_RE: Final = re.compile(r"\$\{([A-Za-z_]\w*)(?::(\w+))?\}|\$(?!__)([A-Za-z_]\w*)")
_SUPPORTED_FORMATS: Final = frozenset({"singlequote", "raw", "text", "csv"})


@dataclass(frozen=True, slots=True)
class AllValue:
    """A variable set to All; ``raw`` is its custom ``allValue`` (inserted verbatim)."""

    raw: str


VariableValue = AllValue | Sequence[str]


@dataclass(frozen=True, slots=True)
class QueryWindow:
    """The dashboard time range and the panel's interval (``$__interval``) in seconds."""

    start: datetime
    end: datetime
    interval_s: float

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"times must be timezone-aware, got {self.start!r} and {self.end!r}")
        if self.end <= self.start:
            raise ValueError(
                f"end {self.end.isoformat()} must be after start {self.start.isoformat()}"
            )
        if self.interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {self.interval_s!r}")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _format(name: str, fmt: str | None, value: VariableValue) -> str:
    if fmt is not None and fmt not in _SUPPORTED_FORMATS:
        raise ValueError(f"variable ${{{name}:{fmt}}}: unsupported format {fmt!r}")
    if isinstance(value, AllValue):
        return value.raw
    values = list(value)
    if fmt == "singlequote":
        return ",".join(_quote(v) for v in values)
    if len(values) == 1:
        return values[0]
    return ",".join(values) if fmt in {"csv", "raw"} else "{" + ",".join(values) + "}"


def referenced_variables(sql: str) -> set[str]:
    """The template variable names a query uses (not ``$__`` macros)."""
    return {m.group(1) or m.group(3) for m in _VARIABLE_RE.finditer(sql)}


def interpolate_variables(sql: str, variables: Mapping[str, VariableValue]) -> str:
    """Step 1: replace template variables; an undefined one raises ValueError naming it."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name not in variables:
            raise ValueError(f"query uses undefined variable ${name}; defined: {sorted(variables)}")
        return _format(name, match.group(2), variables[name])

    return _VARIABLE_RE.sub(replace, sql)


def _args_end(sql: str, open_at: int) -> int:
    """Index of the parenthesis closing the one at ``open_at``."""
    depth = 0
    quoted = False
    for i in range(open_at, len(sql)):
        ch = sql[i]
        if ch == "'" and sql[i - 1] != "\\":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced parentheses in macro arguments: {sql[open_at : open_at + 80]!r}")


def _split_args(text: str) -> list[str]:
    args: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
            continue
        depth += (ch == "(") - (ch == ")")
        current.append(ch)
    args.append("".join(current).strip())
    return args


def _seconds(t: datetime) -> int:
    return int(t.timestamp() // 1)


def _millis(t: datetime) -> int:
    return int(t.timestamp() * 1000 // 1)


def _one_arg(name: str, args: list[str]) -> str:
    if len(args) != 1 or not args[0]:
        raise ValueError(f"macro $__{name} takes 1 argument, got {args!r}")
    return args[0]


def _function_macro(name: str, args: list[str], window: QueryWindow) -> str:
    lo, hi = window.start, window.end
    if name == "timeFilter":
        col = _one_arg(name, args)
        return f"{col} >= toDateTime({_seconds(lo)}) AND {col} <= toDateTime({_seconds(hi)})"
    if name == "timeFilter_ms":
        col = _one_arg(name, args)
        return (
            f"{col} >= fromUnixTimestamp64Milli({_millis(lo)}) AND "
            f"{col} <= fromUnixTimestamp64Milli({_millis(hi)})"
        )
    if name == "dateFilter":
        col = _one_arg(name, args)
        day = "%Y-%m-%d"
        return (
            f"{col} >= toDate('{lo.astimezone(UTC):{day}}') AND "
            f"{col} <= toDate('{hi.astimezone(UTC):{day}}')"
        )
    if name == "timeInterval":
        seconds = max(int(window.interval_s), 1)
        return f"toStartOfInterval(toDateTime({_one_arg(name, args)}), INTERVAL {seconds} second)"
    if name == "timeInterval_ms":
        millis = max(int(window.interval_s * 1000), 1)
        col = _one_arg(name, args)
        return f"toStartOfInterval(toDateTime64({col}, 3), INTERVAL {millis} millisecond)"
    raise ValueError(f"unknown ClickHouse plugin macro $__{name}(...)")


def _plain_macro(name: str, window: QueryWindow) -> str:
    values = {
        "fromTime": f"toDateTime({_seconds(window.start)})",
        "toTime": f"toDateTime({_seconds(window.end)})",
        "fromTime_ms": f"fromUnixTimestamp64Milli({_millis(window.start)})",
        "toTime_ms": f"fromUnixTimestamp64Milli({_millis(window.end)})",
        "interval_s": str(max(int(window.interval_s), 1)),
    }
    if name not in values:
        raise ValueError(f"unknown ClickHouse plugin macro $__{name}")
    return values[name]


def expand_macros(sql: str, window: QueryWindow) -> str:
    """Step 2: expand the plugin's macros for ``window``; unknown macros raise ValueError."""
    out: list[str] = []
    pos = 0
    while (match := _MACRO_RE.search(sql, pos)) is not None:
        out.append(sql[pos : match.start()])
        name = match.group(1)
        if match.end() < len(sql) and sql[match.end()] == "(":
            close = _args_end(sql, match.end())
            args = _split_args(sql[match.end() + 1 : close])
            out.append(_function_macro(name, args, window))
            pos = close + 1
        else:
            out.append(_plain_macro(name, window))
            pos = match.end()
    out.append(sql[pos:])
    return "".join(out)


def render_sql(sql: str, window: QueryWindow, variables: Mapping[str, VariableValue]) -> str:
    """Both steps, in Grafana's order: variables, then macros."""
    return expand_macros(interpolate_variables(sql, variables), window)
