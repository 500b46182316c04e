"""How fresh ODS and the fraud marts are, and what Airflow costs, as JSON.

Runs against the local stack started by `./stack up`, with dbt_incremental and cdc_monitoring
scheduled as they are for a user (the bench unpauses them and restores their state after; the
stack's own filler is stopped for the run and started again after). Two phases, each a filler
run at a fixed rate (a warm-up, then the measured window):

* loaded: --rate transactions/s (default 2500) for --seconds (default 600);
* quiet:  --quiet-rate (default 50, the stack's own rate) for --quiet-seconds (default 300).

Per phase:
* commit to visible in ods.ods_transactions and in each fraud mart, p50/p95/p99. A change is
  visible when the dbt_incremental run whose source instant T covers its commit has finished
  (every model of a run reads the source as of T, bankcdc_ops.source_instant). Transactions:
  every insert committed in the window; fraud cases: their last transaction's commit.
  `verified` counts transactions of the window found in ods_transactions after the phase.
* dbt_incremental runs: wall time p50/p95 (DAG run start to end), dbt's own seconds, and
  where the wall time goes (run_phases).
* CPU seconds per minute of every service; Airflow's own processes (scheduler, api-server,
  dag-processor, triggerer, task supervisors) apart from the dbt_build task processes, and the
  dbt build's own CPU per run (inside that task process).

    ./stack up && ./stack bench analytics_freshness                  # about 20 minutes
    ./stack bench analytics_freshness --seconds 120 --quiet-seconds 120
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from typing import Any

import _proc_cpu  # bench/_proc_cpu.py and bench/_stack.py: this script's folder is first on sys.path
from _stack import clickhouse_admin, filler_environment, filler_stopped, healthy_stack

from bankcdc_stack.airflow_api import AirflowApi
from bankcdc_stack.stack import Stack

DAGS = ("dbt_incremental", "cdc_monitoring")
MARTS = ("fraud_rapid_withdrawals", "fraud_closed_card_attempts", "fraud_amount_probing")
SERVICES = ("postgres", "kafka", "connect", "consumer", "clickhouse", "airflow")
UTC = dt.timezone.utc


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr)


def parse_time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def service_roots(stack: Stack) -> dict[str, list[int]]:
    return {name: [pid for proc in stack.services[name].processes() if (pid := proc.pid())]
            for name in SERVICES}


BUILD_FIELDS = ("run_id", "status", "source_instant", "dbt_seconds", "cpu_seconds", "task_cpu_seconds",
                "started_at", "finished_at")


def builds(ch: Any, since: dt.datetime) -> list[dict[str, Any]]:
    rows = ch.query(f"SELECT dag_run_id, {', '.join(BUILD_FIELDS[1:])} "
                    "FROM monitoring.ods_build WHERE finished_at >= {s:DateTime64(6, 'UTC')} ORDER BY finished_at",
                    parameters={"s": since}).result_rows
    return [dict(zip(BUILD_FIELDS, r)) for r in rows]


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def run_phases(api: AirflowApi, runs: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Where a run's wall time goes, p50 per phase in seconds: the scheduler starting the build
    task, the task process starting (interpreter, task runner, DAG file) until the build's own
    code runs, choosing T and recording the build, dbt itself, the build task ending, the model
    tasks ending in the triggerer, and the scheduler closing the run."""
    phases: dict[str, list[float]] = {}
    for run in runs:
        build = by_id.get(run["dag_run_id"])
        tis = {ti["task_id"]: ti for ti in api.task_instances("dbt_incremental", run["dag_run_id"])}
        task = tis.get("dbt_build")
        ends = [parse_time(ti["end_date"]) for ti in tis.values() if ti.get("end_date")]
        if not build or not task or not task.get("start_date") or not task.get("end_date") or not ends:
            continue
        run_start, run_end = parse_time(run["start_date"]), parse_time(run["end_date"])
        task_start, task_end = parse_time(task["start_date"]), parse_time(task["end_date"])
        code_start, recorded = _utc(build["started_at"]), _utc(build["finished_at"])
        spans = {"scheduler_to_build_task": task_start - run_start,
                 "task_process_start": code_start - task_start,
                 "source_instant_and_record": recorded - code_start - dt.timedelta(seconds=build["dbt_seconds"]),
                 "dbt_build": dt.timedelta(seconds=build["dbt_seconds"]),
                 "build_task_end": task_end - recorded,
                 "model_tasks_end": max(ends) - task_end,
                 "scheduler_closes_run": run_end - max(ends)}
        for name, span in spans.items():
            phases.setdefault(name, []).append(span.total_seconds())
    return {f"{name}_p50_s": percentile(values, 0.5) for name, values in phases.items()}


