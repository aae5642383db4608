"""Draw one panel's query result as a PNG with matplotlib (Agg, no display, no global pyplot state).

Time series are lines (stacked areas when the panel stacks), one series per numeric column or, for
``time, label, value`` rows, per label (Grafana's long-to-wide pivot); red threshold steps are drawn as
dashed lines; the x axis is UTC time and the y axis carries the panel's axis label or unit. Stats and
gauges are big numbers on their threshold color (gauges add a bar between min and max). Tables are
drawn as tables (long cells cut, at most :data:`MAX_TABLE_ROWS` rows). Text panels (no query) show their
content, Markdown emphasis and link targets dropped, wrapped. Values are formatted by the
panel's Grafana unit. Pure: returns PNG bytes, writes nothing.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from datetime import datetime
from typing import Any, Final, Literal

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import Bbox

from dashboards.runner import QueryResult

__all__ = [
    "format_value",
    "is_numeric_type",
    "is_time_type",
    "render_error",
    "render_panel",
    "render_text",
]

DPI: Final = 100
MAX_TABLE_ROWS: Final = 20
MAX_CELL_CHARS: Final = 48
MAX_LEGEND: Final = 12
FULL_WIDTH_IN: Final = 16.0  # a 24-column panel
MIN_WIDTH_IN: Final = 5.0
CHAR_WIDTH_IN: Final = 0.075  # ~8 pt sans-serif, with cell padding
ROW_HEIGHT_IN: Final = 0.28
LEGEND_MARKER_IN: Final = 0.6
LEGEND_ROW_IN: Final = 0.22
COLORS: Final = {
    "green": "#56A64B",
    "orange": "#FF9830",
    "red": "#E02F44",
    "blue": "#3274D9",
    "yellow": "#FADE2A",
    "transparent": "#FFFFFF",
}
_TIME_TYPES: Final = ("DateTime", "Date")
_MARKDOWN_LINK: Final = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKDOWN_EMPHASIS: Final = re.compile(r"\*\*|(?<!\w)\*(?=\S)|(?<=\S)\*(?!\w)")
_NUMERIC_TYPES: Final = ("Int", "UInt", "Float", "Decimal", "Bool")

Json = dict[str, Any]


def _base_type(name: str) -> str:
    for wrapper in ("Nullable(", "LowCardinality("):
        while name.startswith(wrapper):
            name = name[len(wrapper) : -1]
    return name


def is_time_type(type_name: str) -> bool:
    """True for ClickHouse Date/DateTime types (Nullable or not)."""
    return _base_type(type_name).startswith(_TIME_TYPES)


def is_numeric_type(type_name: str) -> bool:
    """True for ClickHouse integer, float, decimal and Bool types (Nullable or not)."""
    return _base_type(type_name).startswith(_NUMERIC_TYPES)


def _human(value: float, decimals: int | None) -> str:
    for factor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.{decimals if decimals is not None else 1}f}{suffix}"
    if decimals is not None:
        return f"{value:.{decimals}f}"
    return f"{value:.3g}" if value and abs(value) < 1 else f"{value:.4g}"


def format_value(value: Any, unit: str, decimals: int | None = None) -> str:
    """``value`` as Grafana would show it with ``unit`` (the common llmwatch units)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "No data"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if not isinstance(value, int | float):
        return str(value)
    number = float(value)
    if unit == "percentunit":
        return f"{number * 100:.{2 if decimals is None else decimals}f}%"
    if unit == "ms":
        return f"{number:.0f} ms" if abs(number) < 1000 else f"{number / 1000:.2f} s"
    if unit == "s":
        return f"{number:.2f} s" if abs(number) < 120 else f"{number / 60:.1f} min"
    if unit == "currencyUSD":
        if decimals is not None:
            return f"${number:,.{decimals}f}"
        return f"${number:,.2f}" if abs(number) >= 1 else f"${number:.3g}"
    return _human(number, decimals)


def _defaults(panel: Json) -> Json:
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    return defaults if isinstance(defaults, dict) else {}


def _steps(panel: Json) -> list[Json]:
    return list((_defaults(panel).get("thresholds") or {}).get("steps") or [])


def _threshold_color(panel: Json, value: float | None) -> str:
    color = "blue"
    for step in _steps(panel):
        if step.get("value") is None or (value is not None and value >= step["value"]):
            color = str(step.get("color", color))
    return COLORS.get(color, color)


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)  # attach the Agg canvas: no GUI backend, no pyplot state
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _width(panel: Json) -> float:
    columns = float((panel.get("gridPos") or {}).get("w", 12))
    return max(MIN_WIDTH_IN, columns / 24 * FULL_WIDTH_IN)


def _figure(panel: Json, height: float, layout: Literal["constrained"] | None = None) -> Figure:
    return Figure(figsize=(_width(panel), height), dpi=DPI, layout=layout)


