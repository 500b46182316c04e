"""dbt_test_suite: every dbt test over whole tables, hourly."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from bankcdc_ops import dbt as ops_dbt
from bankcdc_ops.settings import DBT_POOL

DOC = """
### The whole dbt test suite (hourly)

`dbt_incremental` tests only what each run changed. This DAG runs **every test of the project
over whole tables**: the generic tests, the masked views' tests and the singular tests tagged
`full_suite` (rules of every fraud case, SCD2 histories against ODS, replays identical).

A failing test fails the run; the task log names each failed test and its message. It shares
the pool `dbt` with `dbt_incremental`'s build, so it never reads a table a build is rewriting.
ClickHouse: connection **clickhouse_dwh**.
"""


@dag(
    schedule="45 * * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=50),
    default_args={"retries": 0},
    tags=["bank-cdc", "dbt", "tests"],
    doc_md=DOC,
)
def dbt_test_suite() -> None:
    @task(pool=DBT_POOL)
    def dbt_test(**context) -> dict:
        """`dbt test` over every test and whole tables; fails naming each failed test."""
        return ops_dbt.full_test_suite(context)

    dbt_test()


dbt_test_suite()
