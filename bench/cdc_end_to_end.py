"""End-to-end CDC benchmark: PostgreSQL commit -> row queryable in ClickHouse raw, as JSON.

Runs against the local stack started by `./stack up` (addresses and credentials from
`./stack env`; the stack's own continuous filler is paused for the run and resumed after).

Phase 1, sustained: `filler run --rate R` for --seconds; every change event committed in the
window is measured: lag = _loaded_at (ClickHouse insert) - _source_ts (PostgreSQL commit),
split into Debezium (commit -> Debezium read, _emitted_ts - _source_ts) and Kafka + consumer
decode + insert (_loaded_at - _emitted_ts). Phase 2, capacity: the filler as fast as it can
for --burst-seconds; rows/s = change rows that reached raw per second while the backlog drained.
Phase 3, consumer alone: the consumer is stopped while the filler writes for --burst-seconds
(Debezium fills Kafka), then started; rows/s = the backlog loaded per second, the CPU no longer
shared with the filler.

    ./stack up && ./stack bench cdc_end_to_end --rate 2500 --seconds 300
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time

from _stack import clickhouse_admin, filler_environment, filler_postgres, filler_stopped, healthy_stack  # bench/_stack.py: this folder is on sys.path

from bankcdc_stack.stack import Stack

TABLES = ("customer", "account", "card", "terminal", "transaction")


def run_filler(env: dict[str, str], rate: int, seconds: int) -> tuple[float, float]:
    start = time.time()
    subprocess.run([sys.executable, "-m", "filler", "run", "--rate", str(rate), "--duration", str(seconds)],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return start, time.time()


def wait_drained(ch, since: dt.datetime, timeout: float = 600) -> float:
    """Until rows arrived and then none for 3 s; returns when the last one landed (epoch seconds)."""
    last, last_change, deadline = -1, time.time(), time.time() + timeout
    while time.time() < deadline:
        count = ch.query(f"SELECT count() FROM merge('raw', '^({'|'.join(TABLES)})$') WHERE _source_ts >= {{s:DateTime64(3)}}",
                         parameters={"s": since}).result_rows[0][0]
        if count == 0:
            last_change = time.time()
        elif count != last:
            last, last_change = count, time.time()
        elif time.time() - last_change > 3:
            break
        time.sleep(0.5)
    return last_change


def lag_figures(ch, since: dt.datetime, until: dt.datetime) -> dict:
    row = ch.query(f"""
        SELECT count(),
               quantiles(0.5, 0.95, 0.99)(dateDiff('millisecond', _source_ts, _loaded_at) / 1000.0),
               max(dateDiff('millisecond', _source_ts, _loaded_at) / 1000.0),
               quantiles(0.5, 0.95)(dateDiff('millisecond', _source_ts, _emitted_ts) / 1000.0),
               quantiles(0.5, 0.95)(dateDiff('millisecond', _emitted_ts, _loaded_at) / 1000.0)
        FROM merge('raw', '^({'|'.join(TABLES)})$')
        WHERE _source_ts BETWEEN {{a:DateTime64(3)}} AND {{b:DateTime64(3)}} AND _op != 'r'""",
                   parameters={"a": since, "b": until}).result_rows[0]
    count, total, worst, debezium, sink = row
    return {"events": count, "lag_p50_s": total[0], "lag_p95_s": total[1], "lag_p99_s": total[2], "lag_max_s": worst,
            "debezium_p50_s": debezium[0], "debezium_p95_s": debezium[1],
            "kafka_decode_insert_p50_s": sink[0], "kafka_decode_insert_p95_s": sink[1]}


def write_path_figures(ch, since: dt.datetime, until: dt.datetime) -> dict:
    """Inserts per second into raw over the window (one insert is one block: its rows share one
    _loaded_at, the server's now64() at the insert's start) and each raw table's active parts."""
    inserts = ch.query(f"SELECT uniqExact(_table, _partition, _loaded_at) FROM merge('raw', '^({'|'.join(TABLES)})$') "
                       "WHERE _source_ts BETWEEN {a:DateTime64(3)} AND {b:DateTime64(3)} AND _op != 'r'",
                       parameters={"a": since, "b": until}).result_rows[0][0]
    parts = dict(ch.query("SELECT table, count() FROM system.parts WHERE database = 'raw' AND active "
                          "GROUP BY table ORDER BY table").result_rows)
    return {"inserts_per_s": round(inserts / max((until - since).total_seconds(), 1e-3), 2),
            "active_parts_per_raw_table": parts}


