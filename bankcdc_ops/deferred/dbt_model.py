"""One dbt_incremental task per dbt model: it ends as the run's single `dbt build` reports the model.

The build task publishes every model's result (with its tests) to the XCom `dbt_models` when
dbt is done (bankcdc_ops.dbt_build). Every model task of a run waits in the triggerer on one
shared poll of the build task's state, then one read of that XCom: a run costs one
execution-API read a second however many models the project has.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TaskFailedEvent, TaskSkippedEvent, TaskSuccessEvent

from bankcdc_ops.dbt_build import MODELS_XCOM_KEY
from bankcdc_ops.deferred.base import TriggererTask

BUILD_TASK_ID = "dbt_build"
# the build task's states after which it publishes nothing more in this try
BUILD_ENDED = {"success", "failed", "skipped", "upstream_failed", "removed"}


@dataclass
class BuildSnapshot:
    build_state: str | None
    models: dict[str, dict[str, Any]] = field(default_factory=dict)   # read once the build ended
    fetched_at: float = field(default_factory=time.monotonic)


class _RunWatch:
    """One poll per (dag, run, build task) for every model task of the run in this triggerer:
    the build task's state while it runs, then its published results once."""

    _cache: "OrderedDict[tuple[str, str, str], BuildSnapshot]" = OrderedDict()
    _locks: dict[tuple[str, str, str], asyncio.Lock] = {}
    MAX_RUNS = 64

    @classmethod
    async def snapshot(cls, dag_id: str, run_id: str, build_task_id: str, max_age: float) -> BuildSnapshot:
        key = (dag_id, run_id, build_task_id)
        lock = cls._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = cls._cache.get(key)
            stale = cached is None or (cached.build_state not in BUILD_ENDED
                                       and time.monotonic() - cached.fetched_at >= max_age)
            if stale:
                cached = await asyncio.to_thread(_fetch, dag_id, run_id, build_task_id)
                cls._cache[key] = cached
                cls._cache.move_to_end(key)
                while len(cls._cache) > cls.MAX_RUNS:
                    old, _ = cls._cache.popitem(last=False)
                    cls._locks.pop(old, None)
            return cached


def _fetch(dag_id: str, run_id: str, build_task_id: str) -> BuildSnapshot:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
    from airflow.sdk.execution_time.xcom import XCom

    states = RuntimeTaskInstance.get_task_states(dag_id=dag_id, task_ids=[build_task_id], run_ids=[run_id])
    state = states.get(run_id, {}).get(build_task_id)
    snapshot = BuildSnapshot(str(state) if state is not None else None)
    if snapshot.build_state in BUILD_ENDED:
        snapshot.models = XCom.get_one(run_id=run_id, key=MODELS_XCOM_KEY, task_id=build_task_id, dag_id=dag_id,
                                       map_index=-1) or {}
    return snapshot


class DbtModelTrigger(BaseTrigger):
    """Ends the model's task with its result from the run's build (see the module docstring)."""

    def __init__(self, model: str, build_task_id: str = BUILD_TASK_ID, poll_seconds: float = 1.0,
                 dag_id: str | None = None, run_id: str | None = None) -> None:
        super().__init__()
        self.model, self.build_task_id, self.poll_seconds = model, build_task_id, poll_seconds
        self.dag_id, self.run_id = dag_id, run_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{__name__}.DbtModelTrigger",
                {"model": self.model, "build_task_id": self.build_task_id, "poll_seconds": self.poll_seconds,
                 "dag_id": self.dag_id, "run_id": self.run_id})

    def _run_ids(self) -> tuple[str, str]:
        ti = getattr(self, "task_instance", None)
        return self.dag_id or ti.dag_id, self.run_id or ti.run_id

    async def run(self) -> AsyncIterator[Any]:
        dag_id, run_id = self._run_ids()
        while True:
            snapshot = await _RunWatch.snapshot(dag_id, run_id, self.build_task_id, self.poll_seconds)
            if snapshot.build_state in BUILD_ENDED:
                break
            await asyncio.sleep(self.poll_seconds)
        result = snapshot.models.get(self.model)
        if result and result["status"] == "success":
            self.log.info("dbt model %s: %s", self.model, result["message"])
            yield TaskSuccessEvent()
        elif result:
            self.log.error("%s", result["message"])
            yield TaskFailedEvent()
        elif snapshot.build_state == "skipped":
            self.log.info("%s skipped the run (warming up: see its log), so %s was not built",
                          self.build_task_id, self.model)
            yield TaskSkippedEvent()
        else:
            self.log.error("%s ended %s without a result for model %s: see the %s log",
                           self.build_task_id, snapshot.build_state, self.model, self.build_task_id)
            yield TaskFailedEvent()


class DbtModelTask(TriggererTask):
    """The Airflow task of one dbt model of the run's build."""

    ui_color = "#e6f1fb"

    def __init__(self, *, model: str, build_task_id: str = BUILD_TASK_ID, **kwargs: Any) -> None:
        self.model, self.build_task_id = model, build_task_id
        super().__init__(**kwargs)

    def trigger(self, context: dict[str, Any] | None = None) -> DbtModelTrigger:
        if context is None:
            return DbtModelTrigger(self.model, self.build_task_id)
        return DbtModelTrigger(self.model, self.build_task_id, dag_id=context["dag"].dag_id, run_id=context["run_id"])
