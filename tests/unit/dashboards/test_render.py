"""Panel drawing and the pure parts of the query runner (no database)."""

from __future__ import annotations

import struct
from datetime import timedelta
from typing import Any, Final

import pytest

from dashboards.render import format_value, render_error, render_panel
from dashboards.runner import QueryResult, panel_interval_s, parse_interval, with_database
from tests.clock import HOUR, Clock

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
T0: Final = Clock.read().ago(hours=2, step=HOUR)


def _size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", png[16:24])
    return width, height


@pytest.mark.parametrize(
    ("value", "unit", "decimals", "expected"),
    [
        (0.02528, "percentunit", 2, "2.53%"),
        (812.4, "ms", None, "812 ms"),
        (14048.5, "ms", None, "14.05 s"),
        (2.444, "s", None, "2.44 s"),
        (600.0, "s", None, "10.0 min"),
        (9.7705, "currencyUSD", 2, "$9.77"),
        (0.0074470, "currencyUSD", None, "$0.00745"),
        (1479, "short", None, "1.5K"),
        (12, "short", None, "12"),
        (None, "short", None, "No data"),
        ("text", "short", None, "text"),
    ],
)
def test_values_are_formatted_by_unit(
    value: Any, unit: str, decimals: int | None, expected: str
) -> None:
    assert format_value(value, unit, decimals) == expected


def _panel(kind: str, **defaults: Any) -> dict[str, Any]:
    return {"type": kind, "gridPos": {"w": 12, "h": 8}, "fieldConfig": {"defaults": defaults}}


SERIES: Final = QueryResult(
    ["time", "service", "calls"],
    ["DateTime", "LowCardinality(String)", "Float64"],
    [(T0 + timedelta(minutes=m), s, float(m + n)) for m in range(10) for n, s in enumerate("ab")],
)
NUMBER: Final = QueryResult(["rate"], ["Nullable(Float64)"], [(0.07,)])
TABLE: Final = QueryResult(["slo", "burn"], ["String", "Float64"], [("x" * 200, 1.5), ("y", None)])
RED: Final = {
    "mode": "absolute",
    "steps": [{"value": None, "color": "green"}, {"value": 0.05, "color": "red"}],
}


@pytest.mark.parametrize(
    ("panel", "result"),
    [
        (_panel("timeseries", unit="short", custom={"axisLabel": "calls / min"}), SERIES),
        (
            _panel(
                "timeseries", unit="short", custom={"stacking": {"mode": "normal"}}, thresholds=RED
            ),
            SERIES,
        ),
        (_panel("stat", unit="percentunit", thresholds=RED), NUMBER),
        (_panel("gauge", unit="percentunit", min=0, max=1, thresholds=RED), NUMBER),
        (_panel("table"), TABLE),
        (_panel("table"), QueryResult(["a"], ["String"], [])),
        # chdb returns an empty result without column names: the table must still render.
        (_panel("table"), QueryResult([], [], [])),
        (_panel("timeseries"), QueryResult(["time", "v"], ["DateTime", "Float64"], [])),
    ],
    ids=[
        "lines",
        "stacked",
        "stat",
        "gauge",
        "table",
        "empty-table",
        "empty-table-no-columns",
        "empty-series",
    ],
)
def test_each_panel_kind_draws_a_png(panel: dict[str, Any], result: QueryResult) -> None:
    width, height = _size(render_panel(panel, result, "Title"))
    assert width >= 500 and height >= 100


def test_a_failed_query_draws_its_error() -> None:
    width, _height = _size(render_error(_panel("stat"), "Title", "Code: 47. DB::Exception: boom"))
    assert width >= 500


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("1m", 60), ("1h", 3600), ("2d", 172800)]
)
def test_intervals_parse(text: str, seconds: int) -> None:
    assert parse_interval(text) == seconds


def test_a_bad_interval_raises_naming_it() -> None:
    with pytest.raises(ValueError, match="got '1 minute'"):
        parse_interval("1 minute")


@pytest.mark.parametrize(
    ("interval", "window_s", "expected"),
    [
        ("1m", 7_200, 60),
        ("1m", 86_400, 900),
        ("1h", 7_200, 3_600),
        (None, 600, 60),
        ("1m", 60 * 86_400, 43_200),
        ("1m", 200 * 86_400, 144_000),
    ],
)
def test_panel_interval_is_a_nice_step_above_the_minimum(
    interval: str | None, window_s: float, expected: int
) -> None:
    panel = {"interval": interval} if interval else {}
    assert panel_interval_s(panel, window_s) == expected


def test_queries_can_be_moved_to_another_database() -> None:
    sql = "SELECT 1 FROM llmwatch.llm_calls FINAL JOIN llmwatch.llm_dlq USING x WHERE s = 'llmwatch.x'"
    assert with_database(sql, "t1") == (
        "SELECT 1 FROM t1.llm_calls FINAL JOIN t1.llm_dlq USING x WHERE s = 'llmwatch.x'"
    )
