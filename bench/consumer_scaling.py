"""Consumer scale-out benchmark: one Kafka backlog drained by 1, 2, 3 ... consumer processes of one
group, as JSON.

Runs against the local stack started by `./stack up`. The continuous filler is stopped and the
Airflow DAGs paused for the run. For each instance count N: every consumer stops, `filler
backfill` writes about --changes change events, which Debezium publishes to Kafka while nothing
consumes; once the topics hold them all, N consumers start (CONSUMER_INSTANCES=N) and the clock
runs until raw holds every change. rows/s is changes over the span of their load times
(_loaded_at), so it measures the consumers, not their start-up. Each backlog is fresh, so every
N loads the same kind of rows into the same tables.

    ./stack up && ./stack bench consumer_scaling --instances 1,2,3 --changes 300000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from typing import Any

from _stack import clickhouse_admin, filler_environment, filler_postgres, healthy_stack, quiet_pipeline  # bench/_stack.py: this folder is on sys.path
from chain_drain import RAW, backfill, log, source_changes, wait_loaded

import _proc_cpu
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from bankcdc_stack.kafka_access import CONSUMER_GROUP
from bankcdc_stack.stack import Stack


def with_instances(count: int) -> Stack:
    return Stack({**os.environ, "CONSUMER_INSTANCES": str(count)})


def log_end(admin: AdminClient) -> int:
    """Messages in every bank.bank.* topic: the sum of their log-end offsets."""
    topics = admin.list_topics(timeout=10).topics
    partitions = [TopicPartition(t, p) for t, meta in topics.items() if t.startswith("bank.bank.")
                  for p in meta.partitions]
    return sum(f.result().offset for f in admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions}).values())


def wait_published(admin: AdminClient, start: int, expected: int, timeout: float = 900) -> None:
    """Until the topics gained at least `expected` messages (one per change, plus delete tombstones)."""
    deadline, last_log = time.monotonic() + timeout, 0.0
    while (published := log_end(admin) - start) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Debezium published {published:,} of {expected:,} changes in {timeout:.0f} s")
        if time.monotonic() - last_log >= 10:
            log(f"  {published:,} of {expected:,} changes in Kafka")
            last_log = time.monotonic()
        time.sleep(2)


def assignment(admin: AdminClient) -> dict[str, list[str]]:
    group = admin.describe_consumer_groups([CONSUMER_GROUP], request_timeout=10)[CONSUMER_GROUP].result()
    return {m.client_id: sorted(f"{tp.topic.rsplit('.', 1)[1]}[{tp.partition}]"
                                for tp in m.assignment.topic_partitions) for m in group.members}


def drain(count: int, changes: int, admin: AdminClient, ch: Any, filler_env: dict[str, str],
          stall_seconds: float) -> dict[str, Any]:
    stack = with_instances(count)
    consumers = stack.services["consumer"]
    consumers.stop()
    pg = filler_postgres(filler_env)
    before, lsn = source_changes(pg)
    published_before = log_end(admin)
    log(f"{count} consumer(s): backfill of about {changes:,} changes, nothing consuming")
    backfill(filler_env, changes)
    time.sleep(1)
    expected = source_changes(pg)[0] - before
    pg.close()
    wait_published(admin, published_before, expected)
    roots = {name: [pid for proc in stack.services[name].processes() if (pid := proc.pid())]
             for name in ("clickhouse", "kafka")}
    cpu_before = _proc_cpu.snapshot()
    stack.up(["consumer"])
    roots["consumer"] = [pid for proc in consumers.processes() if (pid := proc.pid())]
    loaded = wait_loaded(ch, lsn, expected, stall_seconds)
    cpu_after = _proc_cpu.snapshot()
    first, last = ch.query(f"SELECT min(_loaded_at), max(_loaded_at) FROM {RAW} "
                           "WHERE _lsn >= {l:UInt64} AND _op != 'r'", parameters={"l": lsn}).result_rows[0]
    seconds = max((last - first).total_seconds(), 1e-3)
    cpu = {name: round(_proc_cpu.usage(cpu_before, cpu_after, pids)[0], 1) for name, pids in roots.items()}
    return {"instances": count, "changes": loaded, "expected": expected, "complete": loaded >= expected,
            "load_seconds": round(seconds, 1), "rows_per_s": round(loaded / seconds, 1),
            "cpu_seconds": cpu, "assignment": assignment(admin)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", default="1,2,3", help="instance counts to drain with (default 1,2,3)")
    parser.add_argument("--changes", type=int, default=300_000,
                        help="about how many change events each backlog holds (default 300,000)")
    parser.add_argument("--stall-seconds", type=float, default=120,
                        help="give up when raw gains nothing for this long (default 120)")
    args = parser.parse_args()
    counts = [int(n) for n in args.instances.split(",")]
    stack = healthy_stack()
    if stack is None:
        return 1
    env = dict(stack.ctx.env)
    filler_env = filler_environment(stack)
    ch = clickhouse_admin(env)
    admin = AdminClient(stack.services["kafka"].admin_config)
    runs: list[dict[str, Any]] = []
    with quiet_pipeline(stack):
        try:
            for count in counts:
                runs.append(drain(count, args.changes, admin, ch, filler_env, args.stall_seconds))
                log(f"{count} consumer(s): {runs[-1]['rows_per_s']:,.0f} rows/s")
        finally:
            stack.services["consumer"].stop()  # every running instance, also those past the configured count
            stack.up(["consumer"])  # as configured before the run
    one = next((r["rows_per_s"] for r in runs if r["instances"] == 1), None)
    result = {"changes_per_backlog": args.changes, "started": dt.datetime.now().isoformat(timespec="seconds"),
              "runs": runs,
              "speedup_over_one": {r["instances"]: round(r["rows_per_s"] / one, 2) for r in runs} if one else None}
    print(json.dumps(result, indent=2, default=str))
    return 0 if all(r["complete"] for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
