"""cdc_monitoring: lag of every CDC stage, recorded in ClickHouse and checked against thresholds."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag

from bankcdc_ops.deferred.stage_check import StageCheck

DOC = """
### CDC lag monitoring (every minute)

One task per stage. Each measures its figures, **appends every figure to
`monitoring.cdc_lag`** in ClickHouse, then **fails naming the stage and the figure** when one
exceeds its threshold. The tasks run in the triggerer: a run starts no worker process.

| task | figures | threshold (Airflow Variable, default) |
|---|---|---|
| `connect` | each connector's and task's state (Connect REST, connection **kafka_connect**) | must be RUNNING |
| `replication_slots` | per slot: active, `wal_status`, lag bytes = current WAL LSN - confirmed flush LSN | `cdc_max_slot_lag_bytes` (256 MiB); inactive / unreserved / lost fail |
| `kafka` | consumer-group lag per partition, group members | `cdc_max_consumer_lag_messages` (100000); no member fails |
| `clickhouse_freshness` | per raw table: now - commit time of the newest change loaded | `cdc_max_freshness_seconds` (1800) |
| `end_to_end` | Debezium heartbeat (`cdc.heartbeat` -> `raw.heartbeat`): age of the newest one in ClickHouse, commit-to-load seconds | `cdc_max_end_to_end_seconds` (120) |
| `ods_build` | seconds since the last successful `dbt_incremental` build; age of its source instant T | `cdc_max_ods_build_age_seconds` (1800), `cdc_max_ods_source_age_seconds` (900) |

Soon after start, before the first ODS build, the `ods_build` figures are **warming** (recorded
with `state = 'warming'`), not breaches. History: table `monitoring.cdc_lag` in ClickHouse,
ordered by (stage, metric, ts), column `state` ok / warming / breached.
"""

STAGES = {  # task id -> stage (monitoring.cdc_lag.stage)
    "connect": "connect",
    "replication_slots": "replication_slot",
    "kafka": "kafka",
    "clickhouse_freshness": "clickhouse",
    "end_to_end": "end_to_end",
    "ods_build": "ods",
}


@dag(
    schedule="* * * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=5),
    default_args={"retries": 0, "execution_timeout": dt.timedelta(minutes=2)},
    tags=["bank-cdc", "monitoring", "cdc"],
    doc_md=DOC,
)
def cdc_monitoring() -> None:
    for task_id, stage in STAGES.items():
        StageCheck(task_id=task_id, stage=stage, doc_md=f"Measure, record and check the `{stage}` stage.")


cdc_monitoring()
