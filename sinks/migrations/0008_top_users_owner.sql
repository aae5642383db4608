-- 0008: which source partitions a top-K snapshot covers (streams.periodic.top_user_rows).
--
-- llm_top_users rows carry the events-topic partitions their worker instance owned when it published
-- (`partitions`) and the exact publish time (`published_at`, ms). The cost dashboard keeps, per
-- partition, only the newest snapshot that claims it, so a dead instance's last snapshot stops counting
-- once another instance publishes for its partitions. Rows written before this migration get no
-- partitions (the dashboard keeps them, as before) and their snapshot minute as publish time.
-- Every statement is idempotent (IF NOT EXISTS).
ALTER TABLE {database}.llm_top_users
    ADD COLUMN IF NOT EXISTS partitions Array(UInt32) DEFAULT [];

ALTER TABLE {database}.llm_top_users
    ADD COLUMN IF NOT EXISTS published_at DateTime64(3, 'UTC') DEFAULT snapshot_minute;