def _series(result: QueryResult) -> tuple[list[datetime], dict[str, list[float]]]:
    """(sorted times, series name -> values aligned to the times, NaN where missing)."""
    time_at = next(i for i, t in enumerate(result.types) if is_time_type(t))
    labels = [i for i, t in enumerate(result.types) if i != time_at and not is_numeric_type(t)]
    values = [i for i, t in enumerate(result.types) if i != time_at and is_numeric_type(t)]
    times = sorted({row[time_at] for row in result.rows})
    index = {t: n for n, t in enumerate(times)}
    series: dict[str, list[float]] = {}
    for row in result.rows:
        label = " ".join(str(row[i]) for i in labels)
        for i in values:
            name = label if label and len(values) == 1 else f"{result.columns[i]} {label}".strip()
            points = series.setdefault(name, [math.nan] * len(times))
            points[index[row[time_at]]] = math.nan if row[i] is None else float(row[i])
    return times, series


def _legend(figure: Figure, ax: Any) -> None:
    handles, names = ax.get_legend_handles_labels()
    if not handles:
        return
    more = len(handles) - MAX_LEGEND
    shown = [_cut(name, MAX_CELL_CHARS) for name in names[:MAX_LEGEND]]
    entry_in = max(len(name) for name in shown) * CHAR_WIDTH_IN + LEGEND_MARKER_IN
    columns = max(1, min(len(shown), int(figure.get_figwidth() // entry_in)))
    figure.legend(
        handles[:MAX_LEGEND],
        shown,
        loc="outside lower center",
        ncols=columns,
        fontsize=8,
        frameon=False,
        title=f"(+{more} more series not listed)" if more > 0 else None,
        title_fontsize=7,
    )


def _legend_rows(panel: Json, series: dict[str, list[float]]) -> int:
    names = [_cut(name, MAX_CELL_CHARS) for name in list(series)[:MAX_LEGEND]] or [""]
    entry_in = max(len(name) for name in names) * CHAR_WIDTH_IN + LEGEND_MARKER_IN
    columns = max(1, int(_width(panel) // entry_in))
    return math.ceil((len(names) + 1) / columns)


def _timeseries(panel: Json, result: QueryResult, title: str) -> Figure:
    times, series = _series(result)
    x = np.array([t.replace(tzinfo=None) for t in times], dtype="datetime64[ms]")
    figure = _figure(panel, 4.0 + LEGEND_ROW_IN * _legend_rows(panel, series), layout="constrained")
    ax = figure.add_subplot()
    defaults = _defaults(panel)
    custom = defaults.get("custom") or {}
    unit = str(defaults.get("unit", ""))
    if (custom.get("stacking") or {}).get("mode") == "normal":
        stacked = [[0.0 if math.isnan(v) else v for v in vs] for vs in series.values()]
        ax.stackplot(x, stacked, labels=list(series), alpha=0.85)
    else:
        for name, points in series.items():
            ax.plot(x, points, label=name, linewidth=1.4)
    for step in _steps(panel):
        if step.get("color") == "red" and step.get("value") is not None:
            ax.axhline(
                step["value"],
                color=COLORS["red"],
                linestyle="--",
                linewidth=1,
                label="red threshold",
            )
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    ax.set_xlabel("time (UTC)", fontsize=9)
    ax.set_ylabel(str(custom.get("axisLabel") or unit), fontsize=9)
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M"))  # type: ignore[no-untyped-call]
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_value(v, unit)))
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.3)
    _legend(figure, ax)
    return figure


def _first_number(result: QueryResult) -> float | None:
    for i, type_name in enumerate(result.types):
        if is_numeric_type(type_name) and result.rows and result.rows[0][i] is not None:
            return float(result.rows[0][i])
    return None


def _big_number(panel: Json, result: QueryResult, title: str, gauge: bool) -> Figure:
    figure = _figure(panel, 2.4)
    value = _first_number(result)
    defaults = _defaults(panel)
    color = _threshold_color(panel, value)
    figure.patch.set_facecolor(color if not gauge else "#FFFFFF")
    text = format_value(value, str(defaults.get("unit", "")), defaults.get("decimals"))
    ink = (
        "#FFFFFF"
        if not gauge and color not in (COLORS["transparent"], COLORS["yellow"])
        else "#111111"
    )
    figure.text(0.03, 0.86, title, fontsize=11, fontweight="bold", color=ink, va="top")
    figure.text(
        0.5,
        0.42 if not gauge else 0.52,
        text,
        fontsize=30,
        fontweight="bold",
        color=ink if not gauge else color,
        ha="center",
        va="center",
    )
    if gauge and value is not None:
        low, high = float(defaults.get("min", 0.0)), float(defaults.get("max", 1.0))
        ax = figure.add_axes((0.1, 0.1, 0.8, 0.12))
        ax.barh([0], [high - low], left=low, color="#E6E6E6")
        ax.barh([0], [min(max(value, low), high) - low], left=low, color=color)
        ax.set_xlim(low, high)
        ax.set_yticks([])
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda v, _p: format_value(v, str(defaults.get("unit", ""))))
        )
        ax.tick_params(labelsize=7)
    return figure


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
    elif isinstance(value, list | tuple):
        text = ", ".join(str(v) for v in value)
    else:
        text = "" if value is None else str(value)
    return _cut(text, MAX_CELL_CHARS)


