"""Least privilege between the local stack's processes: each holds only the passwords it uses.

Read from /proc/<pid>/environ of every running service process (and its children), so a secret
passed to the wrong process fails here whatever code path put it there.
"""

from __future__ import annotations

import psutil
import pytest

from bankcdc_stack.stack import Stack

pytestmark = pytest.mark.integration
CLICKHOUSE_USERS = {"CLICKHOUSE_PASSWORD", "CLICKHOUSE_LOADER_PASSWORD", "CLICKHOUSE_TRANSFORMER_PASSWORD",
                    "CLICKHOUSE_ANALYST_PASSWORD"}
# the secrets each service's processes may hold; Airflow gets its connections as AIRFLOW_CONN_* URIs
ALLOWED = {
    "postgres": set(),
    "kafka": set(),
    "clickhouse": CLICKHOUSE_USERS,
    "connect": {"DEBEZIUM_DB_PASSWORD"},
    "consumer": {"CLICKHOUSE_LOADER_PASSWORD", "KAFKA_CONSUMER_PASSWORD"},
}


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = psutil.Process(pid).environ()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return {}
    return dict(raw)


def _processes(stack: Stack, service: str) -> list[int]:
    pids = []
    for managed in stack.services[service].processes():
        proc = managed.process()
        if proc is not None:
            pids.append(proc.pid)
            pids += [child.pid for child in proc.children(recursive=True)]
    return pids


@pytest.mark.parametrize("service", sorted(ALLOWED))
def test_service_holds_only_its_own_secrets(stack: Stack, service: str) -> None:
    pids = _processes(stack, service)
    assert pids, f"{service} is not running"
    secret_values = dict(stack.ctx.secrets)
    for pid in pids:
        env = _environ(pid)
        foreign = sorted(name for name, value in secret_values.items()
                         if name not in ALLOWED[service] and value in env.values())
        assert not foreign, f"{service} (pid {pid}) holds {', '.join(foreign)}"
        assert not [key for key in env if key.startswith("AIRFLOW_CONN_")], f"{service} holds Airflow connections"


def test_airflow_holds_no_admin_or_foreign_passwords(stack: Stack) -> None:
    pids = _processes(stack, "airflow")
    assert pids
    # the analyst's password is Airflow's since the fraud pages read as the analyst (clickhouse_analyst)
    forbidden = {"POSTGRES_PASSWORD", "FILLER_DB_PASSWORD", "DEBEZIUM_DB_PASSWORD", "CLICKHOUSE_PASSWORD",
                 "BANK_TOKEN_KEY", "KAFKA_ADMIN_PASSWORD", "KAFKA_CONNECT_PASSWORD", "KAFKA_CONSUMER_PASSWORD"}
    for pid in pids:
        joined = "\n".join(_environ(pid).values())
        held = sorted(name for name in forbidden if stack.ctx.secrets[name] in joined)
        assert not held, f"airflow (pid {pid}) holds {', '.join(held)}"
