"""One cdc_monitoring task per stage, run in the triggerer: measure, record, then pass or fail.

The stage's probe (bankcdc_ops.probes, blocking client libraries) runs in a thread of the
triggerer; its figures go to monitoring.cdc_lag first, then the task fails naming every figure
over its threshold, or passes.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TaskFailedEvent, TaskSuccessEvent

from bankcdc_ops.deferred.base import TriggererTask


def measure_and_record(stage: str, dag_run_id: str) -> list[str]:
    """The stage's figures, recorded and logged; returns the breached ones, described."""
    from bankcdc_ops import monitoring, probes

    return monitoring.record_and_report(stage, probes.STAGE_PROBES[stage](), dag_run_id)


class StageCheckTrigger(BaseTrigger):
    def __init__(self, stage: str, run_id: str | None = None) -> None:
        super().__init__()
        self.stage, self.run_id = stage, run_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{__name__}.StageCheckTrigger", {"stage": self.stage, "run_id": self.run_id}

    async def run(self) -> AsyncIterator[Any]:
        from bankcdc_ops.monitoring import breach_message

        run_id = self.run_id or self.task_instance.run_id
        try:
            breaches = await asyncio.to_thread(measure_and_record, self.stage, run_id)
        except Exception as exc:  # noqa: BLE001 - whatever broke the probe fails the task, logged
            self.log.error("%s: could not measure or record: %s: %s", self.stage, type(exc).__name__, exc)
            yield TaskFailedEvent()
            return
        if breaches:
            self.log.error("%s", breach_message(self.stage, breaches))
            yield TaskFailedEvent()
        else:
            yield TaskSuccessEvent()


class StageCheck(TriggererTask):
    """cdc_monitoring's task for one stage (see the module docstring)."""

    ui_color = "#eef6ea"

    def __init__(self, *, stage: str, **kwargs: Any) -> None:
        self.stage = stage
        super().__init__(**kwargs)

    def trigger(self, context: dict[str, Any] | None = None) -> StageCheckTrigger:
        return StageCheckTrigger(self.stage, context["run_id"] if context else None)
