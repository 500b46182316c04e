"""reconciliation: PostgreSQL against ODS per table and day; fails with example keys on a mismatch."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, task

from bankcdc_ops import reconciliation as recon
from bankcdc_ops.settings import RECONCILIATION_SETTLE_DEFAULT, RECONCILIATION_SETTLE_VARIABLE, read_number_variable
from bankcdc_ops.tables import TABLES

DOC = f"""
### Reconciliation: PostgreSQL (bank.*) against ODS (ods.*), hourly

One task per table. As of the **source instant T of the last successful `dbt_incremental`
build** (what ODS shows), per UTC day of `created_at`: row count, sum of keys, sum of amounts
(transactions) and count per status of the rows created before T, in PostgreSQL
(**postgres_bank**, one REPEATABLE READ snapshot) against ODS's live rows (`FINAL`, not
`is_deleted`, via **clickhouse_dwh**). Before the first build the tasks skip: nothing to compare.

A day that differs is narrowed to hours, then keys. Keys still **in flight** pass: changed in
PostgreSQL after T minus the settle window (Variable `{RECONCILIATION_SETTLE_VARIABLE}`, default
{RECONCILIATION_SETTLE_DEFAULT:.0f} s), or newer in raw than in ODS (the next `dbt_incremental`
takes them). Anything else **fails the task**, logging the differing totals and example keys.

Param `lookback_days`: compare only the last N days (0: every day).
"""


@dag(
    schedule="15 * * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=50),
    default_args={"retries": 0},
    tags=["bank-cdc", "reconciliation", "ods"],
    doc_md=DOC,
    params={"lookback_days": Param(0, type="integer", minimum=0, description="last N days only; 0: all days")},
)
def reconciliation() -> None:
    @task
    def reconcile(table: str, **context) -> dict:
        """PostgreSQL against ODS for one table, as of the last build's source instant."""
        from airflow.exceptions import AirflowSkipException

        settle = read_number_variable(RECONCILIATION_SETTLE_VARIABLE, RECONCILIATION_SETTLE_DEFAULT,
                                      "seconds between a transaction's start and its commit")
        try:
            return recon.reconcile(table, settle, int(context["params"]["lookback_days"]))
        except recon.NothingToReconcile as exc:
            raise AirflowSkipException(str(exc)) from exc

    for name in TABLES:
        reconcile.override(task_id=f"reconcile_{name}")(name)


reconciliation()