def visibility(api: AirflowApi, ch: Any, since: dt.datetime) -> tuple[list[float], list[float], list[dict]]:
    """Per successful run since `since`, ordered by T: (T, the earliest end of a run with at least
    that T), as epoch seconds; and the runs as the API reports them."""
    by_id = {b["run_id"]: b for b in builds(ch, since - dt.timedelta(minutes=2)) if b["status"] == "success"}
    runs = [r for r in api.runs("dbt_incremental", limit=200, start_date_gte=(since - dt.timedelta(minutes=2))
                                .isoformat()) if r["state"] == "success" and r["dag_run_id"] in by_id]
    pairs = sorted((by_id[r["dag_run_id"]]["source_instant"].replace(tzinfo=UTC).timestamp(),
                    parse_time(r["end_date"]).timestamp()) for r in runs)
    instants, ends = [p[0] for p in pairs], [p[1] for p in pairs]
    for i in range(len(ends) - 2, -1, -1):      # a later T may have finished sooner: take the earliest
        ends[i] = min(ends[i], ends[i + 1])
    return instants, ends, runs


LAG = """
    SELECT count(), countIf(i > 0),
           quantilesExactIf(0.5, 0.95, 0.99)(arrayElement({ends:Array(Float64)}, i) - toFloat64(c), i > 0),
           maxIf(arrayElement({ends:Array(Float64)}, i) - toFloat64(c), i > 0)
    FROM (SELECT toUnixTimestamp64Milli(c_ts) / 1000 AS c,
                 arrayFirstIndex(t -> t >= toUnixTimestamp64Milli(c_ts) / 1000, {instants:Array(Float64)}) AS i
          FROM (__SOURCE__))
"""

TXN_COMMITS = ("SELECT _source_ts AS c_ts FROM raw.`transaction` WHERE _op = 'c' "
               "AND _source_ts BETWEEN {a:DateTime64(3, 'UTC')} AND {b:DateTime64(3, 'UTC')}")

CASE_COMMITS = """
    SELECT max(t._source_ts) AS c_ts
    FROM (SELECT detection_id, arrayJoin(transaction_ids) AS transaction_id FROM marts.`__MART__`
          WHERE window_end BETWEEN {a:DateTime64(6, 'UTC')} AND {b:DateTime64(6, 'UTC')}) AS cases
    INNER JOIN (SELECT transaction_id, _source_ts FROM raw.`transaction` WHERE _op IN ('c', 'r')) AS t
        ON t.transaction_id = cases.transaction_id
    GROUP BY cases.detection_id
    HAVING c_ts BETWEEN {a:DateTime64(3, 'UTC')} AND {b:DateTime64(3, 'UTC')}
"""


def lag(ch: Any, source: str, instants: list[float], ends: list[float], a: dt.datetime, b: dt.datetime) -> dict:
    total, covered, q, worst = ch.query(LAG.replace("__SOURCE__", source), parameters={
        "instants": instants, "ends": ends, "a": a, "b": b}).result_rows[0]
    return {"changes": total, "visible": covered, "p50_s": round(q[0], 2), "p95_s": round(q[1], 2),
            "p99_s": round(q[2], 2), "max_s": round(worst, 2)}


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)


