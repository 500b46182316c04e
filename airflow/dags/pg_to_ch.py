"""pg_to_ch: backfill a raw table from PostgreSQL (initial loads, repairs), idempotent with CDC."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, task

from bankcdc_ops.backfill import MAX_CHUNK_ROWS, BackfillRequest, run_backfill
from bankcdc_ops.tables import TABLES

DOC = """
### Backfill PostgreSQL -> ClickHouse raw (trigger by hand)

Copies the rows of one source table created in a date range (UTC, inclusive; both empty =
the whole table) into `raw.<table>`, for initial loads and repairs.

* **Idempotent with CDC:** rows go in as snapshot-like versions (`_op='r'`, `_version=0`): every
  change the CDC stream delivers outranks them, as a Debezium snapshot read does. Keys already
  in the raw table are skipped, and each block has a deterministic `insert_deduplication_token`,
  so a re-run (or a retried task) inserts nothing.
* PostgreSQL is read as **postgres_bank** (read-only role) in one consistent snapshot; ClickHouse
  raw is written as **clickhouse_raw_loader** (the only role that writes raw). The next
  `dbt_incremental` run takes the rows into ODS.
"""


@dag(
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=30)},
    tags=["bank-cdc", "backfill", "clickhouse"],
    doc_md=DOC,
    params={
        "table": Param("transaction", enum=sorted(TABLES), description="source table bank.<table>"),
        "start_date": Param(None, type=["null", "string"], format="date",
                            description="first day (created_at, UTC), YYYY-MM-DD; empty: from the first row"),
        "end_date": Param(None, type=["null", "string"], format="date",
                          description="last day, inclusive, YYYY-MM-DD; empty: up to now"),
        "chunk_rows": Param(50_000, type="integer", minimum=1, maximum=MAX_CHUNK_ROWS,
                            description="rows per ClickHouse insert"),
    },
)
def pg_to_ch() -> None:
    @task(retries=0)
    def validate_params(**context) -> dict:
        """Check the params (table, dates, chunk size); fails with what to fix."""
        request = BackfillRequest.from_params(context["params"])
        return {"table": request.table.name, "start_date": request.start and request.start.isoformat(),
                "end_date": request.end and request.end.isoformat(), "chunk_rows": request.chunk_rows}

    @task
    def copy_rows(request: dict) -> dict:
        """Copy the rows ClickHouse does not hold yet."""
        return run_backfill(BackfillRequest.from_params(request)).as_dict()

    copy_rows(validate_params())


pg_to_ch()
