"""dbt_incremental: the dbt project (staging, ODS incremental, fraud marts), one build per run."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import TaskGroup, dag, task

from bankcdc_ops import dbt as ops_dbt
from bankcdc_ops.dbt_manifest import load_graph
from bankcdc_ops.deferred.dbt_model import BUILD_TASK_ID, DbtModelTask
from bankcdc_ops.settings import DBT_POOL, DBT_RUN_INTERVAL

DOC = f"""
### dbt incremental build (staging -> ODS -> fraud marts), every {DBT_RUN_INTERVAL.seconds} s

* **`dbt_build`** chooses the run's **source instant T**: the latest commit time through which
  every Kafka partition of every Debezium connector has been loaded into raw (heartbeats move
  idle streams forward). It then runs **one `dbt build`** in which every model and test reads
  the changes committed by T, so ODS tables, SCD2 histories and fraud marts describe one moment
  of the source, and no mart row references an entity ODS lacks. T, the stream that limited it
  and the build's cost are in the task log, its XCom and `monitoring.ods_build`.
* **One task per dbt model** in the `dbt` group (edges: dbt's lineage): each ends when the build
  reports its model and the model's tests (it waits in the triggerer, no worker process). A
  failed model or test fails its own task, naming it; a model dbt then skipped fails too, naming
  what failed upstream.
* Tests of a run read only what the run changed (`macros/test_scope.sql`); the whole suite runs
  hourly in `dbt_test_suite`.
* Runs start every {DBT_RUN_INTERVAL.seconds} s and never overlap (`max_active_runs=1`): a slow
  run delays the next one, nothing piles up. Before any stream has reported (first seconds of
  a new stack) `dbt_build` skips: warming up, not failed.
* ClickHouse: connection **clickhouse_dwh** (user `transformer`); dbt/profiles.yml reads it from
  the environment of the dbt invocation only. Kafka: **kafka_default** (offsets, read-only).
"""


@dag(
    schedule=DBT_RUN_INTERVAL,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=30),
    default_args={"retries": 0},
    tags=["bank-cdc", "dbt", "ods"],
    doc_md=DOC,
)
def dbt_incremental() -> None:
    @task(task_id=BUILD_TASK_ID, retries=1, retry_delay=dt.timedelta(seconds=10), pool=DBT_POOL)
    def dbt_build(**context) -> dict:
        """Choose the source instant T, run `dbt build` once as of T, record the build."""
        return ops_dbt.incremental_build(context)

    dbt_build()
    graph = load_graph()
    with TaskGroup("dbt", tooltip="one task per dbt model, reported by the run's single dbt build"):
        # edges show dbt's lineage; trigger_rule "always" lets every model task wait on the build
        # from the start and end with it (a model dbt skipped fails with its upstream's name)
        tasks = {name: DbtModelTask(task_id=name, model=name, trigger_rule="always") for name in graph.models}
    for name, model in graph.models.items():
        for upstream in model.upstream:
            tasks[upstream] >> tasks[name]


dbt_incremental()
