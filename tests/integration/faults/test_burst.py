"""Issue 7: a burst at ten times the normal rate for a minute is absorbed: the lag it builds
drains by itself while normal traffic goes on, nothing is lost, and the time to recover is reported."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from ..cdc_helpers import assert_raw_equals_pg, wait_for
from .recovery import (FaultReport, Filler, LoadProfile, build_ods, newest_transaction, ods_integrity, pg_scalar,
                       seconds_until_loaded, wait_streaming)

pytestmark = pytest.mark.integration
FACTOR = 10


def _lag_percentiles(ch: Client, lo: int, hi: int) -> dict[str, float]:
    """Commit in PostgreSQL -> row in ClickHouse, over the burst's inserts."""
    p50, p95, p99, peak = ch.query(
        "SELECT quantiles(0.5, 0.95, 0.99)(lag)[1], quantiles(0.5, 0.95, 0.99)(lag)[2], "
        "quantiles(0.5, 0.95, 0.99)(lag)[3], max(lag) FROM (SELECT dateDiff('millisecond', _source_ts, _loaded_at) "
        "/ 1000 AS lag FROM raw.`transaction` WHERE _op = 'c' AND transaction_id BETWEEN {lo:Int64} AND {hi:Int64})",
        parameters={"lo": lo, "hi": hi}).result_rows[0]
    return {"lag_p50_s": round(p50, 2), "lag_p95_s": round(p95, 2), "lag_p99_s": round(p99, 2),
            "lag_max_s": round(peak, 2)}


def test_ten_times_burst_for_a_minute_is_absorbed_and_lag_recovers(
        filler_env: dict[str, str], stack_env: dict[str, str], pg_admin_dsn: str, ch: Client,
        profile: LoadProfile, fault_report: FaultReport, tmp_path: Path) -> None:
    normal = Filler(filler_env, profile.rate)
    wait_streaming(ch)
    time.sleep(10)
    normal.stop()
    first = newest_transaction(pg_admin_dsn) + 1
    started = time.monotonic()
    burst = Filler(filler_env, FACTOR * profile.rate, seconds=profile.burst_seconds)
    burst.wait(timeout=profile.burst_seconds + 180)
    burst_s = time.monotonic() - started
    last = newest_transaction(pg_admin_dsn)
    normal = Filler(filler_env, profile.rate)  # normal traffic goes on while the backlog drains
    try:
        recovery_s = seconds_until_loaded(ch, last, timeout=900)
        # the backlog can be gone before the filler wrote anything: stopping it then would kill it
        # before it handles SIGTERM, and the drain would not have met any normal traffic
        wait_for(lambda: newest_transaction(pg_admin_dsn) > last, timeout=60, what="normal traffic after the burst")
    finally:
        normal.stop()
    written = pg_scalar(pg_admin_dsn, 'SELECT count(*) FROM bank."transaction" WHERE transaction_id BETWEEN %s AND %s',
                        (first, last))
    rate = written / burst_s
    assert rate >= 0.8 * FACTOR * profile.rate, f"the burst wrote {rate:.0f} tx/s, not {FACTOR}x {profile.rate}"
    assert_raw_equals_pg(pg_admin_dsn, ch, timeout=300)
    build_ods(stack_env, ch, tmp_path)
    integrity = ods_integrity(pg_admin_dsn, ch)
    fault_report.add("burst", None, {
        "normal_tx_per_s": profile.rate, "burst_target_tx_per_s": FACTOR * profile.rate,
        "burst_achieved_tx_per_s": round(rate), "burst_s": round(burst_s, 1), "burst_transactions": written,
        "recovered_after_burst_s": round(recovery_s, 1), **_lag_percentiles(ch, first, last),
        "rows_lost": integrity.lost, "rows_duplicated": integrity.duplicated})
    assert (integrity.lost, integrity.duplicated, integrity.extra) == (0, 0, 0), integrity
    assert not integrity.mismatches, integrity.mismatches
