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

-- monitoring.ods_build: one row per dbt_incremental build (models built, tests passed);
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

-- Since one dbt build per run (bankcdc_ops.dbt_build): failed builds are recorded too (status,
-- failed models and tests), with the run's source instant T, its load bound, and the build's cost.
ALTER TABLE monitoring.ods_build ADD COLUMN IF NOT EXISTS status LowCardinality(String) DEFAULT 'success';
ALTER TABLE monitoring.ods_build ADD COLUMN IF NOT EXISTS failed Array(String);
ALTER TABLE monitoring.ods_build ADD COLUMN IF NOT EXISTS source_instant DateTime64(6, 'UTC');
ALTER TABLE monitoring.ods_build ADD COLUMN IF NOT EXISTS loaded_upper_bound DateTime64(6, 'UTC');
ALTER TABLE monitoring.ods_build ADD COLUMN IF NOT EXISTS dbt_seconds Float64;
ALTER TABLE monitoring.ods_build ADD COLUMN IF NOT EXISTS cpu_seconds Float64;

-- state: ok | warming (not measurable yet soon after start, e.g. no ODS build: never a breach) | breached
ALTER TABLE monitoring.cdc_lag ADD COLUMN IF NOT EXISTS state LowCardinality(String) DEFAULT if(breached, 'breached', 'ok');
ALTER TABLE monitoring.ods_build ADD COLUMN IF NOT EXISTS task_cpu_seconds Float64;
