"""bankcdc_ops.sparse_polling: the dag-processor's and triggerer's metadata-DB polls run at most
once per interval, and the Airflow commands build the sparse classes once installed."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from airflow.callbacks.callback_requests import TaskCallbackRequest
from airflow.dag_processing.manager import DagFileProcessorManager
from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor

from bankcdc_ops import sparse_polling
from bankcdc_ops.sparse_polling import Every, SparseDagFileProcessorManager, SparseTriggerRunnerSupervisor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(sparse_polling.time, "monotonic", clock)
    return clock


def test_every_is_due_first_then_once_per_interval(clock: Clock) -> None:
    every = Every(5.0)
    assert every.due()
    clock.now += 4.9
    assert not every.due()
    clock.now += 0.1
    assert every.due()
    assert not every.due()


def _count_calls(monkeypatch: pytest.MonkeyPatch, cls: type, name: str, result: Any = None) -> list[int]:
    calls: list[int] = []

    def counted(self: Any) -> Any:
        calls.append(1)
        return result

    monkeypatch.setattr(cls, name, counted)
    return calls


@pytest.mark.parametrize(("method", "interval"), [
    ("claim_priority_files", sparse_polling.PRIORITY_AND_CALLBACKS_SECONDS),
    ("fetch_callbacks", sparse_polling.PRIORITY_AND_CALLBACKS_SECONDS),
    ("purge_inactive_dag_warnings", sparse_polling.DAG_WARNINGS_PURGE_SECONDS),
])
def test_dag_processor_polls_once_per_interval(monkeypatch: pytest.MonkeyPatch, clock: Clock, method: str,
                                               interval: float) -> None:
    calls = _count_calls(monkeypatch, DagFileProcessorManager, method, result=[])
    manager = SparseDagFileProcessorManager(max_runs=1)
    for _ in range(int(interval) * 3):  # one loop a second for three intervals
        getattr(manager, method)()
        clock.now += 1.0
    assert len(calls) == 3


def _supervisor() -> SparseTriggerRunnerSupervisor:
    """Built without its subprocess: only the fields the sparse methods read."""
    supervisor = object.__new__(SparseTriggerRunnerSupervisor)
    for name, value in (("_load_due", Every(sparse_polling.LOAD_TRIGGERS_SECONDS)),
                        ("_cleanup_due", Every(sparse_polling.UNUSED_TRIGGERS_CLEANUP_SECONDS)),
                        ("_ended_since_cleanup", False), ("events", deque()), ("failed_triggers", deque())):
        object.__setattr__(supervisor, name, value)
    return supervisor


@pytest.mark.parametrize(("method", "interval"), [
    ("load_triggers", sparse_polling.LOAD_TRIGGERS_SECONDS),
    ("clean_unused", sparse_polling.UNUSED_TRIGGERS_CLEANUP_SECONDS),
])
def test_triggerer_polls_once_per_interval(monkeypatch: pytest.MonkeyPatch, clock: Clock, method: str,
                                           interval: float) -> None:
    calls = _count_calls(monkeypatch, TriggerRunnerSupervisor, method)
    supervisor = _supervisor()
    for _ in range(int(interval) * 3):
        getattr(supervisor, method)()
        clock.now += 1.0
    assert len(calls) == 3


def test_install_makes_the_commands_build_the_sparse_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.cli.commands import dag_processor_command
    from airflow.jobs import triggerer_job_runner

    monkeypatch.setattr(dag_processor_command, "DagFileProcessorManager", DagFileProcessorManager)
    monkeypatch.setattr(triggerer_job_runner, "TriggerRunnerSupervisor", TriggerRunnerSupervisor)
    sparse_polling.install()
    assert dag_processor_command.DagFileProcessorManager is SparseDagFileProcessorManager
    assert triggerer_job_runner.TriggerRunnerSupervisor is SparseTriggerRunnerSupervisor


def _task_callback(state: str) -> TaskCallbackRequest:
    ti = {"id": "01a234c6-002a-7be0-b862-fdf242b88d01", "task_id": "kafka", "dag_id": "cdc_monitoring",
          "run_id": "scheduled__1", "try_number": 1, "map_index": -1, "pool_slots": 1, "queue": "default",
          "priority_weight": 1, "dag_version_id": "01a234c6-002a-7be0-b862-fdf242b88d02"}
    return TaskCallbackRequest(filepath="cdc_monitoring.py", bundle_name="dags-folder", bundle_version=None,
                               ti=ti, task_callback_type=state)


def test_task_success_callbacks_are_dropped_failure_callbacks_kept(monkeypatch: pytest.MonkeyPatch,
                                                                   clock: Clock) -> None:
    success, failure, retry = _task_callback("success"), _task_callback("failed"), _task_callback("up_for_retry")
    monkeypatch.setattr(DagFileProcessorManager, "fetch_callbacks", lambda self: [success, failure, retry])
    assert SparseDagFileProcessorManager(max_runs=1).fetch_callbacks() == [failure, retry]


def _end_of_loop(supervisor: SparseTriggerRunnerSupervisor) -> None:
    """What TriggerRunnerSupervisor.run_once does after servicing its subprocess, in order."""
    supervisor.handle_events()
    supervisor.handle_failed_triggers()
    supervisor.clean_unused()


@pytest.mark.parametrize("queue", ["events", "failed_triggers"])
def test_unused_triggers_are_cleaned_in_a_loop_where_a_trigger_ended(monkeypatch: pytest.MonkeyPatch, clock: Clock,
                                                                    queue: str) -> None:
    """Else the next load finds the ended trigger's row and tries to start it again."""
    cleanups = _count_calls(monkeypatch, TriggerRunnerSupervisor, "clean_unused")
    _count_calls(monkeypatch, TriggerRunnerSupervisor, "handle_events")
    _count_calls(monkeypatch, TriggerRunnerSupervisor, "handle_failed_triggers")
    supervisor = _supervisor()
    supervisor.clean_unused()  # the first is due
    clock.now += 1.0
    _end_of_loop(supervisor)
    assert len(cleanups) == 1, "nothing ended: no cleanup before the interval"
    getattr(supervisor, queue).append(("trigger id", "event"))
    _end_of_loop(supervisor)
    assert len(cleanups) == 2
