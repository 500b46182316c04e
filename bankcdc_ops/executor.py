"""LocalExecutor whose task processes start with the tasks' heavy imports already done.

A LocalExecutor task process is forked from one of the executor's worker processes, and the
workers are forked from the scheduler when the executor starts. Every dbt_incremental build
imported dbt first, 3 to 6 s of a run on this machine's two cores. Importing the modules the
tasks need before the workers are forked lets every task process inherit them, at a cost paid
once per scheduler start.
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


class WarmLocalExecutor(LocalExecutor):
    """LocalExecutor; see the module docstring."""

    def start(self) -> None:
        started = time.monotonic()
        failed = preload()
        log.info("preloaded %d modules for task processes in %.1f s", len(PRELOAD) - len(failed),
                 time.monotonic() - started)
        super().start()