def wal_bytes(filler_env: dict[str, str]) -> int:
    """PostgreSQL's current WAL position in bytes (as the filler's role: any role may read it)."""
    pg = filler_postgres(filler_env)
    try:
        with pg.cursor() as cur:
            cur.execute("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
            return int(cur.fetchone()[0])
    finally:
        pg.close()


def drain_backlog(stack: Stack, ch, filler_env: dict[str, str], seconds: int) -> dict:
    stack.services["consumer"].stop()
    start, end = run_filler(filler_env, 100000, seconds)
    time.sleep(5)  # let Debezium finish publishing
    since = dt.datetime.fromtimestamp(start, dt.timezone.utc)
    resumed = time.time()
    stack.services["consumer"].start()
    wait_drained(ch, since)
    first, last, count = ch.query(
        f"SELECT min(_loaded_at), max(_loaded_at), count() FROM merge('raw', '^({'|'.join(TABLES)})$') "
        "WHERE _source_ts >= {s:DateTime64(3)} AND _op != 'r'", parameters={"s": since}).result_rows[0]
    load_seconds = max((last - first).total_seconds(), 1e-3)
    return {"backlog_events": count, "load_seconds": round(load_seconds, 1),
            "rows_per_s_into_raw": round(count / load_seconds, 1),
            "seconds_from_consumer_start_to_drained": round(last.timestamp() - resumed, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=2500, help="sustained transactions/s (default 2500)")
    parser.add_argument("--seconds", type=int, default=300, help="sustained phase length (default 300)")
    parser.add_argument("--burst-seconds", type=int, default=60, help="capacity phase length, 0 to skip (default 60)")
    args = parser.parse_args()

    stack = healthy_stack()
    if stack is None:
        return 1
    filler_env = filler_environment(stack)
    ch = clickhouse_admin(stack.ctx.env)
    result: dict = {"rate_target_tx_s": args.rate, "seconds": args.seconds}
    with filler_stopped(stack):
        try:
            print(f"sustained phase: {args.rate} tx/s for {args.seconds}s ...", file=sys.stderr)
            wal_before = wal_bytes(filler_env)
            start, end = run_filler(filler_env, args.rate, args.seconds)
            wal_after = wal_bytes(filler_env)
            since, until = (dt.datetime.fromtimestamp(t, dt.timezone.utc) for t in (start, end))
            wait_drained(ch, since)
            figures = lag_figures(ch, since, until)
            figures["source_rows_per_s"] = round(figures["events"] / (end - start), 1)
            # what a replication slot retains per minute the connectors are down, at this rate
            figures["wal_bytes_per_minute"] = round((wal_after - wal_before) / ((end - start) / 60))
            figures.update(write_path_figures(ch, since, until))
            result["sustained"] = figures
            if args.burst_seconds:
                print(f"capacity phase: filler flat out for {args.burst_seconds}s ...", file=sys.stderr)
                start, end = run_filler(filler_env, 100000, args.burst_seconds)
                since = dt.datetime.fromtimestamp(start, dt.timezone.utc)
                landed = wait_drained(ch, since)
                first, last, count = ch.query(
                    f"SELECT min(_loaded_at), max(_loaded_at), count() FROM merge('raw', '^({'|'.join(TABLES)})$') "
                    "WHERE _source_ts >= {s:DateTime64(3)} AND _op != 'r'", parameters={"s": since}).result_rows[0]
                seconds = max((last - first).total_seconds(), 1e-3)
                result["capacity"] = {"events": count, "source_seconds": round(end - start, 1),
                                      "load_seconds": round(seconds, 1), "rows_per_s_into_raw": round(count / seconds, 1),
                                      "drained_after_source_stopped_s": round(landed - end, 1)}
            if args.burst_seconds:
                print("consumer-alone phase: backlog in Kafka, then drain ...", file=sys.stderr)
                result["consumer_alone"] = drain_backlog(stack, ch, filler_env, args.burst_seconds)
        finally:
            if not stack.services["consumer"].is_running():
                stack.services["consumer"].start()
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
