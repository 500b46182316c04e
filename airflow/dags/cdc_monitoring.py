"""cdc_monitoring: lag of every CDC stage, recorded in ClickHouse and checked against thresholds."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from bankcdc_ops import monitoring, probes

DOC = """
### CDC lag monitoring (every minute)

One task per stage. Each measures its figures, **appends every figure to
`monitoring.cdc_lag`** in ClickHouse, then **fails naming the stage and the figure** when one
exceeds its threshold.

| task | figures | threshold (Airflow Variable, default) |
|---|---|---|
| `connect` | each connector's and task's state (Connect REST, connection **kafka_connect**) | must be RUNNING |
| `replication_slots` | per slot: active, `wal_status`, lag bytes = current WAL LSN - confirmed flush LSN | `cdc_max_slot_lag_bytes` (256 MiB); inactive / unreserved / lost fail |
| `kafka` | consumer-group lag per partition, group members | `cdc_max_consumer_lag_messages` (100000); no member fails |
| `clickhouse_freshness` | per raw table: now - commit time of the newest change loaded | `cdc_max_freshness_seconds` (1800) |
| `end_to_end` | Debezium heartbeat (`cdc.heartbeat` -> `raw.heartbeat`): age of the newest one in ClickHouse, commit-to-load seconds | `cdc_max_end_to_end_seconds` (120) |
| `ods_build` | seconds since the last successful `dbt_incremental` | `cdc_max_ods_build_age_seconds` (1800) |

History: table `monitoring.cdc_lag` in ClickHouse, ordered by (stage, metric, ts).
"""


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
    @task
    def connect(**context) -> list[str]:
        """Kafka Connect: connector and task states."""
        return monitoring.record_and_check("connect", probes.connect_figures(), context["run_id"])

    @task
    def replication_slots(**context) -> list[str]:
        """PostgreSQL replication slots: activity, wal_status, lag in bytes."""
        return monitoring.record_and_check("replication_slot", probes.replication_slot_figures(), context["run_id"])

    @task
    def kafka(**context) -> list[str]:
        """Kafka: the CDC consumer group's lag per partition."""
        return monitoring.record_and_check("kafka", probes.kafka_figures(), context["run_id"])

    @task
    def clickhouse_freshness(**context) -> list[str]:
        """ClickHouse: freshness of each raw table."""
        return monitoring.record_and_check("clickhouse", probes.clickhouse_freshness_figures(), context["run_id"])

    @task
    def end_to_end(**context) -> list[str]:
        """End to end: Debezium heartbeat from PostgreSQL to ClickHouse."""
        return monitoring.record_and_check("end_to_end", probes.end_to_end_figures(), context["run_id"])

    @task
    def ods_build(**context) -> list[str]:
        """ODS: time since the last successful dbt_incremental build."""
        return monitoring.record_and_check("ods", probes.ods_build_figures(), context["run_id"])

    connect()
    replication_slots()
    kafka()
    clickhouse_freshness()
    end_to_end()
    ods_build()


cdc_monitoring()
