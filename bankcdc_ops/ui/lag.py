"""What the CDC lag page shows: each stage's state as cdc_monitoring last judged it, and a chart
per stage figure over a chosen range, both from monitoring.cdc_lag."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable

from bankcdc_ops.monitoring import BREACHED, OK, WARMING
from bankcdc_ops.settings import MONITORING_TABLE
from bankcdc_ops.ui.values import jsonable, plot_time

MONITORING_DAG = "cdc_monitoring"
# the pipeline's stages in the order a change crosses them, as cdc_monitoring names them
STAGES = {
    "replication_slot": "Debezium slot",
    "connect": "Kafka Connect",
    "kafka": "Kafka",
    "clickhouse": "ClickHouse raw",
    "end_to_end": "End to end",
    "ods": "ODS",
}
COLOURS = {OK: "green", WARMING: "amber", BREACHED: "red"}
_SEVERITY = {OK: 0, WARMING: 1, BREACHED: 2}


@dataclass(frozen=True)
class Chart:
    key: str
    stage: str
    metric: str
    title: str
    unit: str


CHARTS = (
    Chart("slot_lag", "replication_slot", "lag_bytes", "Debezium replication slot lag", "bytes"),
    Chart("consumer_lag", "kafka", "consumer_lag_messages", "Kafka consumer lag", "messages"),
    Chart("raw_freshness", "clickhouse", "freshness_seconds", "Raw freshness (age of the newest change)", "s"),
    Chart("heartbeat", "end_to_end", "heartbeat_age_seconds", "End-to-end heartbeat age", "s"),
    Chart("ods_build_age", "ods", "seconds_since_build", "ODS build age", "s"),
    Chart("source_instant_age", "ods", "source_instant_age_seconds", "Age of the last run's source instant T", "s"),
)

# range -> (how far back, bucket seconds: 0 keeps every figure, else the maximum per bucket)
RANGES = {"hour": (dt.timedelta(hours=1), 0), "day": (dt.timedelta(days=1), 300),
          "week": (dt.timedelta(days=7), 1800)}

LATEST_FIGURES = f"""
    WITH latest AS (
        SELECT stage, argMax(dag_run_id, ts) AS run, max(ts) AS newest
        FROM {MONITORING_TABLE} WHERE ts >= now64(3) - INTERVAL 1 DAY GROUP BY stage
    )
    SELECT f.stage, f.metric, f.subject, f.value, f.threshold, f.state, f.detail, f.dag_run_id, f.ts
    FROM {MONITORING_TABLE} AS f
    INNER JOIN latest ON f.stage = latest.stage AND f.dag_run_id = latest.run
    WHERE f.ts >= now64(3) - INTERVAL 1 DAY
    ORDER BY f.stage, f.metric, f.subject
"""

def series_sql(bucket_s: int) -> str:
    """A chart's figures per subject since {since}: every one, or the maximum per bucket."""
    at = "ts" if bucket_s == 0 else f"toDateTime64(toStartOfInterval(ts, INTERVAL {int(bucket_s)} SECOND), 3, 'UTC')"
    return f"""
        SELECT subject, {at} AS at, max(value) AS value, max(threshold) AS threshold
        FROM {MONITORING_TABLE}
        WHERE stage = {{stage:String}} AND metric = {{metric:String}} AND ts >= {{since:DateTime64(3, 'UTC')}}
        GROUP BY subject, at
        ORDER BY subject, at
    """


def worst(states: Iterable[str]) -> str:
    return max(states, key=lambda s: _SEVERITY.get(s, 0), default=OK)


def stage_states(rows: Iterable[tuple]) -> list[dict[str, Any]]:
    """One entry per stage, in pipeline order, from its latest cdc_monitoring run's figures
    (rows of LATEST_FIGURES): the worst state among them, the run, and the figures not ok."""
    by_stage: dict[str, list[tuple]] = {}
    for row in rows:
        by_stage.setdefault(row[0], []).append(row)
    out = []
    for stage, label in STAGES.items():
        figures = by_stage.get(stage, [])
        if not figures:
            out.append({"stage": stage, "label": label, "state": "unknown", "colour": "grey", "run_id": None,
                        "as_of": None, "problems": [], "detail": "no figure from cdc_monitoring in the last day"})
            continue
        state = worst(f[5] for f in figures)
        problems = [{"metric": f[1], "subject": f[2], "value": f[3], "threshold": f[4], "state": f[5],
                     "detail": f[6]} for f in figures if f[5] != OK]
        out.append({"stage": stage, "label": label, "state": state, "colour": COLOURS.get(state, "grey"),
                    "run_id": figures[0][7], "as_of": jsonable(max(f[8] for f in figures)),
                    "problems": problems,
                    "detail": f"{len(figures)} figures, {len(problems)} not ok"})
    return out


def chart_series(chart: Chart, rows: Iterable[tuple]) -> dict[str, Any]:
    """A chart's series per subject, and the threshold recorded with its figures (one Airflow
    Variable per metric), from series_sql rows."""
    series: dict[str, dict[str, list]] = {}
    threshold = None
    for subject, at, value, limit in rows:
        points = series.setdefault(subject, {"x": [], "y": []})
        points["x"].append(plot_time(at))
        points["y"].append(value)
        if limit is not None:
            threshold = limit
    return {"key": chart.key, "stage": chart.stage, "metric": chart.metric, "title": chart.title,
            "unit": chart.unit, "threshold": threshold,
            "series": [{"name": name, **points} for name, points in sorted(series.items())],
            "points": sum(len(p["x"]) for p in series.values())}


def run_link(run_id: str) -> str:
    """The Airflow UI page of a cdc_monitoring run, relative to the plugin's pages (which sit one
    level under Airflow's base URL: /bankcdc/lag)."""
    from urllib.parse import quote

    return f"../dags/{MONITORING_DAG}/runs/{quote(run_id, safe='')}"
