"""The base of the triggerer-resident tasks (see the package docstring)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, StartTriggerArgs

from bankcdc_ops.errors import OpsError

SUCCESS, FAILED, SKIPPED = "success", "failed", "skipped"


class TriggeredTaskFailed(OpsError):
    """A triggerer-resident task ran in a worker (`airflow dags test`) and its trigger failed it."""


class TriggererTask(BaseOperator):
    """Starts directly in the triggerer with `trigger()`'s trigger, which ends the task itself.

    Run where start_from_trigger does not apply (`airflow dags test` runs `execute` in-process),
    the task defers to the same trigger; the trigger's end event then resumes `execute_complete`,
    which ends the task the same way the triggerer would have."""

    start_from_trigger = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        trigger = self.trigger()
        classpath, trigger_kwargs = trigger.serialize()
        self.start_trigger_args = StartTriggerArgs(trigger_cls=classpath, trigger_kwargs=trigger_kwargs,
                                                   next_method="execute_complete", next_kwargs=None,
                                                   timeout=self.execution_timeout)

    def trigger(self, context: dict[str, Any] | None = None) -> BaseTrigger:
        raise NotImplementedError

    def execute(self, context: dict[str, Any]) -> None:
        self.defer(trigger=self.trigger(context), method_name="execute_complete", timeout=self.execution_timeout)

    def execute_complete(self, context: dict[str, Any], event: Any = None) -> None:
        state = str(event.get("task_instance_state", event) if isinstance(event, dict) else event)
        if state.endswith(FAILED):
            raise TriggeredTaskFailed(f"{self.task_id} failed: see the trigger's log lines above")
        if state.endswith(SKIPPED):
            from airflow.exceptions import AirflowSkipException

            raise AirflowSkipException(f"{self.task_id} skipped: see the trigger's log lines above")
