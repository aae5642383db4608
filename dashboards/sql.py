"""SQL fragments shared by several dashboards (firing alerts, alert annotations, sketch quantiles).

Every statement reads ReplacingMergeTree tables with FINAL and names tables ``llmwatch.<table>``.
Alerts "firing at the end of the range" follow ``sinks/migrations/0005_alerts.sql``: a firing row
without a resolved row, and, because the stream never resolves an alert that was open when it
restarted (``streams.slo.burnrate``), only while the latest SLO status in the range still says firing.
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from streams.analytics.rollup_schema import ROLLUP_1M_FIELDS, SOURCE_FIELDS

__all__ = [
    "ALERT_ANNOTATION_SQL",
    "FIRING_ALERTS_SQL",
    "QUANTILES",
    "ROLLUP",
    "ROLLUP_COLUMNS",
    "sketch_quantiles",
]

# The rollups a panel reads, as one table expression (used as ``FROM {ROLLUP} WHERE ...``): the
# hourly table (migration 0014, rebuilt from the 1-minute one) for the whole hours inside the range
# that ended at least an hour ago, when the panel's step is a whole number of hours (so hourly rows
# never straddle a step); the 1-minute table for everything else. The two branches never cover the
# same minute, so sums, minima, maxima and merged sketches are those of the 1-minute table alone.
# A minute row at m is in the hourly branch iff its hour H satisfies H >= from and H + 59 min <= to
# ($__timeFilter is inclusive), i.e. _HOURLY_FROM <= H < _HOURLY_TO; that needs minute-aligned rows.
# The 1-minute rollup row without its source position (the hourly table has no source).
ROLLUP_COLUMNS: Final = ", ".join(f for f in ROLLUP_1M_FIELDS if f not in SOURCE_FIELDS)
_HOURLY_STEP: Final = "$__interval_s % 3600 = 0"
_HOURLY_FROM: Final = "toStartOfHour($__fromTime + INTERVAL 3599 SECOND)"
_HOURLY_TO: Final = (
    "least(toStartOfHour($__toTime + INTERVAL 60 SECOND), toStartOfHour(now()) - INTERVAL 1 HOUR)"
)
_IN_HOURLY: Final = (
    f"{_HOURLY_STEP} AND window_start >= {_HOURLY_FROM} AND window_start < {_HOURLY_TO}"
)
ROLLUP: Final = (
    f"(SELECT {ROLLUP_COLUMNS} FROM llmwatch.llm_rollup_1h FINAL WHERE {_IN_HOURLY} "
    f"UNION ALL SELECT {ROLLUP_COLUMNS} FROM llmwatch.llm_rollup_1m FINAL "
    f"WHERE NOT ({_IN_HOURLY}))"
)
QUANTILES: Final = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))

FIRING_ALERTS_SQL: Final = """SELECT fired_at, slo, rule, severity,
    round(burn_rate_long, 2) AS burn_rate_long, round(burn_rate_short, 2) AS burn_rate_short,
    concat(long_window, ' / ', short_window) AS windows, factor, description, runbook
FROM llmwatch.llm_alerts FINAL
WHERE state = 'firing' AND fired_at <= $__toTime
  AND alert_id NOT IN (
    SELECT alert_id FROM llmwatch.llm_alerts FINAL
    WHERE state = 'resolved' AND resolved_at <= $__toTime)
  AND (slo, rule) IN (
    SELECT slo, rule FROM llmwatch.llm_slo_status FINAL
    WHERE $__timeFilter(evaluated_at)
    GROUP BY slo, rule HAVING argMax(firing, evaluated_at))
ORDER BY fired_at DESC
LIMIT 1 BY slo, rule"""

# One region per alert, from when it fired to when it resolved (or to the end of the range).
ALERT_ANNOTATION_SQL: Final = """SELECT min(fired_at) AS time,
    coalesce(max(resolved_at), $__toTime_ms) AS timeEnd,
    concat(any(slo), ' / ', any(rule), ' (', any(severity), ')') AS title,
    concat(any(description), ' Burn rate at firing: ', toString(round(max(burn_rate_long), 2)),
           ' (long) / ', toString(round(max(burn_rate_short), 2)), ' (short), threshold ',
           toString(any(factor)), '. ', any(runbook)) AS text,
    [any(slo), any(rule), any(severity)] AS tags
FROM llmwatch.llm_alerts FINAL
WHERE fired_at <= $__toTime
GROUP BY alert_id
HAVING max(resolved_at) IS NULL OR max(resolved_at) >= $__fromTime
ORDER BY time"""


def sketch_quantiles(
    prefix: str,
    where: str,
    *,
    quantiles: Sequence[tuple[float, str]] = QUANTILES,
    scale: float = 1.0,
) -> str:
    """Per-interval quantiles of a sketch column pair (``<prefix>_bins``, ``<prefix>_zero_count``)
    of the rollups, merged with ``llmwatch_quantile`` (migration 0003); values divided by ``scale``."""
    divide = f" / {scale:g}" if scale != 1.0 else ""
    columns = ", ".join(
        f"llmwatch_quantile({q}, bins, zeros){divide} AS {name}" for q, name in quantiles
    )
    return (
        f"SELECT time, {columns}\nFROM (\n"
        f"    SELECT $__timeInterval(window_start) AS time, sumMap({prefix}_bins) AS bins,\n"
        f"        sum({prefix}_zero_count) AS zeros\n"
        f"    FROM {ROLLUP}\n"
        f"    WHERE $__timeFilter(window_start) AND {where}\n"
        f"    GROUP BY time\n"
        f"    HAVING zeros + arraySum(mapValues(bins)) > 0)\n"
        f"ORDER BY time"
    )
