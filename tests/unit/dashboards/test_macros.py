"""The expander of template variables and the ClickHouse plugin's macros."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Final

import pytest

from dashboards.macros import (
    AllValue,
    QueryWindow,
    VariableValue,
    expand_macros,
    interpolate_variables,
    referenced_variables,
    render_sql,
)
from tests.clock import HOUR, Clock

# A window of whole seconds plus 250 ms at its start, two hours long, relative to the run's clock.
_HOUR: Final = Clock.read().ago(days=1, step=HOUR)
START: Final = _HOUR + timedelta(minutes=30, seconds=15, milliseconds=250)
END: Final = _HOUR + timedelta(hours=2, minutes=30)
WINDOW: Final = QueryWindow(START, END, 300)
FROM_S: Final = int(START.timestamp())
TO_S: Final = int(END.timestamp())


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("$__timeFilter(ts)", f"ts >= toDateTime({FROM_S}) AND ts <= toDateTime({TO_S})"),
        (
            "$__timeFilter_ms(ts)",
            f"ts >= fromUnixTimestamp64Milli({FROM_S}250) AND ts <= fromUnixTimestamp64Milli({TO_S}000)",
        ),
        (
            "$__dateFilter(d)",
            f"d >= toDate('{START.date().isoformat()}') AND d <= toDate('{END.date().isoformat()}')",
        ),
        ("$__fromTime", f"toDateTime({FROM_S})"),
        ("$__toTime - 1", f"toDateTime({TO_S}) - 1"),
        ("$__fromTime_ms", f"fromUnixTimestamp64Milli({FROM_S}250)"),
        ("$__toTime_ms", f"fromUnixTimestamp64Milli({TO_S}000)"),
        ("$__timeInterval(t)", "toStartOfInterval(toDateTime(t), INTERVAL 300 second)"),
        (
            "$__timeInterval_ms(t)",
            "toStartOfInterval(toDateTime64(t, 3), INTERVAL 300000 millisecond)",
        ),
        ("x / $__interval_s", "x / 300"),
        (
            "$__timeFilter(toDateTime(f(a, b)))",
            f"toDateTime(f(a, b)) >= toDateTime({FROM_S}) AND toDateTime(f(a, b)) <= toDateTime({TO_S})",
        ),
        ("no macros here", "no macros here"),
    ],
)
def test_macros_expand_like_the_plugin_backend(sql: str, expected: str) -> None:
    assert expand_macros(sql, WINDOW) == expected


def test_a_sub_second_interval_is_one_second_as_in_the_plugin() -> None:
    assert expand_macros("$__interval_s", QueryWindow(START, END, 0.2)) == "1"


def test_times_are_converted_to_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    window = QueryWindow(START.astimezone(plus2), END.astimezone(plus2), 60)
    assert expand_macros("$__fromTime", window) == f"toDateTime({FROM_S})"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("$__nosuch(x)", "unknown ClickHouse plugin macro $__nosuch(...)"),
        ("$__nosuch", "unknown ClickHouse plugin macro $__nosuch"),
        ("$__timeFilter(a, b)", "macro $__timeFilter takes 1 argument"),
        ("$__timeFilter()", "macro $__timeFilter takes 1 argument"),
        ("$__timeFilter(a", "unbalanced parentheses"),
    ],
)
def test_bad_macros_raise_naming_them(sql: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        expand_macros(sql, WINDOW)


ALL: Final = AllValue("'__all__'")


@pytest.mark.parametrize(
    ("sql", "values", "expected"),
    [
        ("IN (${s:singlequote})", {"s": ["a", "b"]}, "IN ('a','b')"),
        ("IN (${s:singlequote})", {"s": ["it's"]}, "IN ('it\\'s')"),
        ("IN (${s:singlequote})", {"s": ALL}, "IN ('__all__')"),
        ("x = '$s'", {"s": ["a"]}, "x = 'a'"),
        ("x = '${s}'", {"s": ["a"]}, "x = 'a'"),
        ("${s:csv}", {"s": ["a", "b"]}, "a,b"),
        ("$__interval_s stays", {}, "$__interval_s stays"),
    ],
)
def test_variables_format_like_grafana(
    sql: str, values: dict[str, VariableValue], expected: str
) -> None:
    assert interpolate_variables(sql, values) == expected


def test_an_undefined_variable_raises_naming_it() -> None:
    with pytest.raises(ValueError, match=r"undefined variable \$missing"):
        interpolate_variables("x IN (${missing:singlequote})", {"s": ["a"]})


def test_an_unsupported_format_raises_naming_it() -> None:
    with pytest.raises(ValueError, match="unsupported format 'regex'"):
        interpolate_variables("${s:regex}", {"s": ["a"]})


def test_referenced_variables_ignore_macros() -> None:
    sql = "$__timeFilter(t) AND a IN (${env:singlequote}) AND b = $svc AND c = ${model}"
    assert referenced_variables(sql) == {"env", "svc", "model"}


def test_render_sql_interpolates_variables_before_macros() -> None:
    sql = "SELECT 1 WHERE $__timeFilter(t) AND s IN (${s:singlequote})"
    assert render_sql(sql, WINDOW, {"s": ["a"]}) == (
        f"SELECT 1 WHERE t >= toDateTime({FROM_S}) AND t <= toDateTime({TO_S}) AND s IN ('a')"
    )


@pytest.mark.parametrize(
    ("start", "end", "interval", "message"),
    [
        (START.replace(tzinfo=None), END, 60, "timezone-aware"),
        (END, START, 60, "must be after start"),
        (START, END, 0, "interval_s must be positive"),
    ],
)
def test_query_window_rejects_bad_values(
    start: datetime, end: datetime, interval: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        QueryWindow(start, end, interval)
