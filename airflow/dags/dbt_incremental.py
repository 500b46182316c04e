"""dbt_incremental: the dbt project (staging, ODS incremental, fraud marts), one task per model."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task
from cosmos import DbtTaskGroup
from cosmos.constants import DbtResourceType

from bankcdc_ops import dbt as ops_dbt

DOC = """
### dbt incremental build (staging -> ODS -> fraud marts)

Runs the dbt project in `dbt/` every 5 minutes through astronomer-cosmos: **one task per dbt
model** in the `dbt` group (a failure shows which model), then the project's **tests** in one
task after every model, then `record_ods_build` appends the successful build to
`monitoring.ods_build` (cdc_monitoring alerts when it gets old).

* ODS models are incremental on the raw rows' load time (see the models' docstrings): a run
  costs what the new data costs, and re-running changes nothing.
* Every model task of a run reads raw up to the same instant (the run's start minus 2 s, dbt var
  `upper_bound`): the ODS tables, SCD2 histories and marts of one run agree with each other while
  the filler keeps writing, and a task retried after a crash reads what its first try read.
* `max_active_runs=1`: runs never overlap; a slow run delays the next one instead.
* ClickHouse: connection **clickhouse_dwh** (user `transformer`); Cosmos builds the dbt profile
  from it; the credential reaches dbt only as an environment variable.
"""


@dag(
    schedule="*/5 * * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=30),
    default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=30)},
    tags=["bank-cdc", "dbt", "ods"],
    doc_md=DOC,
)
def dbt_incremental() -> None:
    build = DbtTaskGroup(
        group_id="dbt",
        project_config=ops_dbt.project_config(),
        profile_config=ops_dbt.profile_config(),
        execution_config=ops_dbt.execution_config(),
        render_config=ops_dbt.render_config(),
        operator_args=ops_dbt.operator_args(),
    )
    models = sorted(node.name for node in build.dbt_graph.filtered_nodes.values()
                    if node.resource_type == DbtResourceType.MODEL)

    @task(retries=2)
    def record_ods_build(**context) -> dict:
        """Append this successful build to monitoring.ods_build."""
        return ops_dbt.record_ods_build(context["run_id"], context["dag_run"].start_date, models)

    build >> record_ods_build()


dbt_incremental()
