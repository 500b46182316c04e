"""reconciliation for real: passes on a healthy stack under load, fails naming the key when a row
in ClickHouse ODS is tampered with."""

from __future__ import annotations

import time
from typing import Iterator

import pytest
from clickhouse_connect.driver.client import Client

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
