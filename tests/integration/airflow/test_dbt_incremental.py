"""dbt_incremental for real: after the filler has run, ODS equals PostgreSQL row for row, the build
is recorded with its source instant, every model of it read the source as of that instant, a
re-run changes nothing, and a model with a SQL error fails its own task."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from bankcdc_ops.dbt_cli import parse_project
from bankcdc_stack.airflow_api import AirflowApi

from ..ods_compare import ODS_TABLES, assert_ods_matches_pg
from .conftest import REPO, DagTestRun, build_ods, dag_test

pytestmark = pytest.mark.integration
DAG = "dbt_incremental"


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
    assert fresh_build.ok, fresh_build.tail()
    assert "dbt build passed:" in fresh_build.output, "one dbt build ran the models and their tests"
    assert_ods_matches_pg(pg_admin_dsn, ch_admin)


def test_successful_build_is_recorded_with_its_source_instant(fresh_build: DagTestRun, ch_admin: Client) -> None:
    rows = ch_admin.query("SELECT models, status, source_instant, loaded_upper_bound, finished_at >= started_at "
                          "FROM monitoring.ods_build WHERE dag_run_id = {r:String}",
                          parameters={"r": fresh_build.run_id}).result_rows
    assert len(rows) == 1, f"one monitoring.ods_build row for run {fresh_build.run_id}"
    models, status, instant, loaded, ordered = rows[0]
    assert status == "success" and ordered
    assert {"ods_transactions", "ods_customers", "stg_transactions", "fraud_amount_probing"} <= set(models)
    assert instant.year > 2000 and instant <= loaded, "T is a commit time ClickHouse had loaded through"
    assert f"source instant T={instant:%Y-%m-%d %H:%M:%S}" in fresh_build.output, "T is in the task log"


def test_every_model_of_a_build_reads_the_source_as_of_one_instant(fresh_build: DagTestRun,
                                                                    ch_admin: Client) -> None:
    started, finished, instant = ch_admin.query(
        "SELECT started_at, finished_at, source_instant FROM monitoring.ods_build WHERE dag_run_id = {r:String}",
        parameters={"r": fresh_build.run_id}).result_rows[0]
    marks = ch_admin.query("SELECT model, source_upper_bound FROM ods.dbt_watermarks "
                           "WHERE recorded_at BETWEEN {a:DateTime64(6, 'UTC')} AND {b:DateTime64(6, 'UTC')}",
                           parameters={"a": started, "b": finished}).result_rows
    models = {model.split(".")[-1].strip("`") for model, _ in marks}
    assert {"ods_transactions", "ods_cards", "ods_card_status_history", "fraud_closed_card_attempts"} <= models
    assert {bound for _, bound in marks} == {instant}, "every incremental model recorded the run's T"


def test_rerun_changes_nothing(fresh_build: DagTestRun, stack_env: dict[str, str], pg_admin_dsn: str,
                               ch_admin: Client) -> None:
    before = _ods_content(ch_admin)
    again = dag_test(stack_env, DAG, use_executor=True, timeout=1800)
    assert again.ok, again.tail()
    assert _ods_content(ch_admin) == before
    assert_ods_matches_pg(pg_admin_dsn, ch_admin)


@pytest.fixture
def broken_project(stack_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A copy of the dbt project whose ods_terminals has a SQL error, parsed as `./stack up`
    does; the environment that points dbt_incremental at it."""
    project = tmp_path / "dbt"
    shutil.copytree(REPO / "dbt", project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    model = project / "models" / "ods" / "ods_terminals.sql"
    text = model.read_text()
    model.write_text(text.replace("{{ ods_current_state('stg_terminals', 'terminal_id') }}",
                                  "select terminal_id, no_such_function(terminal_id) as broken "
                                  "from {{ ref('stg_terminals') }}"))
    state = tmp_path / "state"
    parsed = parse_project(stack_env, state, project=project)
    assert parsed.ok, parsed.tail()
    return {**stack_env, "DBT_PROJECT_DIR": str(project), "BANKCDC_DBT_STATE_DIR": str(state)}


def test_a_model_with_a_sql_error_fails_its_own_task_and_the_run_names_it(
        fresh_build: DagTestRun, broken_project: dict[str, str], stack_env: dict[str, str]) -> None:
    run = dag_test(broken_project, DAG, use_executor=True, timeout=1800)
    assert run.state == "failed", run.tail()
    assert "dbt build failed" in run.output and "ods_terminals" in run.output, run.tail()
    api = AirflowApi.for_stack(stack_env, stack_env["AIRFLOW_ADMIN_PASSWORD"])
    states = {ti["task_id"]: ti["state"] for ti in api.task_instances(DAG, run.run_id)}
    assert states["dbt.ods_terminals"] == "failed", states
    assert states["dbt.fraud_rapid_withdrawals"] == "failed", "dbt skipped what reads ods_terminals"
    assert states["dbt.ods_cards"] == states["dbt.ods_transactions"] == "success", states
    text = api.task_log(DAG, run.run_id, "dbt.ods_terminals")
    assert "dbt model ods_terminals failed" in text and "no_such_function" in text.lower(), text[-3000:]
