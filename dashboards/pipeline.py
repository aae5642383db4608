"""The pipeline health dashboard: ingest rate, consumer lag, freshness, dead letters, sink inserts.

Sources: ``llm_calls`` (rows by ``ingested_at``; freshness is ``ingested_at - sent_at``, the time from
the producer sending a batch to its row landing in ClickHouse, taken from each call's first copy so a
replay after a sink crash neither counts twice nor shows as late), ``llm_dlq`` and the long-format
``llm_pipeline_metrics`` (migration 0006): ``consumer_lag`` gauges per topic and partition,
``insert_latency_ms`` gauges per table and the cumulative ``insert_failures`` counter, whose increase
per interval is computed per process run (``instance``, ``process_start``) so restarts do not show as
negative rates. Queries on ``llm_calls`` by ingestion time also bound ``start_time`` to one day before
the range so ClickHouse can skip old daily partitions; calls ingested more than a day after they
started are left out of these panels. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard as dashboard_builder

from dashboards.panels import (
    PanelBuilder,
    doc,
    new_dashboard,
    row,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
)
from sinks.schema import CALLS_ORDER_BY

__all__ = ["UID", "build"]

UID: Final = "llmwatch-pipeline"
CALLS: Final = "llmwatch.llm_calls FINAL"
METRICS: Final = "llmwatch.llm_pipeline_metrics"
BY_INGESTION: Final = "$__timeFilter(ingested_at) AND start_time >= $__fromTime - INTERVAL 1 DAY"
# Freshness is measured on each call's first landing. A replay after a sink crash inserts the call
# again later, and FINAL would keep that late copy (ReplacingMergeTree(ingested_at)), so the copies are
# grouped by the table's dedup key (its ORDER BY) instead: each call counts once, at its first copy.
# Copies are read from a day before the range, so a call that first landed before the range stays out.
FIRST_LANDINGS: Final = f"""(
    SELECT min(ingested_at) AS landed_at, argMin(sent_at, ingested_at) AS first_sent_at
    FROM llmwatch.llm_calls
    WHERE start_time >= $__fromTime - INTERVAL 1 DAY AND ingested_at <= $__toTime
    GROUP BY {", ".join(CALLS_ORDER_BY)})"""
FRESHNESS_S: Final = "dateDiff('millisecond', first_sent_at, landed_at) / 1000"
FRESHNESS_WARN_S: Final = 30.0
FRESHNESS_RED_S: Final = 120.0
LAG_RED: Final = 10_000.0
INSERT_RED_MS: Final = 1_000.0
# Dead-letter reasons quote the bad value as "(got ...)"; grouping drops it.
REASON_KIND: Final = r"left(replaceRegexpAll(reason, ' \\(got [^)]*\\)', ''), 160)"
# Total lag per topic at each interval: the last value of each partition, summed.
_LAG_SQL: Final = f"""SELECT time, topic, sum(lag) AS lag
FROM (
    SELECT $__timeInterval(ts) AS time, labels['topic'] AS topic, labels['partition'] AS partition,
        argMax(value, ts) AS lag
    FROM {METRICS}
    WHERE $__timeFilter(ts) AND metric = 'consumer_lag'
    GROUP BY time, topic, partition)
GROUP BY time, topic
ORDER BY time, topic"""
# Increase of a cumulative counter per interval: per run, the max per interval minus the previous
# interval's (the first interval of a run that started inside the range counts from 0).
_FAILURES_SQL: Final = f"""SELECT time, sum(increase) AS insert_failures
FROM (
    SELECT time, greatest(value - lagInFrame(value, 1, if(run_start >= $__fromTime, 0, value))
        OVER (PARTITION BY instance, run_start ORDER BY time
              ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), 0) AS increase
    FROM (
        SELECT $__timeInterval(ts) AS time, instance, process_start AS run_start,
            max(value) AS value
        FROM {METRICS}
        WHERE $__timeFilter(ts) AND metric = 'insert_failures'
        GROUP BY time, instance, run_start))
