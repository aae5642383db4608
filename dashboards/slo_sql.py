"""The SQL that reproduces the stream's SLO windows and burn rates on ``llm_calls`` (pure string builders).

:func:`burn_rate_sql` returns one ClickHouse query whose single row holds, for one SLO and one window at
evaluation time T, exactly what ``streams.slo.burnrate`` computes from the stream (definitions in
``streams.slo.config``):

- ``good``, ``total``: for ratio SLIs the good and counted rows; for cost SLIs the priced rows and all
  matching rows;
- ``spent_usd``: the window's summed ``cost_usd`` (NULL counted as 0; cost SLIs only, else 0);
- ``unpriced``: rows with NULL ``cost_usd`` (cost SLIs only, else 0);
- ``burn_rate``: ``(total - good) / total / (1 - objective)`` (0 when total is 0), or
  ``spent_usd / (W / 1 h) / usd_per_hour``.

The window is the half-open range ``floor_minute(T) - W + 1 min <= start_time < floor_minute(T) + 1 min``
(``streams.slo.config.window_bounds``), which is the same set of rows as the stream's minute buckets. The
table is read with FINAL, so at-least-once replays do not count twice. Counts and ratio burn rates are
identical to the stream's (same integer counts, same float operations); cost sums may differ in the last
bits because the additions happen in another order. The stream only diverges when it dropped events as
too late (``late_events``) or has not seen rows that ClickHouse has (or the reverse).

``now_ms=None`` evaluates at the server's ``now()`` (for alert rules). Nothing here does I/O.
"""

from __future__ import annotations

import re
from typing import Final

from streams.slo.config import (
    HOUR_MS,
    MINUTE_MS,
    AvailabilitySli,
    CostSli,
    GuardrailSli,
    LatencySli,
    Selector,
    Slo,
    TtftSli,
    floor_minute,
    parse_duration,
)
from streams.storage import CALLS_TABLE, DEFAULT_DATABASE, GUARDRAIL_ROLLUP_TABLE

__all__ = ["CALLS_TABLE", "DEFAULT_DATABASE", "burn_rate_sql", "quote", "selector_sql"]

_IDENTIFIER_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_MODEL_SQL: Final = "if(request_model != '', request_model, response_model)"
_NOW_FLOOR_SQL: Final = "toInt64(toUnixTimestamp(toStartOfMinute(now()))) * 1000"


def quote(value: str) -> str:
    """A ClickHouse string literal for ``value``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _selector_conditions(selector: Selector) -> list[str]:
    parts = [f"{column} = {quote(value)}" for column, value in selector.column_checks()]
    if selector.model is not None:
        parts.append(f"{_MODEL_SQL} = {quote(selector.model)}")
    return parts


def selector_sql(selector: Selector) -> str:
    """The WHERE condition of a selector (``1`` when it selects every row)."""
    return " AND ".join(_selector_conditions(selector)) or "1"


def _measures(slo: Slo, window_ms: int) -> tuple[str | None, str]:
    """(extra WHERE condition or None, SELECT list) for the SLO's SLI."""
    sli = slo.sli
    if isinstance(sli, CostSli):
        hours = window_ms / HOUR_MS
        return None, (
            "toUInt64(countIf(cost_usd IS NOT NULL)) AS good, toUInt64(count()) AS total, "
            "sum(ifNull(cost_usd, 0.)) AS spent_usd, toUInt64(countIf(cost_usd IS NULL)) AS unpriced, "
            f"spent_usd / {hours!r} / {sli.usd_per_hour!r} AS burn_rate"
        )
    where: str | None = None
    good = "status = 'ok'"
    if isinstance(sli, LatencySli):
        good = f"duration_ms <= {sli.threshold_ms!r}"
    elif isinstance(sli, TtftSli):
        where = "time_to_first_token_ms IS NOT NULL"
        good = f"time_to_first_token_ms <= {sli.threshold_ms!r}"
    else:
        assert isinstance(sli, AvailabilitySli)
    assert slo.objective is not None  # ratio SLIs always have one (Slo validates it)
    return where, (
        f"toUInt64(countIf({good})) AS good, toUInt64(count()) AS total, "
        "0. AS spent_usd, toUInt64(0) AS unpriced, "
        f"if(total = 0, 0., (total - good) / total / (1 - {slo.objective!r})) AS burn_rate"
    )


