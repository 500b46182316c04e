"""Airflow DAGs against the session's test stack: `airflow dags test` for real, through the stack's
`airflow` passthrough (`python -m bankcdc_stack airflow ...`, what `./stack airflow` runs).

The test stack starts with its DAGs paused (AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True, set
by tests/conftest.py), so the scheduler never schedules these runs' tasks. It still sweeps running
runs of paused DAGs every minute and may be the one that finishes a run; `dag_test` then reads the
run's final state through the REST API, as `airflow dags test` logs nothing in that case.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import psycopg2
import pytest
from clickhouse_connect.driver.client import Client

from bankcdc_stack.airflow_api import AirflowApi

from ..cdc_helpers import TABLE_KEYS, assert_raw_equals_pg, ch_client, wait_for

REPO = Path(__file__).resolve().parents[3]
DAGS = REPO / "airflow" / "dags"
_FINISHED = re.compile(r"DagRun Finished: dag_id=(?P<dag>\S+), logical_date=.*?, run_id=(?P<run>[^,\s]+),"
                       r".*?state=(?P<state>\w+)")
_FAILURE = re.compile(r"\[error|ERROR|Traceback|threshold\(s\) exceeded|Task failed")
_TASK_RUN = re.compile(r"<TaskInstance: (?P<dag>[^.\s]+)\.\S+ (?P<run>\S+) \[")


@dataclass(frozen=True)
class DagTestRun:
    dag_id: str
    returncode: int
    output: str
    run_id: str | None
    state: str | None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.state == "success"

    def tail(self, chars: int = 6000) -> str:
        """The output's end, after the lines that say why a task failed (they may be far above)."""
        lines = [line for line in self.output.splitlines()
                 if not line.startswith('{"name"')]  # drop Cosmos' dbt ls dump
        failures = [line for line in lines if _FAILURE.search(line)][-20:]
        end = "\n".join(lines)[-chars:]
        return "\n".join(["-- failure lines --", *failures, "-- end of output --", end]) if failures else end


def airflow_cli(stack_env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bankcdc_stack", "airflow", *args], env=stack_env,
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def dag_test(stack_env: dict[str, str], dag_id: str, conf: dict[str, Any] | None = None,
             use_executor: bool = False, timeout: float = 900) -> DagTestRun:
    args = ["dags", "test", dag_id, "-f", str(DAGS / f"{dag_id}.py")]
    if conf is not None:
        args += ["-c", json.dumps(conf)]
    if use_executor:
        args.append("--use-executor")  # LocalExecutor: the model tasks run in parallel, as scheduled
    out = airflow_cli(stack_env, *args, timeout=timeout)
    text = out.stdout + out.stderr
    found = [m for m in _FINISHED.finditer(text) if m["dag"] == dag_id]
    if found:
        return DagTestRun(dag_id, out.returncode, text, found[-1]["run"], found[-1]["state"])
    runs = [m["run"] for m in _TASK_RUN.finditer(text) if m["dag"] == dag_id]
    if not runs:
        return DagTestRun(dag_id, out.returncode, text, None, None)
    # a run the scheduler's sweep of paused DAGs ended logs no "DagRun Finished" line (and dags test
    # exits 1 if it failed): its state is the API's
    api = AirflowApi.for_stack(stack_env, stack_env["AIRFLOW_ADMIN_PASSWORD"])
    return DagTestRun(dag_id, out.returncode, text, runs[-1], api.run_state(dag_id, runs[-1]))


@pytest.fixture(scope="session")
def ch_admin(stack_env: dict[str, str]) -> Iterator[Client]:
    client = ch_client(stack_env)
    yield client
    client.close()


def run_filler(filler_env: dict[str, str], seconds: int, rate: int = 100) -> None:
    out = subprocess.run([sys.executable, "-m", "filler", "run", "--rate", str(rate), "--duration", str(seconds),
                          "--card-close-rate", "40", "--delete-rate", "40", "--new-customer-rate", "200"],
                         env=filler_env, capture_output=True, text=True, timeout=seconds + 120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


class BackgroundFiller:
    """The continuous filler writing while a DAG runs (a stack under load)."""

    def __init__(self, filler_env: dict[str, str], rate: int = 30) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "filler", "run", "--rate", str(rate)],
                                     env=filler_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        output, _ = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, f"filler exited {self.proc.returncode}:\n{output[-2000:]}"
        return output


def touch_every_table(pg_dsn: str) -> None:
    """One fresh change per source table, as a stack in use has: a quiet test stack's raw tables
    are otherwise older than cdc_max_freshness_seconds late in a session."""
    with psycopg2.connect(pg_dsn) as conn, conn.cursor() as cur:
        for table, key in TABLE_KEYS.items():
            cur.execute(f'UPDATE bank."{table}" SET updated_at = now() '
                        f'WHERE {key} = (SELECT max({key}) FROM bank."{table}")')


def build_ods(stack_env: dict[str, str], filler_env: dict[str, str], pg_admin_dsn: str,
              ch: Client) -> DagTestRun:
    """The filler runs, CDC catches up, then one real dbt_incremental run (nothing writes after)."""
    run_filler(filler_env, seconds=20)
    assert_raw_equals_pg(pg_admin_dsn, ch)
    started = time.time()
    run = dag_test(stack_env, "dbt_incremental", use_executor=True, timeout=1800)
    assert run.ok, f"dbt_incremental failed (rc {run.returncode}, state {run.state}) after " \
                   f"{time.time() - started:.0f}s:\n{run.tail()}"
    return run


@pytest.fixture(scope="session")
def ods_build(stack_env: dict[str, str], filler_env: dict[str, str], pg_admin_dsn: str,
              ch_admin: Client) -> DagTestRun:
    """ODS built once for the tests that only need it built (monitoring, reconciliation)."""
    return build_ods(stack_env, filler_env, pg_admin_dsn, ch_admin)


@contextlib.contextmanager
def unpaused(api: AirflowApi, dag: str) -> Iterator[None]:
    """The scheduler runs a DAG's runs only while it is unpaused. Paused again after its runs
    ended; one the scheduler created in between is failed, or it would wait forever."""
    api.set_paused(dag, False)
    try:
        yield
    finally:
        wait_for(lambda: not api.run_ids(dag, "running") and not api.run_ids(dag, "queued"), timeout=600,
                 interval=1, what=f"{dag}'s runs to end")
        api.set_paused(dag, True)
        for state in ("queued", "running"):
            for run_id in api.run_ids(dag, state):
                api.set_run_state(dag, run_id, "failed")
