-- 0002: the llm_dlq table, one row per dead letter (keys: streams.records.DLQ_FIELDS).
--
-- Rows come from the worker's dlq topic and from records the sink itself could not decode.
-- payload holds the original bytes whole; payload_size and payload_sha256 identify them.
--
-- Engine: ReplacingMergeTree(ingested_at) ORDER BY (dead_letter_id, payload_sha256).
--   * dead_letter_id is the source position (topic/partition/offset/index), so a replayed dead letter
--     collapses into one row; read with FINAL for exact counts.
--   * failed_at is NOT in the key or the partition: the worker stamps it when it rejects the record,
--     so a worker replay of the same bad record carries a later failed_at and must still collapse.
--   * payload_sha256 keeps two different payloads seen at the same position apart (an in-memory
--     broker restarted from offset 0), while a replay of the same bytes still deduplicates.
--   * No partitioning: dead letters are few; the 30-day row TTL is applied by merges.
CREATE TABLE IF NOT EXISTS {database}.llm_dlq
(
    dead_letter_id String,
    failed_at DateTime64(3, 'UTC'),
    reason String,
    source_topic LowCardinality(String),
    source_partition Int32,
    source_offset Int64,
    index_in_record Int32,
    payload_size UInt32,
    payload_sha256 String,
    payload String CODEC(ZSTD(3)),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (dead_letter_id, payload_sha256)
TTL toDateTime(failed_at) + INTERVAL 30 DAY;
