-- Events the consumer could not load (malformed JSON, unknown table, values out of range):
-- kept whole with where they came from and why, so nothing is lost and each can be replayed.
-- ReplacingMergeTree on (topic, partition, offset): a replayed dead letter collapses into one.
CREATE TABLE IF NOT EXISTS raw._dead_letter
(
    topic       LowCardinality(String),
    partition   Int32,
    offset      Int64,
    key         String,
    payload     String,
    error       String,
    failed_at   DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, offset);
