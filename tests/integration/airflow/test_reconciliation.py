"""reconciliation for real: passes on a healthy stack under load, fails naming the key when a row
in ClickHouse ODS is tampered with."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Iterator

import psycopg2
import pytest
from clickhouse_connect.driver.client import Client

from bankcdc_ops.dbt_build import previous_build
from bankcdc_ops.reconciliation import Reconciler
from bankcdc_ops.tables import source_table

from ..cdc_helpers import assert_raw_equals_pg
from .conftest import BackgroundFiller, DagTestRun, dag_test

pytestmark = pytest.mark.integration


def test_passes_on_a_healthy_stack_under_load(ods_build: DagTestRun, stack_env: dict[str, str],
                                              filler_env: dict[str, str]) -> None:
    """The filler keeps inserting, updating and deleting while ODS was built minutes ago: rows
    changed since are in flight (newer in raw than in ODS, or within the settle window)."""
    filler = BackgroundFiller(filler_env, rate=30)
    try:
        time.sleep(15)
        run = dag_test(stack_env, "reconciliation")
    finally:
        filler.stop()
    assert run.ok, run.tail()
    for table in ("customer", "account", "card", "terminal", "transaction"):
        assert f"{table}: " in run.output and "days compared" in run.output
    assert "keys differ" not in run.output


@pytest.fixture
def tampered(ods_build: DagTestRun, ch_admin: Client) -> Iterator[int]:
    """A settled transaction (reversed: final, never deleted) whose amount ODS now gets wrong."""
    key = ch_admin.query("SELECT transaction_id FROM ods.ods_transactions FINAL WHERE status = 'reversed' "
                         "AND NOT is_deleted AND created_at < now() - INTERVAL 1 HOUR "
                         "ORDER BY transaction_id LIMIT 1").result_rows[0][0]
    update = "ALTER TABLE ods.ods_transactions UPDATE amount = amount {op} 1 WHERE transaction_id = {{k:Int64}}"
    ch_admin.command(update.format(op="+"), parameters={"k": key}, settings={"mutations_sync": 2})
    yield key
    ch_admin.command(update.format(op="-"), parameters={"k": key}, settings={"mutations_sync": 2})


def test_fails_naming_the_tampered_key(tampered: int, stack_env: dict[str, str]) -> None:
    run = dag_test(stack_env, "reconciliation")
    assert run.returncode != 0 and run.state == "failed", run.tail()
    assert "transaction: PostgreSQL and ods.`ods_transactions` differ" in run.output, run.tail()
    assert f"{tampered} differs" in run.output, "the example key is named"
    assert "amount_sum postgres=" in run.output, "the differing total is reported"
    # only the tampered table fails
    for table in ("customer", "account", "card", "terminal"):
        assert f"{table}: PostgreSQL and" not in run.output


def test_a_backlog_of_keys_in_flight_is_looked_up_in_chunks(ods_build: DagTestRun, ch_admin: Client,
                                                             pg_admin_dsn: str, filler_env: dict[str, str]) -> None:
    """History written after the build, created before its source instant: ODS lacks every such key
    and raw holds it, so each is in flight. Looked up 7 keys a query or all in one, the verdict is
    the same (the stack's reconciliation uses KEYS_PER_QUERY)."""
    instant = previous_build(ch_admin).source_upper_bound
    assert instant is not None
    # The session's history already covers this day: a close dated in it could precede transactions
    # written there before (an attempt on a closed card that fraud_truth never recorded), so this
    # history closes nothing and injects no scenario, and the fraud marts' scores stay exact.
    quiet = [f"--{kind}-close-rate=0" for kind in ("card", "account", "customer", "terminal")]
    backfill = subprocess.run([sys.executable, "-m", "filler", "backfill", "--backfill-days", "1", "--txns-per-day",
                               "300", "--backfill-end", instant.isoformat(), "--seed", "17", "--fraud-share", "0",
                               *quiet],
                              env=filler_env, capture_output=True, text=True, timeout=300)
    assert backfill.returncode == 0, backfill.stdout[-2000:] + backfill.stderr[-2000:]
    assert_raw_equals_pg(pg_admin_dsn, ch_admin)
    reports = []
    for keys_per_query in (7, 10**6):
        pg = psycopg2.connect(pg_admin_dsn)
        pg.set_session(isolation_level="REPEATABLE READ", readonly=True)
        try:
            reports.append(Reconciler(source_table("transaction"), pg, ch_admin, keys_per_query).run(instant, 0))
        finally:
            pg.close()
    chunked, whole = reports
    assert not chunked.mismatched_keys and not whole.mismatched_keys
    assert chunked.in_flight_keys == whole.in_flight_keys >= 250, (chunked.summary(), whole.summary())
