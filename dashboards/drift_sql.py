"""The SQL of the Drift dashboard (``dashboards.drift``): drift scores per scope, the flagged scopes, topic
shares, novel traffic and its examples, and the shape features' PSI.

Sources (migrations 0012, 0013 and 0005): ``llm_drift FINAL`` (one row per window, scope, feature and
test: statistic, p, Benjamini-Hochberg q, effect, flagged, what moved), ``llm_drift_topics FINAL`` (per
window and text scope: each topic's share of the reference and of the window; topic
:data:`NOVEL_TOPIC` is "novel", its row carries examples) and ``llm_alerts FINAL`` (the drift
process's alerts, rule :data:`streams.drift.consumer.ALERT_RULE`).

Guarantees:
- A scope is ``service/model/span_kind/direction`` with the empty parts left out (shape scopes have no
  direction, text scopes no model), the way the drift alerts name it.
- The drift score of a scope and interval is ``least(10, -log10(greatest(min(q_value), 1e-10)))``: the
  strongest evidence among its tests, on a log scale where 2 is q = 0.01 (the default FDR); capped so a
  q of 0 stays on the chart. A score above the line is necessary, not sufficient, for a flag: the effect
  must also reach its floor.
- Intervals are whole drift windows (:data:`WINDOW_INTERVAL`, the monitor's default window); an
  interval spanning several windows shows the worst score, the largest PSI, and the mean of the
  windows' shares. Topic shares are normalized per interval, so they sum to 1 even when windows or
  span kinds are merged.
- The flagged list looks back :data:`FLAGGED_LOOKBACK` from the end of the range, whatever the start.

Pure string building; nothing here does I/O.
"""

from __future__ import annotations

import math
from typing import Final

from dashboards.panels import var_filter
from dashboards.query import DATABASE
from streams.drift.consumer import ALERT_RULE
from streams.drift.embedding import NOVEL
from streams.drift.monitor import DriftConfig
from streams.drift.shape import CATEGORICAL, NUMERIC
from streams.storage import ALERTS_TABLE, DRIFT_TABLE, DRIFT_TOPICS_TABLE

__all__ = [
    "ALERTS",
    "DRIFT",
    "EXAMPLE_WINDOWS",
    "FDR",
    "FLAGGED_LOOKBACK",
    "MAJOR_PSI",
    "MODERATE_PSI",
    "NOVEL_NAME",
    "NOVEL_TOPIC",
    "SCOPE",
    "SCORE_CAP",
    "SCORE_RED",
    "SHAPE_FEATURES",
    "TOPICS",
    "WINDOW_INTERVAL",
    "drift_alerts_sql",
    "drift_score_sql",
    "examples_sql",
    "flagged_count_sql",
    "flagged_scopes_sql",
    "novel_share_sql",
    "shape_psi_sql",
    "topic_name",
    "topic_shares_sql",
]

DRIFT: Final = f"{DATABASE}.{DRIFT_TABLE} FINAL"
TOPICS: Final = f"{DATABASE}.{DRIFT_TOPICS_TABLE} FINAL"
ALERTS: Final = f"{DATABASE}.{ALERTS_TABLE} FINAL"
_DEFAULTS: Final = DriftConfig()
FDR: Final = _DEFAULTS.fdr
# PSI 0.1 is a moderate shift (the monitor's default floor), 0.25 a major one (streams.drift.shape).
MODERATE_PSI: Final = _DEFAULTS.min_psi
MAJOR_PSI: Final = 0.25
WINDOW_INTERVAL: Final = f"{_DEFAULTS.window_ms // 60_000}m"
SCORE_CAP: Final = 10
Q_FLOOR: Final = 1e-10
SCORE_RED: Final = -math.log10(FDR)
NOVEL_TOPIC: Final = NOVEL  # migration 0013: the topic of texts far from every centroid
NOVEL_NAME: Final = "novel"
SHAPE_FEATURES: Final = (*NUMERIC, *CATEGORICAL)
FLAGGED_LOOKBACK: Final = "24 HOUR"
EXAMPLE_WINDOWS: Final = 3
SCOPE_PARTS: Final = ("service", "model", "span_kind", "direction")
SCOPE: Final = (
    f"arrayStringConcat(arrayFilter(part -> part != '', [{', '.join(SCOPE_PARTS)}]), '/')"
)
SERVICE: Final = var_filter("service", "service")
# The direction variable is single-select; IN keeps the clause valid for any selection.
DIRECTION: Final = "direction IN (${direction:singlequote})"
ALERT_SERVICE: Final = var_filter("service", "selector['service']")
SCORE: Final = f"least({SCORE_CAP}, -log10(greatest(min(q_value), {Q_FLOOR:g})))"


def topic_name(column: str = "topic") -> str:
    """``novel`` for the novel topic, ``topic N`` otherwise."""
    return f"if({column} = {NOVEL_TOPIC}, '{NOVEL_NAME}', concat('topic ', toString({column})))"


def drift_score_sql() -> str:
    """(time, scope, drift score) per interval: the score of the scope's most significant test."""
    return (
        f"SELECT $__timeInterval(window_start) AS time, {SCOPE} AS scope,\n"
        f"    {SCORE} AS drift_score\n"
        f"FROM {DRIFT}\nWHERE $__timeFilter(window_start) AND {SERVICE}\n"
        "GROUP BY time, scope\nORDER BY time, scope"
    )


