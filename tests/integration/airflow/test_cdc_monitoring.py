"""cdc_monitoring for real: every stage appends its figures to monitoring.cdc_lag; a threshold set
below the current lag fails the run, naming the stage and the figure, after recording it."""

from __future__ import annotations

from typing import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from ..cdc_helpers import assert_raw_equals_pg
from .conftest import DagTestRun, airflow_cli, dag_test, touch_every_table

pytestmark = pytest.mark.integration
STAGES = {"connect", "replication_slot", "kafka", "clickhouse", "end_to_end", "ods"}


def _figures(ch: Client, run_id: str) -> list[tuple]:
    return ch.query("SELECT stage, metric, subject, value, threshold, breached, detail FROM monitoring.cdc_lag "
                    "WHERE dag_run_id = {r:String}", parameters={"r": run_id}).result_rows


@pytest.fixture
def end_to_end_threshold_zero(stack_env: dict[str, str]) -> Iterator[None]:
    out = airflow_cli(stack_env, "variables", "set", "cdc_max_end_to_end_seconds", "0", timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    yield
    out = airflow_cli(stack_env, "variables", "delete", "cdc_max_end_to_end_seconds", timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


def test_healthy_stack_records_every_stage_and_passes(ods_build: DagTestRun, stack_env: dict[str, str],
                                                      pg_admin_dsn: str, ch_admin: Client) -> None:
    touch_every_table(pg_admin_dsn)
    assert_raw_equals_pg(pg_admin_dsn, ch_admin)
    run = dag_test(stack_env, "cdc_monitoring")
    assert run.run_id, run.tail()
    figures = _figures(ch_admin, run.run_id)
    assert {f[0] for f in figures} == STAGES, "every stage appended its figures"
    breached = [f for f in figures if f[5]]
    assert run.ok and not breached, f"{breached}\n{run.tail()}"
    metrics = {(f[0], f[1]) for f in figures}
    assert {("replication_slot", "lag_bytes"), ("kafka", "consumer_lag_messages"), ("end_to_end", "transit_seconds"),
            ("clickhouse", "freshness_seconds"), ("connect", "task_running"), ("ods", "seconds_since_build")} <= metrics
    slots = {f[2] for f in figures if f[1] == "lag_bytes"}
    assert slots == {"dbz_bank_dims", "dbz_bank_txn"}
    partitions = {f[2] for f in figures if f[1] == "consumer_lag_messages"}
    assert {"bank.bank.transaction[0]", "bank.bank.transaction[1]", "bank.bank.transaction[2]"} <= partitions
    assert {f[2] for f in figures if f[1] == "freshness_seconds"} == {
        "raw.customer", "raw.account", "raw.card", "raw.terminal", "raw.transaction"}


def test_threshold_below_current_lag_fails_naming_stage_and_figure(
        ods_build: DagTestRun, end_to_end_threshold_zero: None, stack_env: dict[str, str], pg_admin_dsn: str,
        ch_admin: Client) -> None:
    touch_every_table(pg_admin_dsn)
    assert_raw_equals_pg(pg_admin_dsn, ch_admin)
    run = dag_test(stack_env, "cdc_monitoring")
    assert run.returncode != 0 and run.state == "failed", run.tail()
    assert "end_to_end: " in run.output and "threshold(s) exceeded" in run.output
    assert "[end_to_end] bank-transactions heartbeat_age_seconds=" in run.output
    assert "Variable cdc_max_end_to_end_seconds" in run.output
    figures = _figures(ch_admin, run.run_id)
    assert {f[0] for f in figures} == STAGES, "the other stages still recorded"
    breached = {(f[0], f[1], f[2]) for f in figures if f[5]}
    assert ("end_to_end", "heartbeat_age_seconds", "bank-transactions") in breached
    assert all(stage == "end_to_end" for stage, _, _ in breached), breached
    assert all(f[4] == 0 for f in figures if f[0] == "end_to_end"), "threshold recorded with the figure"
