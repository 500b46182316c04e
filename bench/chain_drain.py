"""Whole-chain drain benchmark: a backlog in PostgreSQL's WAL through Debezium, Kafka and the
consumer into ClickHouse raw, as JSON.

Runs against the local stack started by `./stack up`. The continuous filler is stopped and the
Airflow DAGs paused for the run (the chain gets the machine), both connectors are paused, and
`filler backfill` writes about --changes change events. PostgreSQL's own counters
(pg_stat_user_tables: rows inserted, updated, deleted in schema bank) give the exact number of
changes to expect. Then both connectors resume, and the clock runs until raw holds every change
whose LSN is past the backlog's start.

Per stage, from each row's own timestamps: Debezium (resume -> the last change read, _emitted_ts;
a paused connector's reader keeps filling its in-memory queue, so the stage is mostly reading on
and producing to Kafka), Kafka + consumer (-> the last change loaded, _loaded_at). Each service's
CPU seconds over the drain show where the two cores went.

    ./stack up && ./stack bench chain_drain --changes 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _stack import clickhouse_admin, filler_environment, filler_postgres, healthy_stack, quiet_pipeline  # bench/_stack.py: this folder is on sys.path

import _proc_cpu
from bankcdc_stack.stack import Stack
from cdc_consumer.connectors import ConnectClient, load_specs

CONNECTORS = tuple(spec.name for spec in load_specs(Path(__file__).resolve().parents[1] / "debezium"))
SERVICES = ("postgres", "kafka", "connect", "consumer", "clickhouse", "airflow")
RAW = "merge('raw', '^(customer|account|card|terminal|transaction)$')"
UTC = dt.timezone.utc


def log(message: str) -> None:
    print(f"{dt.datetime.now():%H:%M:%S} {message}", file=sys.stderr, flush=True)


def source_changes(pg: Any) -> tuple[int, int]:
    """(rows inserted + updated + deleted in schema bank so far, the current WAL LSN as a number)."""
    with pg.cursor() as cur:
        cur.execute("SELECT pg_stat_force_next_flush()")
        cur.execute("SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint, "
                    "(pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint FROM pg_stat_user_tables WHERE schemaname = 'bank'")
        changes, lsn = cur.fetchone()
    return int(changes), int(lsn)


def set_connectors(connect: ConnectClient, action: str) -> None:
    """Pause or resume every connector, then wait until Connect reports the state."""
    for name in CONNECTORS:
        getattr(connect, action)(name)
    if action == "resume":
        for name in CONNECTORS:
            connect.wait_running(name)
        return
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = [connect.status(name) for name in CONNECTORS]
        if all(s and s["connector"]["state"] == "PAUSED" and all(t["state"] == "PAUSED" for t in s["tasks"])
               for s in states):
            return
        time.sleep(1)
    raise RuntimeError(f"connectors not PAUSED after 120 s: {states}")


def wait_loaded(ch: Any, lsn: int, expected: int, stall_seconds: float) -> int:
    """Until raw holds `expected` changes past `lsn`, or none arrived for `stall_seconds`."""
    loaded, last_count, last_change, last_log = 0, -1, time.monotonic(), 0.0
    while True:
        loaded = ch.query(f"SELECT count() FROM {RAW} WHERE _lsn >= {{l:UInt64}} AND _op != 'r'",
                          parameters={"l": lsn}).result_rows[0][0]
        now = time.monotonic()
        if loaded != last_count:
            last_count, last_change = loaded, now
        if now - last_log >= 10:
            log(f"  {loaded:,} of {expected:,} changes in raw")
            last_log = now
        if loaded >= expected or now - last_change > stall_seconds:
            return loaded
        time.sleep(1)


def stage_figures(ch: Any, lsn: int, resumed: dt.datetime, expected: int) -> dict[str, Any]:
    row = ch.query(f"""
        SELECT count(), max(_emitted_ts), min(_loaded_at), max(_loaded_at),
               quantiles(0.5, 0.95)(dateDiff('millisecond', _emitted_ts, _loaded_at) / 1000)
        FROM {RAW} WHERE _lsn >= {{l:UInt64}} AND _op != 'r'""", parameters={"l": lsn}).result_rows[0]
    count, last_read, first_loaded, last_loaded, kafka_consumer = row

    def since(moment: dt.datetime) -> float:
        return max((moment.replace(tzinfo=UTC) - resumed).total_seconds(), 1e-3)

    chain_s, debezium_s = since(last_loaded), since(last_read)
    consumer_s = max((last_loaded - first_loaded).total_seconds(), 1e-3)
    return {
        "changes": count, "expected": expected, "complete": count >= expected,
        "chain_seconds": round(chain_s, 1), "chain_rows_per_s": round(count / chain_s, 1),
        "debezium": {"seconds": round(debezium_s, 1), "rows_per_s": round(count / debezium_s, 1)},
        "kafka_and_consumer": {"seconds": round(consumer_s, 1), "rows_per_s": round(count / consumer_s, 1),
                               "read_to_loaded_p50_s": round(kafka_consumer[0], 2),
                               "read_to_loaded_p95_s": round(kafka_consumer[1], 2),
                               "tail_after_debezium_s": round(chain_s - debezium_s, 1)},
        "share_of_chain_seconds": {"debezium": round(debezium_s / chain_s, 3),
                                   "consumer_tail": round((chain_s - debezium_s) / chain_s, 3)},
    }


def backfill(filler_env: dict[str, str], changes: int) -> float:
    """`filler backfill` of about `changes` change events (transactions plus the entities they need)."""
    started = time.monotonic()
    end = dt.datetime.now(UTC).isoformat()
    subprocess.run([sys.executable, "-m", "filler", "backfill", "--backfill-days", "1", "--txns-per-day",
                    str(changes), "--backfill-end", end, "--log-interval", "30"],
                   env=filler_env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def run(stack: Stack, changes: int, stall_seconds: float) -> dict[str, Any]:
    env = dict(stack.ctx.env)
    filler_env = filler_environment(stack)
    ch = clickhouse_admin(env)
    pg = filler_postgres(filler_env)
    connect = ConnectClient(env["CONNECT_URL"], (env["CONNECT_REST_USER"], env["CONNECT_REST_PASSWORD"]))
    log(f"pausing {', '.join(CONNECTORS)}")
    set_connectors(connect, "pause")
    try:
        before, lsn = source_changes(pg)
        log(f"backfill: about {changes:,} changes into PostgreSQL, connectors paused")
        backfill_s = backfill(filler_env, changes)
        time.sleep(1)
        after, _ = source_changes(pg)
        pg.close()
        expected = after - before
        log(f"backfill wrote {expected:,} changes in {backfill_s:.1f} s; resuming the connectors")
        roots = {name: [pid for proc in stack.services[name].processes() if (pid := proc.pid())] for name in SERVICES}
        cpu_before, resumed = _proc_cpu.snapshot(), dt.datetime.now(UTC)
    finally:
        set_connectors(connect, "resume")
    loaded = wait_loaded(ch, lsn, expected, stall_seconds)
    cpu_after, done = _proc_cpu.snapshot(), dt.datetime.now(UTC)
    if loaded < expected:
        log(f"stalled: {loaded:,} of {expected:,} changes in raw after {stall_seconds:.0f} s without progress")
    figures = stage_figures(ch, lsn, resumed, expected)
    seconds = (done - resumed).total_seconds()
    cpu = {name: round(_proc_cpu.usage(cpu_before, cpu_after, pids)[0], 1) for name, pids in roots.items()}
    total = sum(cpu.values()) or 1.0
    return {
        "backfill": {"changes": expected, "seconds": round(backfill_s, 1),
                     "changes_per_s": round(expected / backfill_s, 1)},
        "drain": figures,
        "cpu_seconds": cpu,
        "cpu_share": {name: round(value / total, 3) for name, value in cpu.items()},
        "cores_busy": round(total / seconds, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=1_000_000,
                        help="about how many change events the backfill writes (default 1,000,000)")
    parser.add_argument("--stall-seconds", type=float, default=120,
                        help="give up when raw gains nothing for this long (default 120)")
    args = parser.parse_args()
    stack = healthy_stack()
    if stack is None:
        return 1
    with quiet_pipeline(stack):
        result = {"changes_target": args.changes, **run(stack, args.changes, args.stall_seconds)}
    print(json.dumps(result, indent=2, default=str))
    return 0 if result["drain"]["complete"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
