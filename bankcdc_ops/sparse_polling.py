"""Airflow's dag-processor and triggerer with their polls of the metadata database spaced out:
`python -m bankcdc_ops.sparse_polling dag-processor|triggerer [airflow options]`.

Both components loop once a second (hard-coded in Airflow 3.3), and every loop queries the
metadata database whether or not anything happened. On this machine's two cores, with the
pipeline at 50 tx/s, the dag-processor used 2.65 and the triggerer 3.27 CPU seconds a minute,
most of it on those queries and on the callback parses below. Here each query runs at most once
per its interval:

* dag-processor: the claim of priority parse requests and the fetch of callbacks (every
  PRIORITY_AND_CALLBACKS_SECONDS), the purge of inactive DAGs' warnings (DAG_WARNINGS_PURGE_SECONDS).
  It also drops the task success callback requests Airflow files for every task a trigger ends
  (is_task_success_callback): each cost a parse of the DAG file in a new process, to do nothing;
* triggerer: the load of new triggers assigned to it (LOAD_TRIGGERS_SECONDS), the cleanup of
  triggers no task waits on (in a loop in which a trigger ended, else every
  UNUSED_TRIGGERS_CLEANUP_SECONDS).

The rest of both loops is unchanged: the triggerer hands its triggers' events on as they come,
and the dag-processor parses files on its own schedule. What waits longer: a "Reparse" asked
for in the UI and a DAG-level callback start up to 5 s later, and a deferred task's trigger
starts up to 2 s later (dbt_incremental's model tasks wait on a build that takes longer).
"""

from __future__ import annotations

import sys
import time

import attrs
from airflow.callbacks.callback_requests import BaseCallbackRequest, TaskCallbackRequest
from airflow.dag_processing.manager import DagFileProcessorManager
from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor

PRIORITY_AND_CALLBACKS_SECONDS = 5.0
DAG_WARNINGS_PURGE_SECONDS = 60.0
UNUSED_TRIGGERS_CLEANUP_SECONDS = 30.0
LOAD_TRIGGERS_SECONDS = 2.0


@attrs.define
class Every:
    """True at the first call, then once `seconds` have passed since the last True."""

    seconds: float
    _last: float = attrs.field(default=float("-inf"), init=False)

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.seconds:
            return False
        self._last = now
        return True


def is_task_success_callback(request: BaseCallbackRequest) -> bool:
    """A task's success callback request. Airflow 3.3 files one for every task a trigger ends
    successfully; the DAG processor parses the DAG file in a new process for it, then runs
    nothing (its `_execute_task_callbacks` returns at once unless `is_failure_callback`)."""
    return isinstance(request, TaskCallbackRequest) and not request.is_failure_callback


@attrs.define(kw_only=True)
class SparseDagFileProcessorManager(DagFileProcessorManager):
    _priority_due: Every = attrs.field(factory=lambda: Every(PRIORITY_AND_CALLBACKS_SECONDS), init=False)
    _callbacks_due: Every = attrs.field(factory=lambda: Every(PRIORITY_AND_CALLBACKS_SECONDS), init=False)
    _warnings_due: Every = attrs.field(factory=lambda: Every(DAG_WARNINGS_PURGE_SECONDS), init=False)

    def claim_priority_files(self):  # type: ignore[no-untyped-def]
        return super().claim_priority_files() if self._priority_due.due() else []

    def fetch_callbacks(self):  # type: ignore[no-untyped-def]
        if not self._callbacks_due.due():
            return []
        return [request for request in super().fetch_callbacks() if not is_task_success_callback(request)]

    def purge_inactive_dag_warnings(self) -> None:
        if self._warnings_due.due():
            super().purge_inactive_dag_warnings()


@attrs.define(kw_only=True)
class SparseTriggerRunnerSupervisor(TriggerRunnerSupervisor):
    _load_due: Every = attrs.field(factory=lambda: Every(LOAD_TRIGGERS_SECONDS), init=False)
    _cleanup_due: Every = attrs.field(factory=lambda: Every(UNUSED_TRIGGERS_CLEANUP_SECONDS), init=False)
    _ended_since_cleanup: bool = attrs.field(default=False, init=False)

    def load_triggers(self) -> None:
        if self._load_due.due():
            super().load_triggers()

    def handle_events(self) -> None:
        self._ended_since_cleanup |= bool(self.events)
        super().handle_events()

    def handle_failed_triggers(self) -> None:
        self._ended_since_cleanup |= bool(self.failed_triggers)
        super().handle_failed_triggers()

    def clean_unused(self) -> None:
        # a trigger that ended must be gone before the next load, or the load tries to start it again
        if self._ended_since_cleanup or self._cleanup_due.due():
            self._ended_since_cleanup = False
            super().clean_unused()


def install() -> None:
    """Make the `airflow dag-processor` and `airflow triggerer` commands build the sparse classes
    (both commands look them up in these modules' namespaces when they run)."""
    from airflow.cli.commands import dag_processor_command
    from airflow.jobs import triggerer_job_runner

    dag_processor_command.DagFileProcessorManager = SparseDagFileProcessorManager  # type: ignore[misc]
    triggerer_job_runner.TriggerRunnerSupervisor = SparseTriggerRunnerSupervisor  # type: ignore[misc]


def main(argv: list[str] | None = None) -> None:
    from airflow.__main__ import main as airflow_main

    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("dag-processor", "triggerer"):
        sys.exit("usage: python -m bankcdc_ops.sparse_polling dag-processor|triggerer [airflow options]")
    install()
    sys.argv = ["airflow", *args]
    airflow_main()


if __name__ == "__main__":
    main()
