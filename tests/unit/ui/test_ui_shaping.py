"""bankcdc_ops.ui: what the pages make of monitoring figures and mart rows (no service needed)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from bankcdc_ops.ui import cases, lag

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def _figure(stage: str, state: str, subject: str = "s", run: str = "run-1", value: float = 1.0) -> tuple:
    return (stage, "metric", subject, value, 10.0, state, f"{subject} detail", run, T0)


def test_a_stage_takes_its_worst_figure_and_names_its_run() -> None:
    rows = [_figure("kafka", "ok", "p0"), _figure("kafka", "breached", "p1", value=99.0),
            _figure("ods", "warming"), _figure("replication_slot", "ok")]
    states = {s["stage"]: s for s in lag.stage_states(rows)}
    assert list(states) == list(lag.STAGES), "every stage, in pipeline order"
    assert states["kafka"]["state"] == "breached" and states["kafka"]["colour"] == "red"
    assert states["kafka"]["run_id"] == "run-1"
    assert [p["subject"] for p in states["kafka"]["problems"]] == ["p1"]
    assert states["ods"]["colour"] == "amber"
    assert states["replication_slot"]["colour"] == "green" and not states["replication_slot"]["problems"]
    assert states["connect"]["state"] == "unknown", "a stage with no figure is not shown as healthy"


def test_chart_series_split_by_subject_with_the_threshold() -> None:
    chart = lag.CHARTS[0]
    rows = [("b", T0, 2.0, 5.0), ("a", T0, 1.0, 5.0), ("a", T0 + dt.timedelta(minutes=1), 3.0, 5.0)]
    out = lag.chart_series(chart, rows)
    assert [s["name"] for s in out["series"]] == ["a", "b"]
    assert out["series"][0]["y"] == [1.0, 3.0] and out["points"] == 3 and out["threshold"] == 5.0
    assert lag.chart_series(chart, [])["threshold"] is None


def test_series_sql_buckets_only_long_ranges() -> None:
    assert "toStartOfInterval" not in lag.series_sql(lag.RANGES["hour"][1])
    assert "INTERVAL 1800 SECOND" in lag.series_sql(lag.RANGES["week"][1])


def test_run_link_escapes_the_run_id() -> None:
    assert lag.run_link("manual__2026-12-01T12:00:00+00:00") == \
        "../dags/cdc_monitoring/runs/manual__2026-12-01T12%3A00%3A00%2B00%3A00"


def test_queue_reads_only_known_marts() -> None:
    assert cases.queue_sql(None).count("UNION ALL") == len(cases.SCENARIOS) - 1
    assert "marts.fraud_amount_probing" in cases.queue_sql("amount_probing")
    assert "UNION" not in cases.queue_sql("amount_probing")
    with pytest.raises(ValueError, match="unknown scenario"):
        cases.queue_sql("x; DROP TABLE marts.fraud_amount_probing")


def test_a_detection_id_names_its_scenario() -> None:
    assert cases.scenario_of("rapid_withdrawals:868:2026-12-01 19:33:01.955925") == "rapid_withdrawals"
    with pytest.raises(ValueError):
        cases.scenario_of("card:1")


def test_records_are_json_ready() -> None:
    naive = dt.datetime(2026, 12, 1, 12, 0)
    out = cases.record(("at", "amount", "ids"), (naive, Decimal("12.50"), (1, 2)))
    assert out == {"at": "2026-12-01T12:00:00+00:00", "amount": "12.50", "ids": [1, 2]}
