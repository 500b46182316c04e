"""Figures measured by cdc_monitoring: recorded in ClickHouse, then checked against thresholds.

A stage task measures its figures, appends every one of them to monitoring.cdc_lag,
and only then fails if one breached its threshold, so the time series has no gaps
exactly when something is wrong. A figure can also be *warming*: not yet measurable because
the pipeline has just started (no ODS build yet, say); it is recorded and shown, never a breach.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from typing import Iterable

from bankcdc_ops.errors import ThresholdExceededError
from bankcdc_ops.settings import MONITORING_TABLE

log = logging.getLogger(__name__)
COLUMNS = ["ts", "stage", "metric", "subject", "value", "threshold", "breached", "detail", "dag_run_id", "state"]
OK, WARMING, BREACHED = "ok", "warming", "breached"


@dataclass(frozen=True)
class Figure:
    stage: str
    metric: str
    subject: str
    value: float
    threshold: float | None = None     # None: recorded, not checked
    variable: str = ""                 # the Airflow Variable holding the threshold
    detail: str = ""
    failed: bool = False               # a state check that failed (connector not RUNNING, slot lost, ...)
    warming: bool = False              # not measurable yet, soon after start: shown, never a breach
    ts: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    @property
    def breached(self) -> bool:
        if self.failed:
            return True
        if self.warming:
            return False
        return self.threshold is not None and (math.isnan(self.value) or self.value > self.threshold)

    @property
    def state(self) -> str:
        return BREACHED if self.breached else WARMING if self.warming else OK

    def describe(self) -> str:
        text = f"[{self.stage}] {self.subject} {self.metric}={_fmt(self.value)}"
        if self.threshold is not None and not self.failed:
            limit = _fmt(self.threshold) + (f", Variable {self.variable}" if self.variable else "")
            text += f" > {limit}" if self.breached else f" (limit {limit})"
        if self.detail:
            text += f": {self.detail}"
        return text


def _fmt(value: float) -> str:
    if math.isinf(value) or math.isnan(value):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 100 or value == int(value) else f"{value:.3f}"


def record(figures: Iterable[Figure], dag_run_id: str) -> int:
    """Append figures to monitoring.cdc_lag; returns how many."""
    from bankcdc_ops.connections import reused_clickhouse

    rows = [[f.ts, f.stage, f.metric, f.subject, f.value, f.threshold, int(f.breached), f.detail, dag_run_id,
             f.state] for f in figures]
    if not rows:
        return 0
    with reused_clickhouse() as client:
        client.insert(MONITORING_TABLE, rows, column_names=COLUMNS)
    return len(rows)


def record_and_report(stage: str, figures: list[Figure], dag_run_id: str) -> list[str]:
    """Record every figure of a stage and log them, in one message (a task run in the triggerer
    wakes its supervisor once per log message); returns the breached ones, described."""
    count = record(figures, dag_run_id)
    lines = [f"  {figure.state.upper():8s} {figure.describe()}" for figure in figures]
    log.info("%s: %d figures recorded in %s\n%s", stage, count, MONITORING_TABLE, "\n".join(lines))
    return [f.describe() for f in figures if f.breached]


def breach_message(stage: str, breaches: list[str]) -> str:
    return f"{stage}: {len(breaches)} threshold(s) exceeded: " + "; ".join(breaches)


def record_and_check(stage: str, figures: list[Figure], dag_run_id: str) -> list[str]:
    """Record and log every figure of a stage, then raise naming each breached figure."""
    breaches = record_and_report(stage, figures, dag_run_id)
    if breaches:
        raise ThresholdExceededError(breach_message(stage, breaches))
    return [f.describe() for f in figures]