def run_phase(stack: Stack, api: AirflowApi, ch: Any, filler_env: dict[str, str], rate: int, seconds: int,
              warmup: int) -> dict[str, Any]:
    log(f"phase: {rate} tx/s, {warmup} s warm-up then {seconds} s measured")
    filler = subprocess.Popen([sys.executable, "-m", "filler", "run", "--rate", str(rate)], env=filler_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(warmup)
        roots = {**service_roots(stack), "filler": [filler.pid]}
        start, before = dt.datetime.now(UTC), _proc_cpu.snapshot()
        time.sleep(seconds)
        end, after = dt.datetime.now(UTC), _proc_cpu.snapshot()
    finally:
        filler.terminate()
        filler.wait(timeout=60)
    minutes = (end - start).total_seconds() / 60
    cpu = {}
    for name, pids in roots.items():
        own, tasks = _proc_cpu.usage(before, after, pids)
        cpu[name] = round(own / minutes, 2)
        if name == "airflow":
            cpu["dbt_build_task_processes"] = round(tasks / minutes, 2)
    log("waiting for a dbt_incremental run whose source instant covers the window")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = [b for b in builds(ch, end) if b["status"] == "success"
                and b["source_instant"].replace(tzinfo=UTC) >= end]
        if done:
            break
        time.sleep(5)
    time.sleep(10)   # that run's model tasks end a few seconds after its build
    instants, ends, runs = visibility(api, ch, start)
    in_window = [r for r in runs if start <= parse_time(r["start_date"]) <= end]
    walls = [(parse_time(r["end_date"]) - parse_time(r["start_date"])).total_seconds() for r in in_window]
    window_builds = [b for b in builds(ch, start) if b["run_id"] in {r["dag_run_id"] for r in in_window}]
    failed = [b["run_id"] for b in builds(ch, start) if b["status"] != "success"]
    a, b = start, end
    visible = {"ods_transactions": lag(ch, TXN_COMMITS, instants, ends, a, b)}
    for mart in MARTS:
        visible[mart] = lag(ch, CASE_COMMITS.replace("__MART__", mart), instants, ends, a, b)
    verified = ch.query("SELECT count() FROM ods.ods_transactions FINAL WHERE transaction_id IN ("
                        f"SELECT transaction_id FROM ({TXN_COMMITS.replace('_source_ts AS c_ts', 'transaction_id')}))",
                        parameters={"a": a, "b": b}).result_rows[0][0]
    visible["ods_transactions"]["verified_in_ods"] = verified
    dbt_cpu = [x["cpu_seconds"] for x in window_builds]
    task_cpu = [x["task_cpu_seconds"] for x in window_builds]
    per_run_minutes = len(in_window) / minutes if minutes else 0
    airflow_with_task_overhead = cpu["airflow"] + per_run_minutes * (
        (sum(task_cpu) - sum(dbt_cpu)) / len(task_cpu) if task_cpu else 0)
    return {
        "rate_tx_s": rate, "seconds": seconds,
        "commit_to_visible": visible,
        "dbt_incremental": {"runs": len(in_window), "failed_builds": failed,
                            "run_wall_p50_s": percentile(walls, 0.5), "run_wall_p95_s": percentile(walls, 0.95),
                            "dbt_build_seconds_p50": percentile([x["dbt_seconds"] for x in window_builds], 0.5),
                            "dbt_build_seconds_p95": percentile([x["dbt_seconds"] for x in window_builds], 0.95),
                            "dbt_cpu_seconds_per_run": percentile(dbt_cpu, 0.5),
                            "build_task_process_cpu_seconds_per_run": percentile(task_cpu, 0.5),
                            "phases": run_phases(api, in_window, {b["run_id"]: b for b in window_builds})},
        "cpu_seconds_per_minute": cpu,
        "airflow_share_of_one_core": round(cpu["airflow"] / 60, 4),
        "airflow_share_with_task_runner_overhead": round(airflow_with_task_overhead / 60, 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=2500, help="loaded phase, transactions/s (default 2500)")
    parser.add_argument("--seconds", type=int, default=600, help="loaded phase, measured seconds (default 600)")
    parser.add_argument("--quiet-rate", type=int, default=50, help="quiet phase, transactions/s (default 50)")
    parser.add_argument("--quiet-seconds", type=int, default=300, help="quiet phase, measured seconds (default 300)")
    parser.add_argument("--warmup", type=int, default=60, help="seconds before each measured window (default 60)")
    args = parser.parse_args()

    stack = healthy_stack()
    if stack is None:
        return 1
    env = dict(stack.ctx.env)
    api = AirflowApi.for_stack(env, stack.ctx.secrets["AIRFLOW_ADMIN_PASSWORD"])
    ch = clickhouse_admin(env)
    filler_env = filler_environment(stack)
    paused = {dag: api.is_paused(dag) for dag in DAGS}
    result: dict[str, Any] = {}
    with filler_stopped(stack):
        try:
            for dag in DAGS:
                api.set_paused(dag, False)
            result["loaded"] = run_phase(stack, api, ch, filler_env, args.rate, args.seconds, args.warmup)
            result["quiet"] = run_phase(stack, api, ch, filler_env, args.quiet_rate, args.quiet_seconds, args.warmup)
        finally:
            for dag, was_paused in paused.items():
                api.set_paused(dag, was_paused)
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
