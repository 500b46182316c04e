"""What the fault tests share: load to drive, catch-up to wait for, loss and duplicates to count,
figures to report."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
from clickhouse_connect.driver.client import Client

from bankcdc_ops.dbt_cli import run_dbt
from bankcdc_stack.stack import Stack

from ..cdc_helpers import TABLE_KEYS, caught_up_run_settings, pg_sql, wait_for
from ..ods_compare import ODS_TABLES, ods_mismatches

UTC = dt.timezone.utc


@dataclass(frozen=True)
class LoadProfile:
    """How hard the fault suite pushes: the test command runs LIGHT, `--heavy` (bench) HEAVY."""

    name: str
    rate: int            # filler transactions per second while a part is down ("normal" load)
    down_seconds: float  # how long a crashed part stays down while the source keeps writing
    burst_seconds: int   # the burst runs at 10x rate for this long


LIGHT = LoadProfile("light", rate=100, down_seconds=10, burst_seconds=60)
HEAVY = LoadProfile("heavy", rate=400, down_seconds=60, burst_seconds=60)


class Filler:
    """The real filler writing in the background (`filler run --rate R`), stopped with SIGTERM."""

    def __init__(self, env: dict[str, str], rate: int, seconds: float | None = None) -> None:
        argv = [sys.executable, "-m", "filler", "run", "--rate", str(rate)]
        if seconds is not None:
            argv += ["--duration", str(int(seconds))]
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait(self, timeout: float) -> str:
        output, _ = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, f"filler exited {self.proc.returncode}:\n{output[-3000:]}"
        return output

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout=120)


def pg_scalar(pg_dsn: str, sql: str, params: tuple = ()) -> Any:
    return pg_sql(pg_dsn, sql, params)[0][0]


def newest_transaction(pg_dsn: str) -> int:
    return pg_scalar(pg_dsn, 'SELECT coalesce(max(transaction_id), 0) FROM bank."transaction"')


def loaded(ch: Client, transaction_id: int) -> bool:
    return ch.query("SELECT count() FROM raw.`transaction` WHERE transaction_id = {k:Int64}",
                    parameters={"k": transaction_id}).result_rows[0][0] > 0


def seconds_until_loaded(ch: Client, transaction_id: int, timeout: float) -> float:
    """Seconds until the transaction's insert is in raw: CDC has caught up to that commit."""
    started = time.monotonic()
    wait_for(lambda: loaded(ch, transaction_id), timeout=timeout, interval=0.5,
             what=f"transaction {transaction_id} in raw.transaction")
    return time.monotonic() - started


def unwell_parts(stack: Stack) -> dict[str, str]:
    """Pipeline parts not healthy, with why; the filler is not one (tests write their own load)."""
    return {row.name: row.health.detail for row in stack.status() if row.name != "filler" and not row.health.ok}


def wait_streaming(ch: Client, timeout: float = 90) -> None:
    wait_for(lambda: ch.query("SELECT count() FROM raw.`transaction` WHERE _loaded_at > now64() - 5")
             .result_rows[0][0] > 0, timeout=timeout, what="changes streaming into raw.transaction")


def build_ods(stack_env: dict[str, str], ch: Client, work_dir: Path) -> float:
    """One incremental dbt run of the whole project, once raw has caught up; its seconds."""
    result = run_dbt(["run"], {**stack_env, **caught_up_run_settings(ch)}, work_dir)
    assert result.ok, f"dbt run failed:\n{result.tail()}"
    return result.seconds


@dataclass(frozen=True)
class Integrity:
    lost: int          # keys in PostgreSQL without a live ODS row
    duplicated: int    # live ODS rows beyond one per key (plain SELECT, no FINAL)
    extra: int         # live ODS keys PostgreSQL does not have
    mismatches: dict[str, list[str]]


def ods_integrity(pg_dsn: str, ch: Client) -> Integrity:
    """ODS against PostgreSQL: counted over every key, then compared column by column."""
    lost = duplicated = extra = 0
    for table in ODS_TABLES.values():
        with psycopg2.connect(pg_dsn) as conn, conn.cursor() as cur:
            cur.execute(f'SELECT {table.key} FROM bank."{table.source}"')
            pg_keys = {row[0] for row in cur.fetchall()}
        ods_keys = [row[0] for row in ch.query(
            f"SELECT {table.key} FROM {table.ods} WHERE NOT is_deleted").result_rows]
        unique = set(ods_keys)
        lost += len(pg_keys - unique)
        extra += len(unique - pg_keys)
        duplicated += len(ods_keys) - len(unique)
    return Integrity(lost, duplicated, extra, ods_mismatches(pg_dsn, ch))


def raw_redeliveries(ch: Client) -> int:
    """Change events held twice in raw (same key, version, LSN at another offset): at-least-once
    redelivery after a crash. They collapse in ReplacingMergeTree and never reach ODS twice."""
    total = 0
    for table, key in TABLE_KEYS.items():
        total += ch.query(f"SELECT sum(c - 1) FROM (SELECT count() AS c FROM raw.`{table}` "
                          f"GROUP BY {key}, _version, _lsn HAVING c > 1)").result_rows[0][0] or 0
    return int(total)


class FaultReport:
    """Figures of the fault suite, written as JSON (bench/faults.py prints them)."""

    def __init__(self, path: Path, profile: LoadProfile) -> None:
        self.path = path
        self.data: dict[str, Any] = {"profile": profile.__dict__, "faults": {}, "burst": None, "monitoring": {}}

    def add(self, section: str, name: str | None, figures: dict[str, Any]) -> None:
        if name is None:
            self.data[section] = figures
        else:
            self.data[section][name] = figures
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2, default=str))
