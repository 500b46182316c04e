"""Issue 7, invalid configuration of every component: each real entry point, one bad setting.

Each must stop with a non-zero exit (or a failed task) whose message names the setting and how to
fix it, and must not start half-way: no port left listening, no state written, nothing registered.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
import requests

from bankcdc_ops.dbt_cli import dbt_env, run_dbt
from bankcdc_ops.errors import ParamError
from bankcdc_stack.process import port_is_free
from bankcdc_stack.secrets import SECRET_NAMES
from bankcdc_stack.stack import Stack

from ..cdc_helpers import connect_auth

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
STACK_PORTS = ("DB_PORT", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "CONNECT_PORT", "CLICKHOUSE_PORT", "AIRFLOW_PORT",
               "CONSUMER_METRICS_PORT")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run(argv: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def base_env(**extra: str) -> dict[str, str]:
    """This interpreter's environment without any stack setting, plus `extra`."""
    skip = set(STACK_PORTS) | {"BANKCDC_STATE_DIR", "KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_HOST"}
    env = {k: v for k, v in os.environ.items() if k not in skip and not k.startswith(("CDC_", "FILLER_"))}
    env.update(extra)
    return env


# ---------------------------------------------------------------- the stack CLI

@pytest.mark.parametrize("setting, value, message", [
    ("DB_PORT", "abc", "DB_PORT='abc' is not a TCP port: set DB_PORT to a number from 1 to 65535"),
    ("AIRFLOW_PORT", "70000", "AIRFLOW_PORT='70000' is not a TCP port: set AIRFLOW_PORT to a number from 1 to 65535"),
    ("KAFKA_HEAP", "lots", "KAFKA_HEAP='lots' is not a JVM heap size: use a value like 512m or 1g"),
    ("CONNECT_HEAP", "0m", "CONNECT_HEAP='0m' is not a JVM heap size"),
    ("CONNECT_PORT", "same-as-kafka", "give each service its own port"),
])
def test_stack_up_with_an_invalid_setting_starts_nothing(setting: str, value: str, message: str,
                                                         tmp_path: Path) -> None:
    ports = dict(zip(STACK_PORTS, map(str, free_ports(len(STACK_PORTS)))))
    state = tmp_path / "state"
    env = base_env(BANKCDC_STATE_DIR=str(state), **ports)
    env[setting] = ports["KAFKA_PORT"] if value == "same-as-kafka" else value
    result = run(["-m", "bankcdc_stack", "up"], env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert not state.exists(), "nothing may be written before the settings are known good"
    assert all(port_is_free(int(p)) for p in ports.values())


# ---------------------------------------------------------------- the filler

@pytest.mark.parametrize("argv, extra, message", [
    (["--rate", "-5"], {}, "--rate must be between 0.1 and 100000 (got '-5')"),
    ([], {"FILLER_RATE": "fast"}, "FILLER_RATE (--rate) must be between 0.1 and 100000 (got 'fast')"),
    (["--fraud-share", "0.9"], {}, "--fraud-share must be between 0 and 0.5"),
    (["--db-sslmode", "sometimes"], {}, "--db-sslmode"),
    ([], {"DB_PORT": "99999"}, "DB_PORT (--db-port) must be between 1 and 65535"),
])
def test_filler_refuses_an_invalid_setting_before_connecting(argv: list[str], extra: dict[str, str],
                                                              message: str) -> None:
    # DB_HOST points nowhere: exit 2 with the message proves the settings are checked first
    env = {**base_env(DB_HOST="127.0.0.1", DB_PORT=str(free_ports(1)[0]), DB_PASSWORD="x"), **extra}
    result = run(["-m", "filler", "run", *argv, "--duration", "1"], env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr, result.stderr


# ---------------------------------------------------------------- the consumer, without services

@pytest.mark.parametrize("setting, value, message", [
    ("CDC_BATCH_MAX_ROWS", "0", "CDC_BATCH_MAX_ROWS='0' is out of range: set CDC_BATCH_MAX_ROWS to a whole number"),
    ("CDC_BATCH_MAX_SECONDS", "soon", "CDC_BATCH_MAX_SECONDS='soon' is invalid: set CDC_BATCH_MAX_SECONDS to seconds"),
    ("KAFKA_BOOTSTRAP_SERVERS", "kafka", "KAFKA_BOOTSTRAP_SERVERS='kafka' is invalid: use host:port"),
    ("CDC_TOPIC_REGEX", "bank.(", "CDC_TOPIC_REGEX='bank.(' is not a regular expression"),
    ("CLICKHOUSE_PORT", "http", "CLICKHOUSE_PORT='http' is invalid: set CLICKHOUSE_PORT to a TCP port"),
])
def test_consumer_refuses_an_invalid_setting_and_listens_on_nothing(setting: str, value: str, message: str) -> None:
    metrics = free_ports(1)[0]
    result = run(["-m", "cdc_consumer", "run"], base_env(CONSUMER_METRICS_PORT=str(metrics), **{setting: value}))
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert port_is_free(metrics)


# ---------------------------------------------------------------- chdb_http

BAD_USERS = {
    "not_xml": ("<clickhouse><users>", "is not valid XML"),
    "no_users": ("<clickhouse><profiles/></clickhouse>", "no users defined"),
    "wrong_root": ("<config><users><default/></users></config>", "the root element must be <clickhouse>, found <config>"),
    "undefined_profile": ("<clickhouse><users><default><profile>fast</profile></default></users></clickhouse>",
                          "profiles/fast is referenced but not defined"),
}


@pytest.mark.parametrize("argv, message", [
    (["--port", "99999"], "port '99999' is not a TCP port: pass --port N or set CLICKHOUSE_PORT"),
    (["--port", "http"], "port 'http' is not a TCP port"),
    (["--log-level", "LOUD"], "use --log-level / CHDB_HTTP_LOG_LEVEL DEBUG, INFO, WARNING or ERROR"),
    (["--users-file", "/nonexistent/users.xml"], "pass --users-file or set CLICKHOUSE_USERS_FILE"),
    *[(["--users-file", name], message) for name, (_, message) in BAD_USERS.items()],
])
def test_chdb_http_refuses_an_invalid_setting(argv: list[str], message: str, tmp_path: Path) -> None:
    for name, (xml, _) in BAD_USERS.items():
        (tmp_path / name).write_text(xml)
    argv = [str(tmp_path / a) if a in BAD_USERS else a for a in argv]
    data_dir = tmp_path / "data"
    port = free_ports(1)[0]
    full = ["--port", str(port), *argv] if "--port" not in argv else argv
    result = run(["-m", "chdb_http", "--data-dir", str(data_dir), *full], base_env())
    assert result.returncode == 2, result.stdout + result.stderr
    assert "chdb-http: configuration error:" in result.stderr and message in result.stderr, result.stderr
    assert not data_dir.exists() and port_is_free(port)


def test_chdb_http_on_a_port_in_use_says_so_and_leaves_it_alone(stack_env: dict[str, str], tmp_path: Path) -> None:
    port = stack_env["CLICKHOUSE_PORT"]
    # users.xml takes each ClickHouse user's password from the environment; the test's shell may have none
    env = base_env(**{name: "unused" for name in SECRET_NAMES if name.startswith("CLICKHOUSE_")})
    result = run(["-m", "chdb_http", "--port", port, "--data-dir", str(tmp_path / "data")], env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr and "--port / CLICKHOUSE_PORT" in result.stderr
    assert requests.get(f"http://127.0.0.1:{port}/ping", timeout=5).text.strip() == "Ok."


# ---------------------------------------------------------------- the consumer against the real services

def consumer_env(stack_env: dict[str, str], stack: Stack, **bad: str) -> dict[str, str]:
    env = {**stack.ctx.child_env("CLICKHOUSE_LOADER_PASSWORD", "KAFKA_CONSUMER_PASSWORD"),
           "CDC_GROUP_ID": "bankcdc-raw-loader-bad-config",
           "CONSUMER_METRICS_PORT": str(free_ports(1)[0])}
    env.update(bad)
    return env


@pytest.mark.parametrize("bad, message", [
    ({"CLICKHOUSE_LOADER_PASSWORD": "wrong"}, "check CDC_CLICKHOUSE_USER and CLICKHOUSE_LOADER_PASSWORD"),
    ({"CDC_CLICKHOUSE_USER": "nobody"}, "check CDC_CLICKHOUSE_USER and CLICKHOUSE_LOADER_PASSWORD"),
    ({"CDC_RAW_DATABASE": "no_such_db"}, "check CDC_RAW_DATABASE"),
    ({"CDC_RAW_DATABASE": "monitoring"}, "CDC_RAW_DATABASE='monitoring' is not a raw layer"),
    ({"KAFKA_CONSUMER_PASSWORD": ""}, "KAFKA_CONSUMER_PASSWORD is not set: the Kafka broker authenticates"),
    ({"KAFKA_CONSUMER_PASSWORD": "not-the-password"}, "check CDC_KAFKA_USER and KAFKA_CONSUMER_PASSWORD"),
])
def test_consumer_with_a_wrong_service_setting_exits_naming_it(
        bad: dict[str, str], message: str, stack: Stack, stack_env: dict[str, str]) -> None:
    """ClickHouse or Kafka answers and refuses the setting: a wrong setting, exit 2. (A service that
    does not answer is waited for: test_dependency_down_at_start.py.)"""
    env = consumer_env(stack_env, stack, **bad)
    result = run(["-m", "cdc_consumer", "run"], env, timeout=90)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert port_is_free(int(env["CONSUMER_METRICS_PORT"])), "nothing listens after a failed start"


# ---------------------------------------------------------------- Debezium connector config via Connect REST

def _connector_payload(name: str, **change: str) -> dict:
    body = json.loads((REPO / "debezium" / "bank-dims.json").read_text())
    body["name"] = name
    body["config"].update({"slot.name": "bad_config_test", "topic.prefix": "badcfg",
                           "custom.metric.tags": f"connector={name}"}, **change)
    return body


@pytest.mark.parametrize("name, change, message", [
    ("bad-config-password", {"database.password": "not-the-password"},
     'password authentication failed for user "debezium"'),
    ("bad-config-snapshot", {"snapshot.mode": "sometimes"},
     "The 'snapshot.mode' value is invalid: Value must be one of"),
    ("bad-config-port", {"database.port": "1"}, "Connection to 127.0.0.1:1 refused"),
])
def test_invalid_connector_config_is_refused_naming_connector_and_problem(
        name: str, change: dict[str, str], message: str, stack_env: dict[str, str], pg_admin_dsn: str,
        tmp_path: Path) -> None:
    (tmp_path / f"{name}.json").write_text(json.dumps(_connector_payload(name, **change)))
    url, auth = stack_env["CONNECT_URL"], connect_auth(stack_env)
    try:
        result = run(["-m", "cdc_consumer", "register-connectors", "--dir", str(tmp_path), "--connect-url", url,
                      "--timeout", "30"], base_env(CONNECT_REST_USER=auth[0], CONNECT_REST_PASSWORD=auth[1]),
                     timeout=120)
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"connector {name} refused by Kafka Connect (400)" in result.stderr, result.stderr
        assert message in result.stderr and f"debezium/{name}.json" in result.stderr, result.stderr
        assert requests.get(f"{url}/connectors/{name}", auth=auth, timeout=10).status_code == 404, "nothing registered"
        with psycopg2.connect(pg_admin_dsn) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'bad_config_test'")
            assert cur.fetchone()[0] == 0, "no replication slot created"
    finally:
        requests.delete(f"{url}/connectors/{name}", auth=auth, timeout=10)
    real = requests.get(f"{url}/connectors/bank-dims/status", auth=auth, timeout=10).json()
    assert real["connector"]["state"] == "RUNNING", "the real connectors are untouched"


# ---------------------------------------------------------------- dbt profile settings

def test_dbt_profile_with_a_non_numeric_port_is_refused_naming_it(stack_env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ParamError, match=r"CLICKHOUSE_PORT='eighty' is not a TCP port: set CLICKHOUSE_PORT"):
        dbt_env({**stack_env, "CLICKHOUSE_PORT": "eighty"}, tmp_path)


@pytest.mark.parametrize("setting, value, expected", [
    ("CLICKHOUSE_TRANSFORMER_PASSWORD", "wrong", ["transformer: Authentication failed"]),
    ("CLICKHOUSE_PORT", "closed", ["Connection test: [ERROR]", "127.0.0.1:{port}"]),
])
def test_dbt_debug_with_a_bad_profile_setting_fails_naming_it(
        setting: str, value: str, expected: list[str], stack_env: dict[str, str], tmp_path: Path) -> None:
    port = str(free_ports(1)[0])
    result = run_dbt(["debug"], {**stack_env, setting: port if value == "closed" else value}, tmp_path,
                     timeout=300)
    assert not result.ok, result.tail()
    for text in expected:
        assert text.format(port=port) in result.stdout, result.tail()


# ---------------------------------------------------------------- Airflow Variables and connections

def _task_test(stack: Stack, task: str, env_change: dict[str, str | None]) -> subprocess.CompletedProcess:
    env = stack.services["airflow"].env()
    for key, value in env_change.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, "-m", "airflow", "tasks", "test", "cdc_monitoring", task],
                          env=env, capture_output=True, text=True, timeout=300, cwd=REPO)


def test_invalid_threshold_variable_fails_the_task_naming_the_variable(stack: Stack) -> None:
    result = _task_test(stack, "kafka", {"AIRFLOW_VAR_CDC_MAX_CONSUMER_LAG_MESSAGES": "lots"})
    output = result.stdout + result.stderr
    assert "new_state=failed" in output, output[-3000:]  # `tasks test` exits 0 either way: the state says it
    assert "Airflow Variable cdc_max_consumer_lag_messages='lots' is not a number >= 0" in output, output[-3000:]
    assert "or delete it to use the default 100000" in output


def test_missing_connection_fails_the_task_naming_the_conn_id(stack: Stack) -> None:
    result = _task_test(stack, "replication_slots", {"AIRFLOW_CONN_POSTGRES_BANK": None})
    output = result.stdout + result.stderr
    assert "new_state=failed" in output, output[-3000:]
    assert re.search(r"conn_id .?postgres_bank.? isn't defined", output), output[-3000:]
