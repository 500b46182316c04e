-- Monitoring written by Airflow (bankcdc_ops, user transformer). Append-only time series.
--
-- monitoring.cdc_lag: every figure the cdc_monitoring DAG measures, one row per figure per run.
--   stage      connect | replication_slot | kafka | clickhouse | end_to_end | ods
--   metric     e.g. connector_running, lag_bytes, consumer_lag_messages, freshness_seconds
--   subject    what the figure is about: connector/task, slot, topic[partition], raw table
--   value      the figure;  threshold: the limit it was checked against (NULL: recorded only)
--   breached   1 when value exceeded threshold (the run failed on it)
CREATE TABLE IF NOT EXISTS monitoring.cdc_lag
(
    ts          DateTime64(3, 'UTC'),
    stage       LowCardinality(String),
    metric      LowCardinality(String),
    subject     String,
    value       Float64,
    threshold   Nullable(Float64),
    breached    UInt8,
    detail      String,
    dag_run_id  String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (stage, metric, ts)
TTL toDateTime(ts) + INTERVAL 90 DAY;

-- monitoring.ods_build: one row per successful dbt_incremental run (models built, tests passed);
-- cdc_monitoring measures the time since the newest one.
CREATE TABLE IF NOT EXISTS monitoring.ods_build
(
    finished_at  DateTime64(3, 'UTC'),
    started_at   DateTime64(3, 'UTC'),
    dag_run_id   String,
    models       Array(String)
)
ENGINE = MergeTree
ORDER BY finished_at;
