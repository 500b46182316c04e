"""dbt_incremental for real: after the filler has run, ODS equals PostgreSQL row for row, the build
is recorded for cdc_monitoring, and a re-run changes nothing."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client

from ..ods_compare import ODS_TABLES, assert_ods_matches_pg
from .conftest import DagTestRun, build_ods, dag_test

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fresh_build(stack_env: dict[str, str], filler_env: dict[str, str], pg_admin_dsn: str,
                ch_admin: Client) -> DagTestRun:
    """This module's own build: other modules write to PostgreSQL after the session's build."""
    return build_ods(stack_env, filler_env, pg_admin_dsn, ch_admin)


def _ods_content(ch: Client) -> dict[str, tuple[int, int]]:
    """(live rows, hash of every modeled column) per ODS table: what a reader of ODS sees."""
    out = {}
    for name, table in ODS_TABLES.items():
        cols = ", ".join(table.ods_columns)
        out[name] = tuple(ch.query(f"SELECT count(), sum(cityHash64({cols})) FROM {table.ods} FINAL "
                                   "WHERE NOT is_deleted").result_rows[0])
    return out


def test_build_equals_postgres_row_for_row(fresh_build: DagTestRun, pg_admin_dsn: str, ch_admin: Client) -> None:
    assert fresh_build.ok
    assert "Done. PASS=" in fresh_build.output and "ERROR=0" in fresh_build.output, "dbt tests ran and passed"
    assert_ods_matches_pg(pg_admin_dsn, ch_admin)


def test_successful_build_is_recorded(fresh_build: DagTestRun, ch_admin: Client) -> None:
    rows = ch_admin.query("SELECT models, finished_at >= started_at FROM monitoring.ods_build "
                          "WHERE dag_run_id = {r:String}", parameters={"r": fresh_build.run_id}).result_rows
    assert len(rows) == 1, f"one monitoring.ods_build row for run {fresh_build.run_id}"
    models, ordered = rows[0]
    assert ordered and {"ods_transactions", "ods_customers", "stg_transactions"} <= set(models)


def test_rerun_changes_nothing(fresh_build: DagTestRun, stack_env: dict[str, str], pg_admin_dsn: str,
                               ch_admin: Client) -> None:
    before = _ods_content(ch_admin)
    again = dag_test(stack_env, "dbt_incremental", use_executor=True, timeout=1800)
    assert again.ok, again.tail()
    assert _ods_content(ch_admin) == before
    assert_ods_matches_pg(pg_admin_dsn, ch_admin)
