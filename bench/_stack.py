"""The running local stack, as the benchmarks that drive it need it."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Iterator

import clickhouse_connect
import psycopg2

from bankcdc_stack.airflow_api import AirflowApi
from bankcdc_stack.stack import Stack


def healthy_stack(wait_seconds: float = 60) -> Stack | None:
    """The local stack once every part but the filler is healthy; else None, having said which are not.

    Waits up to `wait_seconds` for a part that is running but not healthy: right after `./stack up`
    the first runs of every DAG start at once, and the api-server's health check can time out.
    """
    stack = Stack()
    deadline = time.monotonic() + wait_seconds
    while True:
        rows = [row for row in stack.status() if not row.health.ok and row.name != "filler"]
        if not rows:
            return stack
        stopped = [row.name for row in rows if not any(row.pids)]
        if stopped or time.monotonic() > deadline:
            details = ", ".join(f"{row.name} ({row.health.detail})" for row in rows)
            print(f"error: start the stack first (./stack up); not healthy: {details}", file=sys.stderr)
            return None
        time.sleep(2)


def clickhouse_admin(env: dict[str, str], **settings: Any) -> Any:
    """A clickhouse-connect client of the stack's ClickHouse as `default`."""
    return clickhouse_connect.get_client(host=env["CLICKHOUSE_HOST"], port=int(env["CLICKHOUSE_PORT"]),
                                         username="default", password=env["CLICKHOUSE_PASSWORD"], **settings)


def filler_environment(stack: Stack) -> dict[str, str]:
    """The environment of a filler run as the stack's least-privileged bank_filler role."""
    return {**stack.ctx.env, "DB_USER": "bank_filler", "DB_PASSWORD": stack.ctx.secrets["FILLER_DB_PASSWORD"]}


def filler_postgres(filler_env: dict[str, str]) -> Any:
    """An autocommit psycopg2 connection to the bank database as filler_environment's role."""
    pg = psycopg2.connect(host=filler_env["DB_HOST"], port=filler_env["DB_PORT"], dbname=filler_env["DB_NAME"],
                          user=filler_env["DB_USER"], password=filler_env["DB_PASSWORD"])
    pg.autocommit = True
    return pg


def _busy_tasks(api: AirflowApi) -> int:
    """Task instances of any DAG that are running or queued for a worker."""
    found = api.call("GET", "/dags/~/dagRuns/~/taskInstances", params={"state": ["running", "queued"], "limit": 1})
    return int(found["total_entries"])


@contextlib.contextmanager
def filler_stopped(stack: Stack) -> Iterator[None]:
    """The stack's continuous filler stopped, and started again after if it was running."""
    was_running = stack.services["filler"].is_running()
    stack.services["filler"].stop()
    try:
        yield
    finally:
        if was_running:
            stack.services["filler"].start()


@contextlib.contextmanager
def quiet_pipeline(stack: Stack, wait_seconds: float = 600) -> Iterator[AirflowApi]:
    """The continuous filler stopped and every unpaused DAG paused, then its running and queued
    task instances waited for (up to `wait_seconds`), so a measurement has the machine to itself;
    both restored after. A run paused before its first task started keeps its deferred sensors
    parked in the triggerer until the DAG is unpaused; they use next to no CPU."""
    api = AirflowApi.for_stack(dict(stack.ctx.env), stack.ctx.secrets["AIRFLOW_ADMIN_PASSWORD"])
    with filler_stopped(stack):
        paused = [d["dag_id"] for d in api.call("GET", "/dags", params={"limit": 100, "paused": False})["dags"]]
        try:
            for dag in paused:
                api.set_paused(dag, True)
            deadline = time.monotonic() + wait_seconds
            while _busy_tasks(api) and time.monotonic() < deadline:
                time.sleep(2)
            yield api
        finally:
            for dag in paused:
                api.set_paused(dag, False)
