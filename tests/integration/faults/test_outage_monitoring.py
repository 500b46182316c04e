"""Issue 7: a stage down for a while shows in its own figures: the consumer down grows the Kafka
consumer-group lag, Kafka Connect down grows the WAL the replication slots retain; cdc_monitoring
fails naming that stage; once the part is back the lag drains and cdc_monitoring passes."""

from __future__ import annotations

import time
from typing import Iterator

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from bankcdc_stack import faults
from bankcdc_stack.airflow_api import AirflowApi
from bankcdc_stack.stack import Stack

from ..airflow.conftest import DagTestRun, dag_test
from ..cdc_helpers import assert_raw_equals_pg, kafka_client, wait_for
from .recovery import (FaultReport, Filler, LoadProfile, newest_transaction, pg_scalar,
                       seconds_until_loaded, wait_streaming)

pytestmark = pytest.mark.integration
GROUP = "bankcdc-raw-loader"
# Thresholds a stack at this load stays far below when healthy and crosses within seconds when a
# stage stops. The ODS build age is not under test here (no dbt runs in this module): left lenient.
THRESHOLDS = {"cdc_max_consumer_lag_messages": "500", "cdc_max_slot_lag_bytes": str(4 * 1024 * 1024),
              "cdc_max_ods_build_age_seconds": "86400"}
# part -> (the stage cdc_monitoring must name, what grows while it is down, by how much at least)
OUTAGES = {"consumer": ("kafka", "consumer_lag_messages", 1000),
           "connect": ("replication_slot", "slot_retained_bytes", 1024 * 1024)}


@pytest.fixture(scope="module")
def thresholds(stack: Stack) -> Iterator[None]:
    api = AirflowApi.for_stack(dict(stack.ctx.env), stack.ctx.secrets["AIRFLOW_ADMIN_PASSWORD"])
    for key, value in THRESHOLDS.items():
        api.set_variable(key, value)
    yield
    for key in THRESHOLDS:
        api.delete_variable(key)


@pytest.fixture(scope="module")
def ods_built(stack_env: dict[str, str], ch: Client) -> None:
    """cdc_monitoring's ods stage needs one successful dbt_incremental on record: a real run if none."""
    if not ch.query("SELECT count() FROM monitoring.ods_build").result_rows[0][0]:
        run = dag_test(stack_env, "dbt_incremental", use_executor=True, timeout=1800)
        assert run.ok, run.tail()


def _breaches(run: DagTestRun) -> list[str]:
    return [line.strip() for line in run.output.splitlines() if "BREACH" in line or "threshold(s) exceeded" in line]


def wait_monitoring_passes(stack_env: dict[str, str], timeout: float = 300) -> DagTestRun:
    deadline = time.monotonic() + timeout
    while True:
        run = dag_test(stack_env, "cdc_monitoring")
        if run.ok or time.monotonic() > deadline:
            assert run.ok, "cdc_monitoring still failing after the lag drained:\n" + "\n".join(_breaches(run)[-10:])
            return run
        time.sleep(5)


def consumer_lag(kafka: dict[str, str]) -> int:
    """Messages in the CDC topics the loader's group has not committed yet."""
    admin = AdminClient(kafka)
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith("bank.bank.")]
    partitions = [TopicPartition(t, p) for t in topics
                  for p in admin.list_topics(topic=t, timeout=10).topics[t].partitions]
    committed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(GROUP, partitions)])[GROUP].result()
    ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions})
    done = {(tp.topic, tp.partition): tp.offset for tp in committed.topic_partitions}
    return sum(max(0, ends[tp].result().offset - max(done.get((tp.topic, tp.partition), 0), 0)) for tp in partitions)


def slot_retained_bytes(pg_dsn: str) -> int:
    """WAL kept for the Debezium slots: what PostgreSQL may not recycle until they confirm it."""
    return int(pg_scalar(pg_dsn, "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), 0) "
                                 "FROM pg_replication_slots WHERE slot_name LIKE 'dbz_%%'"))


def _growth(part: str, stack_env: dict[str, str], pg_dsn: str) -> int:
    if part == "consumer":
        return consumer_lag(kafka_client(stack_env))
    return slot_retained_bytes(pg_dsn)


@pytest.mark.parametrize("part", list(OUTAGES))
def test_outage_grows_lag_monitoring_fails_naming_stage_then_drains_and_passes(
        part: str, thresholds: None, ods_built: None, stack: Stack, filler_env: dict[str, str], stack_env: dict[str, str],
        pg_admin_dsn: str, ch: Client, profile: LoadProfile, fault_report: FaultReport) -> None:
    stage, figure, growth = OUTAGES[part]
    filler = Filler(filler_env, profile.rate)
    try:
        wait_streaming(ch)
        before = _growth(part, stack_env, pg_admin_dsn)
        faults.crash(stack, part)
        down_at = time.monotonic()
        grown = wait_for(lambda: (v := _growth(part, stack_env, pg_admin_dsn)) > before + growth and v, timeout=120,
                         what=f"{figure} to grow while {part} is down")
        failing = dag_test(stack_env, "cdc_monitoring")
        at_peak = _growth(part, stack_env, pg_admin_dsn)
        restart_s = faults.recover(stack, part)
        down_s = time.monotonic() - down_at
        marker = newest_transaction(pg_admin_dsn)
        drain_s = seconds_until_loaded(ch, marker, timeout=600)
    finally:
        filler.stop()
    assert_raw_equals_pg(pg_admin_dsn, ch, timeout=300)
    assert failing.state == "failed" and failing.returncode != 0, failing.tail()
    assert f"{stage}: " in failing.output and "threshold(s) exceeded" in failing.output, failing.tail()
    assert f"[{stage}]" in failing.output, f"the failure names stage {stage}:\n{failing.tail()}"
    wait_monitoring_passes(stack_env)
    fault_report.add("monitoring", part, {
        "stage_named": stage, f"{figure}_before": before, f"{figure}_when_checked": grown,
        f"{figure}_peak": at_peak, "down_s": round(down_s, 1), "restart_s": round(restart_s, 1),
        "drained_after_restart_s": round(drain_s, 1)})