def burn_rate_sql(
    slo: Slo, window: str | int, now_ms: int | None, database: str = DEFAULT_DATABASE
) -> str:
    """One-row query: good, total, spent_usd, unpriced, burn_rate of ``slo`` over ``window`` at T.

    ``window`` is a duration string (``"1h"``) or milliseconds (whole minutes); ``now_ms`` is T in
    epoch ms, or None for the server's ``now()``.
    """
    window_ms = parse_duration(window) if isinstance(window, str) else window
    if isinstance(slo.sli, GuardrailSli):
        return _guardrail_sql(slo, slo.sli, window_ms, now_ms, database)
    if window_ms <= 0 or window_ms % MINUTE_MS:
        raise ValueError(f"window must be a positive whole number of minutes, got {window!r}")
    if not _IDENTIFIER_RE.match(database):
        raise ValueError(f"database must be a plain identifier, got {database!r}")
    floor_sql = _NOW_FLOOR_SQL if now_ms is None else str(floor_minute(now_ms))
    where, select = _measures(slo, window_ms)
    conditions = [
        f"start_time >= fromUnixTimestamp64Milli(t_floor_ms - {window_ms - MINUTE_MS}, 'UTC')",
        f"start_time < fromUnixTimestamp64Milli(t_floor_ms + {MINUTE_MS}, 'UTC')",
        *_selector_conditions(slo.selector),
        *([] if where is None else [where]),
    ]
    return (
        f"WITH {floor_sql} AS t_floor_ms\n"
        f"SELECT {select}\n"
        f"FROM {database}.{CALLS_TABLE} FINAL\n"
        "WHERE " + "\n  AND ".join(conditions)
    )


def _guardrail_sql(
    slo: Slo, sli: GuardrailSli, window_ms: int, now_ms: int | None, database: str
) -> str:
    """A guardrail SLI on the text-analysis rollup: good = analysed texts without a ``category``
    finding. The rollup has no provider or tenant, which guardrail selectors cannot name."""
    if window_ms <= 0 or window_ms % MINUTE_MS:
        raise ValueError(f"window must be a positive whole number of minutes, got {window_ms!r}")
    if not _IDENTIFIER_RE.match(database):
        raise ValueError(f"database must be a plain identifier, got {database!r}")
    assert slo.objective is not None  # guardrail SLIs are ratio SLIs (Slo validates it)
    floor_sql = _NOW_FLOOR_SQL if now_ms is None else str(floor_minute(now_ms))
    checks = list(slo.selector.column_checks())
    if slo.selector.model is not None:
        checks.append(("model", slo.selector.model))
    conditions = [
        f"window_start >= fromUnixTimestamp64Milli(t_floor_ms - {window_ms - MINUTE_MS}, 'UTC')",
        f"window_start < fromUnixTimestamp64Milli(t_floor_ms + {MINUTE_MS}, 'UTC')",
        *(f"{column} = {quote(value)}" for column, value in checks),
    ]
    return (
        f"WITH {floor_sql} AS t_floor_ms\n"
        f"SELECT toUInt64(sum(texts) - sum(flagged[{quote(sli.category)}])) AS good, "
        "toUInt64(sum(texts)) AS total, 0. AS spent_usd, toUInt64(0) AS unpriced, "
        f"if(total = 0, 0., (total - good) / total / (1 - {slo.objective!r})) AS burn_rate\n"
        f"FROM {database}.{GUARDRAIL_ROLLUP_TABLE} FINAL\n"
        "WHERE " + "\n  AND ".join(conditions)
    )
