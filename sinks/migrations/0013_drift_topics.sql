-- 0013: topic shares of the embedding drift monitor (streams/drift/embedding.py).
--
-- llm_drift_topics: one row per (window, scope, topic) of a closed window: the topic's share of the
-- reference and of the window. A topic is a k-means cluster of the scope's topic model, fit on its
-- first reference (or the pinned baseline) and kept, so a topic id means the same thing from window to
-- window until the baseline is set again (model_id says which fit). Topic -1 is "novel": texts farther
-- from every centroid than 99% of the reference was. Its row carries examples of the largest group of
-- novel texts: their event ids, and their redacted text only for calls captured with `store`. Scope:
-- service, span kind and direction ('input' / 'output'). Keyed by (window_start, scope, topic), so a
-- replayed evaluation collapses.
CREATE TABLE IF NOT EXISTS {database}.llm_drift_topics
(
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    reference_kind LowCardinality(String),
    service LowCardinality(String),
    span_kind LowCardinality(String),
    direction LowCardinality(String),
    model_id LowCardinality(String),
    topic Int16,
    reference_share Float64,
    current_share Float64,
    current_n UInt64,
    examples Array(String),
    evaluated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(evaluated_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, service, span_kind, direction, topic)
TTL toDateTime(window_start) + INTERVAL 400 DAY;
