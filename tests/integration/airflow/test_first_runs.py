"""A new user's first screen: on a stack as `./stack up` leaves it, the first runs of every
scheduled DAG succeed. Before the first ODS build, monitoring shows the ODS stage as warming and
reconciliation has nothing to compare; neither is red."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any, Iterator

import pytest
from clickhouse_connect.driver.client import Client

from bankcdc_stack.airflow_api import AirflowApi
from bankcdc_stack.stack import Stack

from ..cdc_helpers import wait_for
from .conftest import unpaused

pytestmark = [pytest.mark.integration, pytest.mark.fresh_stack]
SCHEDULED = ("dbt_incremental", "cdc_monitoring")
FINISHED = ("success", "failed")


@pytest.fixture(scope="module")
def api(stack: Stack) -> AirflowApi:
    api = AirflowApi.for_stack(dict(stack.ctx.env), stack.ctx.secrets["AIRFLOW_ADMIN_PASSWORD"])
    for dag in (*SCHEDULED, "reconciliation", "dbt_test_suite"):
        api.wait_parsed(dag)
    return api


@pytest.fixture(scope="module")
def scheduled(api: AirflowApi) -> Iterator[AirflowApi]:
    """The scheduled DAGs unpaused as on the dev stack, paused again after with no run left."""
    with contextlib.ExitStack() as stack:
        for dag in SCHEDULED:
            stack.enter_context(unpaused(api, dag))
        yield api


def _triggered_run(api: AirflowApi, dag: str) -> tuple[str, str]:
    """Trigger `dag` by hand, as a user would from the UI; (run id, final state)."""
    with unpaused(api, dag):
        run_id = api.trigger(dag)
        state = wait_for(lambda: (s := api.run_state(dag, run_id)) in FINISHED and s, timeout=900, interval=3,
                         what=f"the {dag} run to end")
    return run_id, state


def _first_runs(api: AirflowApi, dag: str, count: int) -> list[dict[str, Any]]:
    runs = [r for r in api.runs(dag) if r["run_type"] == "scheduled"]
    runs.sort(key=lambda r: r["start_date"] or "")
    return runs[:count] if len(runs) >= count and all(r["state"] in FINISHED for r in runs[:count]) else []


def test_reconciliation_before_any_build_has_nothing_to_compare_and_is_not_red(api: AirflowApi,
                                                                              ch_admin: Client) -> None:
    assert ch_admin.query("SELECT count() FROM monitoring.ods_build").result_rows[0][0] == 0, "a fresh stack"
    run_id, state = _triggered_run(api, "reconciliation")
    assert state == "success"
    states = {ti["task_id"]: ti["state"] for ti in api.task_instances("reconciliation", run_id)}
    assert set(states.values()) == {"skipped"}, states


def test_first_scheduled_runs_succeed_with_the_ods_stage_warming_until_the_first_build(
        scheduled: AirflowApi, ch_admin: Client) -> None:
    api = scheduled
    builds = wait_for(lambda: _first_runs(api, "dbt_incremental", 3), timeout=900, interval=5,
                      what="the first three scheduled dbt_incremental runs to end")
    monitoring = wait_for(lambda: _first_runs(api, "cdc_monitoring", 2), timeout=600, interval=5,
                          what="the first two scheduled cdc_monitoring runs to end")
    for run in builds + monitoring:
        tasks = {ti["task_id"]: ti["state"] for ti in api.task_instances(run["dag_id"], run["dag_run_id"])}
        assert run["state"] == "success", f"{run['dag_id']} {run['dag_run_id']} ended {run['state']}: {tasks}"
    first_build = min(dt.datetime.fromisoformat(r["end_date"]) for r in builds)
    ods = ch_admin.query("SELECT ts, state, detail FROM monitoring.cdc_lag WHERE stage = 'ods' "
                         "AND dag_run_id IN {ids:Array(String)} ORDER BY ts",
                         parameters={"ids": [r["dag_run_id"] for r in monitoring]}).result_rows
    assert ods and {state for _, state, _ in ods} <= {"warming", "ok"}, ods
    warming = [ts for ts, state, _ in ods if state == "warming"]
    assert all(ts.replace(tzinfo=dt.timezone.utc) <= first_build for ts in warming), \
        "warming only before the first build finished"
    recorded = dict(ch_admin.query("SELECT dag_run_id, source_instant FROM monitoring.ods_build "
                                   "WHERE status = 'success'").result_rows)
    built = [run for run in builds if run["dag_run_id"] in recorded]
    assert built, "the first runs built (a run skips only while no stream has reported yet)"
    for run in built:
        instant = recorded[run["dag_run_id"]]
        note = api.run("dbt_incremental", run["dag_run_id"])["note"] or ""
        assert f"Source instant T: {instant:%Y-%m-%d %H:%M:%S.%f} UTC" in note, f"the run's note shows T: {note!r}"


def test_reconciliation_after_the_first_builds_compares_as_of_their_source_instant(
        scheduled: AirflowApi) -> None:
    api = scheduled
    wait_for(lambda: _first_runs(api, "dbt_incremental", 1), timeout=900, interval=5,
             what="a first dbt_incremental run")
    run_id, state = _triggered_run(api, "reconciliation")
    states = {ti["task_id"]: ti["state"] for ti in api.task_instances("reconciliation", run_id)}
    assert state == "success" and set(states.values()) == {"success"}, states


def test_the_whole_dbt_test_suite_passes_on_the_first_builds(scheduled: AirflowApi) -> None:
    api = scheduled
    wait_for(lambda: _first_runs(api, "dbt_incremental", 1), timeout=900, interval=5,
             what="a first dbt_incremental run")
    run_id, state = _triggered_run(api, "dbt_test_suite")
    assert state == "success", api.task_instances("dbt_test_suite", run_id)
