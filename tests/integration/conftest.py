"""Session fixtures: one isolated local stack per test session, started for real and torn down.

The test stack has its own state dir and its own ports (TEST_* variables
override them), so it never touches a developer's running stack.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from bankcdc_stack.process import port_is_free
from bankcdc_stack.stack import Stack

from .cdc_helpers import ch_client

REPO = Path(__file__).resolve().parents[2]
# everything but the continuous filler: tests write their own, known changes
PIPELINE = ["postgres", "kafka", "clickhouse", "connect", "consumer", "airflow"]
TEST_PORTS = {
    "DB_PORT": 15432,
    "KAFKA_PORT": 19092,
    "KAFKA_CONTROLLER_PORT": 19093,
    "CONNECT_PORT": 18083,
    "CLICKHOUSE_PORT": 18123,
    "AIRFLOW_PORT": 18080,
    "CONSUMER_METRICS_PORT": 19464,
}


def isolated_stack_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in TEST_PORTS}
    state_dir = Path(os.environ.get("TEST_BANKCDC_STATE_DIR", REPO / ".state" / "test"))
    env["BANKCDC_STATE_DIR"] = str(state_dir)
    for name, default in TEST_PORTS.items():
        env[name] = os.environ.get(f"TEST_{name}", str(default))
    # the dev stack runs its DAGs on schedule; tests run them with `airflow dags test`, unraced
    env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "True"
    return env


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The whole local stack, fresh for this session; stopped (nothing left listening) at the end."""
    env = isolated_stack_env()
    state_dir = Path(env["BANKCDC_STATE_DIR"])
    leftover = Stack(env)
    leftover.down()
    shutil.rmtree(state_dir, ignore_errors=True)
    busy = [f"{name}={env[name]}" for name in TEST_PORTS if not port_is_free(int(env[name]))]
    if busy:
        pytest.fail(f"test stack ports already in use: {', '.join(busy)}; free them or set TEST_<NAME> to other ports")
    stack = Stack(env)
    try:
        stack.up(["postgres"])
        seed_history(stack)  # before Debezium starts, so its initial snapshot has rows to read
        stack.up(PIPELINE)
        yield stack
    finally:
        stack.down()


def _filler_env(stack: Stack) -> dict[str, str]:
    return {**stack.ctx.env, "DB_USER": "bank_filler", "DB_PASSWORD": stack.ctx.secrets["FILLER_DB_PASSWORD"]}


SEEDED: dict[str, int] = {}  # what seed_history wrote: transactions (count) and their highest id (max_id)


def seed_history(stack: Stack) -> None:
    result = subprocess.run([sys.executable, "-m", "filler", "backfill", "--backfill-days", "1",
                             "--txns-per-day", "3000", "--seed", "7"],
                            env=_filler_env(stack), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    conn = stack.services["postgres"].connect("bank")
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT count(*), max(transaction_id) FROM bank."transaction"')
            SEEDED["count"], SEEDED["max_id"] = cur.fetchone()
    finally:
        conn.close()


@pytest.fixture(scope="session")
def seeded_history(stack: Stack) -> dict[str, int]:
    """The history in PostgreSQL before Debezium started (what its initial snapshot must carry)."""
    return dict(SEEDED)


@pytest.fixture(scope="session")
def stack_env(stack: Stack) -> dict[str, str]:
    """The environment a client of the test stack needs (addresses and credentials)."""
    return dict(stack.ctx.env)


@pytest.fixture(scope="session")
def pg_admin_dsn(stack: Stack) -> str:
    """libpq DSN of the PostgreSQL superuser on database `bank` (schema.sql applied)."""
    env = stack.ctx.env
    return (f"host={env['DB_HOST']} port={env['DB_PORT']} dbname=bank user=postgres "
            f"password={env['POSTGRES_PASSWORD']} connect_timeout=5")


@pytest.fixture(scope="module")
def ch(stack_env: dict[str, str]) -> Iterator[Client]:
    """A ClickHouse client of the test stack, as its `default` user."""
    client = ch_client(stack_env)
    yield client
    client.close()


@pytest.fixture(scope="session")
def filler_env(stack: Stack) -> dict[str, str]:
    """Environment to run the filler as the least-privileged bank_filler role."""
    return _filler_env(stack)
