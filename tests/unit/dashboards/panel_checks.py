"""What every panel query must give its panel, checked the same way for each dashboard's tests."""

from __future__ import annotations

from typing import Any

from dashboards.render import is_numeric_type, is_time_type
from dashboards.runner import QueryResult
from dashboards.walk import Query


def numbers(result: QueryResult) -> list[Any]:
    """Every non-null value of the result's numeric columns."""
    columns = [i for i, t in enumerate(result.types) if is_numeric_type(t)]
    return [row[i] for row in result.rows for i in columns if row[i] is not None]


def assert_fits_its_panel(query: Query, result: QueryResult) -> None:
    """Rows exist; a time series is time first, numeric and in time order; a stat is one numeric row;
    an annotation has Grafana's columns; a variable lists non-empty strings."""
    assert result.rows, f"{query.owner}: no rows"
    if query.panel_type == "timeseries":
        assert is_time_type(result.types[0]) and numbers(result)
        assert result.rows == sorted(result.rows, key=lambda r: r[0]), "rows must be in time order"
    elif query.panel_type == "stat":
        assert len(result.rows) == 1 and numbers(result), result.rows
    elif query.kind == "annotation":
        assert {"time", "timeEnd", "title", "text", "tags"} <= set(result.columns)
    elif query.kind == "variable":
        assert all(isinstance(row[0], str) and row[0] for row in result.rows)
