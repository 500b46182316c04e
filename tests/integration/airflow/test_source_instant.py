"""One source instant per run: with the bank-dims connector paused while transactions keep
flowing, every scheduled dbt_incremental run still passes its relationships tests, because its
source instant T stays at or below what the dims stream delivered; after the resume T catches up."""

from __future__ import annotations

import datetime as dt
import time
from typing import Callable, Iterator

import pytest
from clickhouse_connect.driver.client import Client

from bankcdc_stack.airflow_api import AirflowApi
from bankcdc_stack.stack import Stack
from cdc_consumer.connectors import ConnectClient

from ..cdc_helpers import connect_auth, wait_for
from .conftest import BackgroundFiller, unpaused

pytestmark = pytest.mark.integration
DAG = "dbt_incremental"
UTC = dt.timezone.utc
PAUSE_SECONDS = 120
DIMS_TABLES = ("customer", "account", "card", "terminal")


@pytest.fixture
def scheduled(stack: Stack) -> Iterator[AirflowApi]:
    api = AirflowApi.for_stack(dict(stack.ctx.env), stack.ctx.secrets["AIRFLOW_ADMIN_PASSWORD"])
    with unpaused(api, DAG):
        yield api


@pytest.fixture
def dims_paused(stack_env: dict[str, str]) -> Iterator[Callable[[], None]]:
    """Pause bank-dims (Connect REST); the yielded function resumes it; resumed at the end anyway."""
    connect = ConnectClient(stack_env["CONNECT_URL"], connect_auth(stack_env), timeout=30)

    def resume() -> None:
        connect.resume("bank-dims")

    connect.pause("bank-dims")
    wait_for(lambda: connect.status("bank-dims")["connector"]["state"] == "PAUSED",
             timeout=60, what="bank-dims to pause")
    try:
        yield resume
    finally:
        resume()


def _dims_delivered(ch: Client) -> dt.datetime:
    """The newest commit time raw holds from the bank-dims connector (its tables and heartbeat)."""
    selects = [f"SELECT max(_source_ts) AS t FROM raw.`{t}`" for t in DIMS_TABLES]
    selects.append("SELECT max(_source_ts) FROM raw.heartbeat WHERE source = 'bank-dims'")
    return ch.query(f"SELECT max(t) FROM ({' UNION ALL '.join(selects)})").result_rows[0][0].replace(tzinfo=UTC)


def _builds(ch: Client, since: dt.datetime) -> list[tuple]:
    return ch.query("SELECT dag_run_id, status, source_instant, failed FROM monitoring.ods_build "
                    "WHERE started_at >= {s:DateTime64(6, 'UTC')} ORDER BY started_at",
                    parameters={"s": since}).result_rows


def test_paused_dims_hold_the_source_instant_back_and_every_run_stays_consistent(
        scheduled: AirflowApi, dims_paused: Callable[[], None], filler_env: dict[str, str], ch_admin: Client) -> None:
    api = scheduled
    filler = BackgroundFiller(filler_env, rate=30)
    try:
        paused_at = dt.datetime.now(UTC)
        time.sleep(PAUSE_SECONDS)
        delivered = _dims_delivered(ch_admin)
        during = _builds(ch_admin, paused_at)
        newest_txn = ch_admin.query("SELECT max(_source_ts) FROM raw.`transaction`").result_rows[0][0]
        dims_paused()
        resumed_at = dt.datetime.now(UTC)
        caught_up = wait_for(lambda: [b for b in _builds(ch_admin, resumed_at) if b[1] == "success"
                                      and b[2].replace(tzinfo=UTC) > resumed_at], timeout=300, interval=5,
                             what="a build whose source instant is past the resume")
    finally:
        filler.stop()
    assert len(during) >= 3, f"runs kept going every 30 s while bank-dims was paused: {during}"
    assert all(status == "success" for _, status, _, _ in during), f"every run passed its tests: {during}"
    assert newest_txn.replace(tzinfo=UTC) > delivered + dt.timedelta(seconds=30), \
        "transactions kept arriving past what the dims stream delivered"
    instants = [instant.replace(tzinfo=UTC) for _, _, instant, _ in during]
    assert max(instants) <= delivered, f"T {max(instants)} stayed at or below the dims stream's {delivered}"
    assert instants == sorted(instants), "T never goes back"
    runs = {r["dag_run_id"]: r["state"] for r in api.runs(DAG)}
    assert all(runs.get(run_id) == "success" for run_id, _, _, _ in during), runs
    assert caught_up, "T caught up after the resume"
    orphans = ch_admin.query(
        "SELECT count() FROM ods.ods_transactions FINAL WHERE NOT is_deleted "
        "AND card_id NOT IN (SELECT card_id FROM ods.ods_cards FINAL)").result_rows[0][0]
    assert orphans == 0, "no transaction in ODS references a card ODS lacks"