def _flagged_where() -> str:
    return (
        f"window_start > $__toTime - INTERVAL {FLAGGED_LOOKBACK} AND window_start <= $__toTime\n"
        f"    AND {SERVICE}"
    )


def flagged_scopes_sql() -> str:
    """Per (scope, feature, test) flagged in the lookback: its newest flagged window's effect, q and
    top shift, how many windows were flagged, and whether the newest window tested is flagged too."""
    return (
        "SELECT scope, feature, test, round(last_effect, 4) AS effect, last_q AS q_value,\n"
        "    last_top AS top_shift, last_window AS window_start, flagged_windows,\n"
        "    if(flagged_now, 'drifting', 'recovered') AS state\n"
        "FROM (\n"
        f"    SELECT {SCOPE} AS scope, feature, test,\n"
        "        argMaxIf(effect, window_start, flagged) AS last_effect,\n"
        "        argMaxIf(q_value, window_start, flagged) AS last_q,\n"
        "        argMaxIf(top_shift, window_start, flagged) AS last_top,\n"
        "        maxIf(window_start, flagged) AS last_window,\n"
        "        countIf(flagged) AS flagged_windows,\n"
        "        argMax(flagged, window_start) AS flagged_now\n"
        f"    FROM {DRIFT}\n    WHERE {_flagged_where()}\n"
        "    GROUP BY scope, feature, test\n"
        "    HAVING flagged_windows > 0)\n"
        "ORDER BY last_window DESC, last_q, scope, feature"
    )


def flagged_count_sql() -> str:
    """The number of scopes with any flagged result in the lookback."""
    return (
        f"SELECT uniqExactIf({SCOPE}, flagged) AS flagged_scopes\n"
        f"FROM {DRIFT}\nWHERE {_flagged_where()}"
    )


def topic_shares_sql() -> str:
    """(time, topic name, share) of the window's texts per topic, the novel topic first; the shares of
    an interval sum to 1 (normalized over the windows and span kinds it merges)."""
    return (
        "SELECT time, topic_name, share_sum / sum(share_sum) OVER (PARTITION BY time) AS share\n"
        "FROM (\n"
        f"    SELECT $__timeInterval(window_start) AS time, topic, {topic_name()} AS topic_name,\n"
        "        sum(current_share) AS share_sum\n"
        f"    FROM {TOPICS}\n"
        f"    WHERE $__timeFilter(window_start) AND {SERVICE} AND {DIRECTION}\n"
        "    GROUP BY time, topic)\n"
        "ORDER BY time, topic"
    )


def novel_share_sql() -> str:
    """(time, the windows' novel share, the reference's novel share), means over the interval."""
    return (
        "SELECT $__timeInterval(window_start) AS time, avg(current_share) AS novel_share,\n"
        "    avg(reference_share) AS reference_novel_share\n"
        f"FROM {TOPICS}\n"
        f"WHERE $__timeFilter(window_start) AND {SERVICE} AND {DIRECTION}\n"
        f"    AND topic = {NOVEL_TOPIC}\n"
        "GROUP BY time\nORDER BY time"
    )


def examples_sql() -> str:
    """The novel row's examples of the newest :data:`EXAMPLE_WINDOWS` windows per text scope that have
    any, one row per example in the order the monitor gave them (rank 1 first), newest window first."""
    return (
        "SELECT window_start, service, span_kind, direction, round(current_share, 4) AS novel_share,\n"
        "    round(reference_share, 4) AS reference_novel_share, rank, example\n"
        "FROM (\n"
        "    SELECT window_start, service, span_kind, direction, current_share, reference_share,\n"
        "        examples\n"
        f"    FROM {TOPICS}\n"
        f"    WHERE $__timeFilter(window_start) AND {SERVICE} AND {DIRECTION}\n"
        f"        AND topic = {NOVEL_TOPIC} AND notEmpty(examples)\n"
        "    ORDER BY window_start DESC\n"
        f"    LIMIT {EXAMPLE_WINDOWS} BY service, span_kind, direction)\n"
        "ARRAY JOIN examples AS example, arrayEnumerate(examples) AS rank\n"
        "ORDER BY window_start DESC, service, span_kind, direction, rank"
    )


def shape_psi_sql() -> str:
    """(time, ``feature (model, span kind)``, PSI) of the shape features, the largest per interval."""
    features = ", ".join(f"'{name}'" for name in SHAPE_FEATURES)
    return (
        "SELECT $__timeInterval(window_start) AS time,\n"
        "    concat(feature, ' (', model, ', ', span_kind, ')') AS series, max(effect) AS psi\n"
        f"FROM {DRIFT}\n"
        f"WHERE $__timeFilter(window_start) AND {SERVICE}\n"
        f"    AND direction = '' AND feature IN ({features})\n"
        "GROUP BY time, series\nORDER BY time, series"
    )


def drift_alerts_sql() -> str:
    """The drift alerts fired in the range (one point each), for the selected services."""
    return (
        "SELECT fired_at AS time, fired_at AS timeEnd, slo AS title,\n"
        "    concat(description, ' ', runbook) AS text,\n"
        "    [rule, severity, selector['service']] AS tags\n"
        f"FROM {ALERTS}\n"
        f"WHERE rule = '{ALERT_RULE}' AND state = 'firing' AND $__timeFilter(fired_at)\n"
        f"    AND {ALERT_SERVICE}\n"
        "ORDER BY time"
    )