def _fit(columns: list[str], cells: list[list[str]], width_in: float) -> list[int]:
    """Characters allowed per column so the table fits ``width_in`` (the widest shrink first)."""
    sizes = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    budget = max(int(width_in / CHAR_WIDTH_IN), 4 * len(columns))
    while sum(sizes) > budget:
        widest = max(range(len(sizes)), key=sizes.__getitem__)
        sizes[widest] = max(4, sizes[widest] - max(1, (sum(sizes) - budget) // 4))
    return sizes


def _cut(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _table(panel: Json, result: QueryResult, title: str) -> Figure:
    rows = result.rows[:MAX_TABLE_ROWS]
    cells = [[_cell(v) for v in row] for row in rows]
    # An empty result may come without column names (chdb): show one "No data" cell then.
    columns = list(result.columns) or [""]
    if not cells:
        cells = [["No data"] + [""] * (len(columns) - 1)]
    sizes = _fit(columns, cells, _width(panel))
    height = 0.55 + ROW_HEIGHT_IN * (len(cells) + 1) + (0.2 if len(result.rows) > len(rows) else 0)
    figure = _figure(panel, height)
    top = 1 - 0.45 / height
    figure.text(0.01, 1 - 0.12 / height, title, fontsize=11, fontweight="bold", va="top")
    ax = figure.add_axes(
        (
            0.01,
            1 - (0.45 + ROW_HEIGHT_IN * (len(cells) + 1)) / height,
            0.98,
            top - (1 - (0.45 + ROW_HEIGHT_IN * (len(cells) + 1)) / height),
        )
    )
    ax.axis("off")
    table = ax.table(
        cellText=[[_cut(c, sizes[i]) for i, c in enumerate(row)] for row in cells],
        colLabels=[_cut(c, sizes[i]) for i, c in enumerate(columns)],
        colWidths=[size / sum(sizes) for size in sizes],
        cellLoc="left",
        bbox=Bbox.from_bounds(0.0, 0.0, 1.0, 1.0),
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    for (r, _c), cell in table.get_celld().items():
        cell.set_edgecolor("#CCCCCC")
        if r == 0:
            cell.set_text_props(fontweight="bold")
            cell.set_facecolor("#EDEDED")
    if len(result.rows) > len(rows):
        figure.text(0.01, 0.01, f"{len(result.rows) - len(rows)} more rows not shown", fontsize=7)
    return figure


def render_panel(panel: Json, result: QueryResult, title: str) -> bytes:
    """The PNG of ``panel`` showing ``result`` (by the panel type; other types draw as tables)."""
    kind = panel.get("type")
    if kind == "timeseries" and any(is_time_type(t) for t in result.types) and result.rows:
        figure = _timeseries(panel, result, title)
    elif kind in ("stat", "gauge"):
        figure = _big_number(panel, result, title, gauge=kind == "gauge")
    else:
        figure = _table(panel, result, title)
    return _png(figure)


def render_error(panel: Json, title: str, message: str) -> bytes:
    """A PNG saying the panel's query failed, with the error (wrapped)."""
    figure = _figure(panel, 2.0)
    figure.text(0.02, 0.9, title, fontsize=11, fontweight="bold", va="top")
    wrapped = "\n".join(message[i : i + 110] for i in range(0, min(len(message), 440), 110))
    figure.text(0.02, 0.65, f"Query failed:\n{wrapped}", fontsize=8, color=COLORS["red"], va="top")
    return _png(figure)


def render_text(panel: Json, title: str) -> bytes:
    """A PNG of a text panel: its title and content, Markdown links shown by their text."""
    content = str((panel.get("options") or {}).get("content", ""))
    plain = _MARKDOWN_EMPHASIS.sub("", _MARKDOWN_LINK.sub(r"\1", content))
    width = max(40, int(_width(panel) / CHAR_WIDTH_IN))
    lines = [
        wrapped
        for paragraph in plain.splitlines()
        for wrapped in (textwrap.wrap(paragraph, width, subsequent_indent="  ") or [""])
    ]
    height = 0.6 + ROW_HEIGHT_IN * 0.8 * len(lines)
    figure = _figure(panel, height)
    figure.text(0.01, 1 - 0.12 / height, title, fontsize=11, fontweight="bold", va="top")
    figure.text(0.01, 1 - 0.45 / height, "\n".join(lines), fontsize=8, va="top", linespacing=1.5)
    return _png(figure)
