"""Figures measured by cdc_monitoring: recorded in ClickHouse, then checked against thresholds.

A stage task measures its figures, appends every one of them to monitoring.cdc_lag,
and only then fails if one breached its threshold, so the time series has no gaps
exactly when something is wrong.
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
COLUMNS = ["ts", "stage", "metric", "subject", "value", "threshold", "breached", "detail", "dag_run_id"]


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
    ts: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    @property
    def breached(self) -> bool:
        if self.failed:
            return True
        return self.threshold is not None and (math.isnan(self.value) or self.value > self.threshold)

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
    from bankcdc_ops.connections import clickhouse

    rows = [[f.ts, f.stage, f.metric, f.subject, f.value, f.threshold, int(f.breached), f.detail, dag_run_id]
            for f in figures]
    if not rows:
        return 0
    client = clickhouse()
    try:
        client.insert(MONITORING_TABLE, rows, column_names=COLUMNS)
    finally:
        client.close()
    return len(rows)


def record_and_check(stage: str, figures: list[Figure], dag_run_id: str) -> list[str]:
    """Record every figure of a stage, log them, then raise naming each breached figure."""
    count = record(figures, dag_run_id)
    for figure in figures:
        log.info("%s%s", "BREACH " if figure.breached else "ok     ", figure.describe())
    log.info("%s: recorded %d figures in %s", stage, count, MONITORING_TABLE)
    breaches = [f.describe() for f in figures if f.breached]
    if breaches:
        raise ThresholdExceededError(f"{stage}: {len(breaches)} threshold(s) exceeded: " + "; ".join(breaches))
    return [f.describe() for f in figures]
