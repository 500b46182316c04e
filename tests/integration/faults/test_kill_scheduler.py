"""Issue 7: kill -9 the Airflow scheduler (and the task processes it runs) in the middle of a
scheduled dbt_incremental build, under load. The run finishes by itself after the restart (the
killed build task times out and is retried as of a new source instant), and ODS equals
PostgreSQL row for row."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from bankcdc_ops.deferred.dbt_model import BUILD_TASK_ID
from bankcdc_stack import faults
from bankcdc_stack.airflow_api import AirflowApi
from bankcdc_stack.stack import Stack

from ..cdc_helpers import assert_raw_equals_pg, wait_for
from ..ods_compare import ods_mismatches
from .recovery import (FaultReport, Filler, LoadProfile, build_ods, ods_integrity, wait_streaming)

pytestmark = pytest.mark.integration
DAG = "dbt_incremental"
UTC = dt.timezone.utc


@pytest.fixture
def scheduled_dbt(airflow_api: AirflowApi) -> Iterator[AirflowApi]:
    """dbt_incremental unpaused for the scheduler; paused again after, with no run left over
    (the other tests run it by hand)."""
    airflow_api.wait_parsed(DAG)
    airflow_api.set_paused(DAG, False)
    try:
        yield airflow_api
    finally:
        airflow_api.set_paused(DAG, True)
        for state in ("queued", "running"):
            for run_id in airflow_api.run_ids(DAG, state):
                airflow_api.set_run_state(DAG, run_id, "failed")


def _running_build(api: AirflowApi) -> tuple[str, str] | None:
    """(run id, task id) of the dbt build task running in any run of the DAG."""
    for run_id in api.run_ids(DAG, "running"):
        for ti in api.task_instances(DAG, run_id):
            if ti["state"] == "running" and ti["task_id"] == BUILD_TASK_ID:
                return run_id, ti["task_id"]
    return None


def test_kill_scheduler_mid_dbt_run_then_run_completes_and_ods_equals_postgres(
        stack: Stack, scheduled_dbt: AirflowApi, filler_env: dict[str, str], stack_env: dict[str, str],
        pg_admin_dsn: str, ch: Client, profile: LoadProfile, fault_report: FaultReport, tmp_path: Path) -> None:
    api = scheduled_dbt
    filler = Filler(filler_env, profile.rate)
    try:
        wait_streaming(ch)
        started = dt.datetime.now(UTC)
        if not api.run_ids(DAG, "running") and not api.run_ids(DAG, "queued"):
            api.trigger(DAG)  # unpausing usually schedules one already
        run_id, model = wait_for(lambda: _running_build(api), timeout=900, interval=1.0,
                                 what=f"the dbt build of a {DAG} run to be running")
        killed = faults.crash(stack, "airflow-scheduler")
        assert killed and faults.is_down(stack, "airflow-scheduler")
        assert stack.services["airflow"].processes()[0].pid() is not None, "only the scheduler crashed"
        killed_at = time.monotonic()
        time.sleep(profile.down_seconds)
        restart_s = faults.recover(stack, "airflow-scheduler")
        state = wait_for(lambda: (s := api.run_state(DAG, run_id)) in ("success", "failed") and s,
                         timeout=1200, interval=5.0, what=f"{DAG} run {run_id} to finish after the restart")
        finished_s = time.monotonic() - killed_at
        tries = {ti["task_id"]: ti["try_number"] for ti in api.task_instances(DAG, run_id)}
        assert state == "success", f"{DAG} run {run_id} ended {state}; tries per task: {tries}"
    finally:
        filler.stop()
    assert tries[model] >= 2, f"{model} was killed mid-run, so it must have been retried (tries: {tries})"
    retry_started, ended, instant = ch.query(
        "SELECT started_at, finished_at, source_instant FROM monitoring.ods_build "
        "WHERE dag_run_id = {r:String} AND status = 'success'", parameters={"r": run_id}).result_rows[0]
    bounds = ch.query("SELECT DISTINCT source_upper_bound FROM ods.dbt_watermarks "
                      "WHERE recorded_at BETWEEN {s:DateTime64(6)} AND {e:DateTime64(6)}",
                      parameters={"s": retry_started, "e": ended}).result_rows
    assert bounds == [(instant,)], f"every model of the retried build reads the source as of its one T: {bounds}"
    assert_raw_equals_pg(pg_admin_dsn, ch, timeout=300)
    # what the interrupted run built: right for every key that had settled well before it started
    settled = ods_mismatches(pg_admin_dsn, ch, ignore_changed_after=started - dt.timedelta(seconds=60))
    assert not settled, f"the interrupted, retried run left ODS wrong: {settled}"
    dbt_s = build_ods(stack_env, ch, tmp_path)  # the next scheduled build, with the filler stopped
    integrity = ods_integrity(pg_admin_dsn, ch)
    fault_report.add("faults", "airflow-scheduler", {
        "processes_killed": len(killed), "killed_during": model, "down_s": profile.down_seconds,
        "restart_s": round(restart_s, 1), "dag_run_finished_after_kill_s": round(finished_s, 1),
        "recovery_s": round(finished_s, 1), "run_started": started.isoformat(),
        "rows_lost": integrity.lost, "rows_duplicated": integrity.duplicated, "rows_extra": integrity.extra,
        "dbt_run_s": round(dbt_s, 1)})
    assert (integrity.lost, integrity.duplicated, integrity.extra) == (0, 0, 0), integrity
    assert not integrity.mismatches, integrity.mismatches
