"""LocalExecutor whose task processes start with the tasks' heavy imports already done.

A LocalExecutor task process is forked from one of the executor's worker processes, and the
workers are forked from the scheduler when the executor starts. Every dbt_incremental build
imported dbt first, 3 to 6 s of a run on this machine's two cores. Importing the modules the
tasks need before the workers are forked lets every task process inherit them, at a cost paid
once per scheduler start. The same holds for the caches dbt fills at its first invocation in a
process: the executor runs one `dbt parse` before forking.
"""

from __future__ import annotations

import importlib
import logging
import time

from airflow.executors.local_executor import LocalExecutor

log = logging.getLogger(__name__)

PRELOAD = (
    "dbt.cli.main",
    "dbt.adapters.clickhouse",
    "clickhouse_connect",
    "pandas",  # clickhouse-connect's first insert imports it to tell DataFrames apart: 1.7 s
    "airflow.providers.clickhousedb.hooks.clickhouse",
    "confluent_kafka.admin",
    "psycopg2",
    "requests",
    "bankcdc_ops.dbt",
    "bankcdc_ops.dbt_build",
    "bankcdc_ops.source_instant",
    "bankcdc_ops.probes",
)


def preload(modules: tuple[str, ...] = PRELOAD) -> list[str]:
    """Import `modules`; returns those that failed (logged, never fatal: a task would import it)."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a module a task would import itself, and fail there
            log.warning("not preloaded for task processes: %s (%s: %s)", name, type(exc).__name__, exc)
            failed.append(name)
    return failed


def warm_up_dbt() -> None:
    """One `dbt parse` (bankcdc_ops.dbt_build.warm_up) with the clickhouse_dwh connection's profile
    variables, so it parses as warm as the builds will. Logged, never fatal: a build would only
    start cold."""
    started = time.monotonic()
    try:
        from airflow.models.connection import Connection

        from bankcdc_ops.dbt import profile_environment
        from bankcdc_ops.dbt_build import warm_up

        parsed = warm_up(profile_environment(get_connection=Connection.get_connection_from_secrets))
    except Exception as exc:  # noqa: BLE001 - a warm-up: the builds parse for themselves
        log.warning("dbt not warmed up for task processes (%s: %s)", type(exc).__name__, exc)
        return
    log.info("dbt %s for task processes in %.1f s", "warmed up" if parsed else "warm-up parse failed",
             time.monotonic() - started)


class WarmLocalExecutor(LocalExecutor):
    """LocalExecutor; see the module docstring."""

    def start(self) -> None:
        started = time.monotonic()
        failed = preload()
        log.info("preloaded %d modules for task processes in %.1f s", len(PRELOAD) - len(failed),
                 time.monotonic() - started)
        warm_up_dbt()
        super().start()