GROUP BY time
ORDER BY time"""


def _stats() -> list[PanelBuilder]:
    freshness = stat_panel(
        "Freshness p95",
        f"SELECT quantile(0.95)({FRESHNESS_S}) AS freshness_s\n"
        f"FROM {FIRST_LANDINGS}\nWHERE $__timeFilter(landed_at)",
        doc(
            "95th percentile time from a producer sending a batch to its rows being queryable in "
            "ClickHouse, over the range (each call once, at its first landing).",
            "dashboards and alerts run late by this much: look at consumer lag and insert latency "
            "below to see whether the worker or the sink is behind.",
        ),
        "s",
        thresholds((None, "green"), (FRESHNESS_WARN_S, "orange"), (FRESHNESS_RED_S, "red")),
    )
    lag = stat_panel(
        "Consumer lag now",
        f"SELECT sum(lag) AS lag FROM (\n"
        f"    SELECT argMax(value, ts) AS lag FROM {METRICS}\n"
        f"    WHERE $__timeFilter(ts) AND metric = 'consumer_lag'\n"
        f"    GROUP BY labels['topic'], labels['partition'])",
        doc(
            "Records not yet consumed, summed over topics and partitions, at the last report in the "
            "range.",
            "the consumers fall behind: check the sink's insert latency and failures; if those are "
            "fine, add partitions and worker/sink instances.",
        ),
        "short",
        thresholds((None, "green"), (LAG_RED, "red")),
    )
    dead = stat_panel(
        "Dead letters",
        "SELECT count() AS dead_letters FROM llmwatch.llm_dlq FINAL WHERE $__timeFilter(failed_at)",
        doc(
            "Records or events rejected in the range (invalid events, undecodable records); their "
            "bytes are kept whole in llm_dlq.",
            "read 'Top dead-letter reasons': one reason dominating after a deploy is a producer "
            "sending a new or broken field; fix the producer, then replay from llm_dlq if needed.",
        ),
        "short",
        thresholds((None, "green"), (1, "orange"), (100, "red")),
    )
    failures = stat_panel(
        "Insert failures",
        f"SELECT sum(insert_failures) AS insert_failures FROM ({_FAILURES_SQL})",
        doc(
            "Failed ClickHouse insert attempts of the sink in the range (each is retried; the "
            "sink pauses consumption while inserts fail, so nothing is lost).",
            "ClickHouse is unreachable, out of disk or rejecting parts (too many parts): check the "
            "ClickHouse server logs and health first.",
        ),
        "short",
        thresholds((None, "green"), (1, "orange"), (10, "red")),
    )
    return [freshness, lag, dead, failures]


def _flow() -> list[PanelBuilder]:
    ingest = timeseries_panel(
        "Ingest rate",
        f"SELECT $__timeInterval(ingested_at) AS time,\n"
        f"    count() / ($__interval_s / 60) AS rows_per_min\n"
        f"FROM {CALLS}\nWHERE {BY_INGESTION}\nGROUP BY time\nORDER BY time",
        doc(
            "Call rows written to llm_calls per minute, by ingestion time (replays deduplicated).",
            "a drop to zero while apps are sending: the sink is stuck or down (check its "
            "healthcheck and insert failures) or the worker stopped producing (consumer lag rises).",
        ),
        "short",
    ).axis_label("rows / min")
    lag = timeseries_panel(
        "Consumer lag by topic",
        _LAG_SQL,
        doc(
            "Records behind the end of each topic, summed over partitions (last report per "
            "interval).",
            "lag that keeps growing means consumers cannot keep up: scale the worker or sink, or "
            "look for a stuck partition in llm_pipeline_metrics (labels['partition']).",
        ),
        "short",
        limits=thresholds((None, "transparent"), (LAG_RED, "red")),
    ).axis_label("records")
    freshness = timeseries_panel(
        "Freshness (emit to row) p50 / p95 / p99",
        f"SELECT $__timeInterval(landed_at) AS time,\n"
        f"    quantile(0.5)({FRESHNESS_S}) AS p50, quantile(0.95)({FRESHNESS_S}) AS p95,\n"
        f"    quantile(0.99)({FRESHNESS_S}) AS p99\n"
        f"FROM {FIRST_LANDINGS}\nWHERE $__timeFilter(landed_at)\nGROUP BY time\nORDER BY time",
        doc(
            "Seconds from the producer sending a batch (sent_at) to its row landing in ClickHouse "
            "(ingested_at), per interval. Includes producer batching delay after sending, worker "
            "and sink time. Each call counts once, at its first landing (replays are left out).",
            "rising freshness with rising lag: consumers are behind; with flat lag: the sink's "
            "batches wait too long (flush interval) or inserts are slow.",
        ),
        "s",
        limits=thresholds((None, "transparent"), (FRESHNESS_RED_S, "red")),
    ).axis_label("seconds")
    return [ingest, lag, freshness]


def _dead_letters() -> list[PanelBuilder]:
    rate = timeseries_panel(
        "Dead letters per minute by topic",
        "SELECT $__timeInterval(failed_at) AS time, source_topic,\n"
        "    count() / ($__interval_s / 60) AS dead_letters_per_min\n"
        "FROM llmwatch.llm_dlq FINAL\nWHERE $__timeFilter(failed_at)\n"
        "GROUP BY time, source_topic\nORDER BY time, source_topic",
        doc(
            "Rejected records or events per minute, by the topic they came from.",
            "a sudden rate after a deploy: a producer broke the event contract; see the reasons "
            "table and fix the producer.",
        ),
        "short",
    ).axis_label("dead letters / min")
    reasons = table_panel(
        "Top dead-letter reasons",
        f"SELECT {REASON_KIND} AS reason_kind, count() AS dead_letters,\n"
        f"    max(failed_at) AS last_seen, any(dead_letter_id) AS example_id\n"
        f"FROM llmwatch.llm_dlq FINAL\nWHERE $__timeFilter(failed_at)\n"
        f"GROUP BY reason_kind\nORDER BY dead_letters DESC\nLIMIT 10",
        doc(
            "The most frequent rejection reasons in the range (the offending values are stripped "
            "to group them; example_id locates one full record in llm_dlq).",
            "fix the producer named by the reason; SELECT payload FROM llmwatch.llm_dlq WHERE "
            "dead_letter_id = example_id shows the exact bytes.",
        ),
        span=12,
    )
    return [rate, reasons]


def _sink() -> list[PanelBuilder]:
    latency = timeseries_panel(
        "Sink insert latency by table",
        f"SELECT $__timeInterval(ts) AS time, labels['table'] AS target_table,\n"
        f"    max(value) AS insert_ms\nFROM {METRICS}\n"
        f"WHERE $__timeFilter(ts) AND metric = 'insert_latency_ms'\n"
        f"GROUP BY time, target_table\nORDER BY time, target_table",
        doc(
            "Slowest reported ClickHouse insert per interval and table.",
            "inserts above a second: ClickHouse is overloaded or merging too many parts; check its "
            "CPU and system.merges, and raise the sink's batch size to insert less often.",
        ),
        "ms",
        limits=thresholds((None, "transparent"), (INSERT_RED_MS, "red")),
    ).axis_label("insert latency")
    failures = timeseries_panel(
        "Sink insert failures",
        _FAILURES_SQL,
        doc(
            "Failed insert attempts per interval (the counter's increase, per sink run).",
            "any failure means the sink is retrying and not consuming: check ClickHouse "
            "availability and the sink's logs for the error.",
        ),
        "short",
        limits=thresholds((None, "transparent"), (1.0, "red")),
    ).axis_label("failed inserts")
    return [latency, failures]


def build() -> dashboard_builder.Dashboard:
    dashboard = new_dashboard(
        UID,
        "llmwatch pipeline health",
        "Is llmwatch itself keeping up: ingest, lag, freshness, dead letters and sink inserts.",
    ).with_row(row("Now"))
    for panel in _stats():
        dashboard = dashboard.with_panel(panel)
    dashboard = dashboard.with_row(row("Flow"))
    for panel in _flow():
        dashboard = dashboard.with_panel(panel)
    dashboard = dashboard.with_panel(_dead_letters()[0])
    dashboard = dashboard.with_row(row("Dead letters and sink"))
    for panel in [_dead_letters()[1], *_sink()]:
        dashboard = dashboard.with_panel(panel)
    return dashboard
