"""Issue 7: kill -9 each part of the pipeline under load; it recovers by itself, and ODS equals
PostgreSQL row for row with nothing lost and nothing twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from bankcdc_stack import faults
from bankcdc_stack.stack import Stack

from ..cdc_helpers import assert_raw_equals_pg, wait_for
from .recovery import (FaultReport, Filler, LoadProfile, build_ods, newest_transaction, ods_integrity,
                       raw_redeliveries, seconds_until_loaded, unwell_parts, wait_streaming)

pytestmark = pytest.mark.integration
DATA_PARTS = ["postgres", "kafka", "connect", "consumer", "clickhouse"]


def wait_every_part_healthy(stack: Stack, timeout: float = 240) -> None:
    """The crash took nothing else down for good: Airflow, whose metadata lives in PostgreSQL, exits
    when PostgreSQL goes away, and the stack's supervisor starts it again."""
    try:
        wait_for(lambda: not unwell_parts(stack), timeout=timeout, interval=2, what="every part healthy")
    except AssertionError:
        raise AssertionError(f"parts not healthy after the recovery: {unwell_parts(stack)}") from None


@pytest.mark.parametrize("part", DATA_PARTS)
def test_kill_part_under_load_then_ods_equals_postgres(
        part: str, stack: Stack, filler_env: dict[str, str], stack_env: dict[str, str], pg_admin_dsn: str,
        ch: Client, profile: LoadProfile, fault_report: FaultReport, tmp_path: Path) -> None:
    filler = Filler(filler_env, profile.rate)
    try:
        wait_streaming(ch)
        before = newest_transaction(pg_admin_dsn)
        killed = faults.crash(stack, part)
        assert killed and faults.is_down(stack, part), f"{part} was not running"
        time.sleep(profile.down_seconds)  # the source keeps writing while the part is down
        restart_s = faults.recover(stack, part)
        restarted = time.monotonic()
        # caught up: a transaction committed after the restart has reached ClickHouse
        marker = wait_for(lambda: (n := newest_transaction(pg_admin_dsn)) > before and n, timeout=120,
                          what="the filler to write again")
        seconds_until_loaded(ch, marker, timeout=600)
        catch_up_s = time.monotonic() - restarted
        assert filler.proc.poll() is None, "the filler rode out the fault"
    finally:
        filler.stop()
    assert_raw_equals_pg(pg_admin_dsn, ch, timeout=300)
    wait_every_part_healthy(stack)
    dbt_s = build_ods(stack_env, ch, tmp_path)
    integrity = ods_integrity(pg_admin_dsn, ch)
    fault_report.add("faults", part, {
        "processes_killed": len(killed), "down_s": profile.down_seconds, "restart_s": round(restart_s, 1),
        "caught_up_after_restart_s": round(catch_up_s, 1),
        "recovery_s": round(profile.down_seconds + restart_s + catch_up_s, 1),
        "rows_lost": integrity.lost, "rows_duplicated": integrity.duplicated, "rows_extra": integrity.extra,
        "raw_redelivered_events": raw_redeliveries(ch), "dbt_run_s": round(dbt_s, 1)})
    assert (integrity.lost, integrity.duplicated, integrity.extra) == (0, 0, 0), integrity
    assert not integrity.mismatches, integrity.mismatches
