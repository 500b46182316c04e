"""Issue 2: every service of the local stack answers for real, and the stack commands behave."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest
import requests
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bankcdc_stack.process import port_is_free, port_is_listening
from bankcdc_stack.services.airflow import ADMIN_USER
from bankcdc_stack.stack import Stack
from bankcdc_stack.topic_partitions import TopicRule, grow_topics

from .cdc_helpers import connect_auth, kafka_client

pytestmark = pytest.mark.integration


def test_postgres_sql_round_trip_with_logical_wal(pg_admin_dsn: str) -> None:
    with psycopg2.connect(pg_admin_dsn) as conn, conn.cursor() as cur:
        cur.execute("SHOW wal_level")
        assert cur.fetchone()[0] == "logical"
        cur.execute("CREATE TEMP TABLE round_trip (id int primary key, note text)")
        cur.execute("INSERT INTO round_trip VALUES (%s, %s)", (7, "héllo"))
        cur.execute("SELECT note FROM round_trip WHERE id = 7")
        assert cur.fetchone()[0] == "héllo"
        cur.execute("SHOW listen_addresses")
        assert cur.fetchone()[0] == "127.0.0.1"


def test_kafka_message_produced_and_consumed(stack_env: dict[str, str]) -> None:
    topic = f"stack-check-{uuid.uuid4().hex[:8]}"
    payload = json.dumps({"check": topic}).encode()
    producer = Producer(kafka_client(stack_env))
    producer.produce(topic, key=b"k", value=payload)
    assert producer.flush(30) == 0, "message not delivered"
    consumer = Consumer({**kafka_client(stack_env), "group.id": topic,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        received = None
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                received = msg
                break
        assert received is not None, "nothing consumed within 60 s"
        assert received.value() == payload and received.key() == b"k"
    finally:
        consumer.close()


def test_a_topic_below_its_partition_rule_is_grown_to_it(stack: Stack) -> None:
    admin_config = stack.services["kafka"].admin_config
    admin = AdminClient(admin_config)
    topic = f"stack-check-grow-{uuid.uuid4().hex[:8]}"  # outside the consumers' bank.* subscription
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=30)
    try:
        rule = TopicRule("check", "grow", re.compile(re.escape(topic)), 3)
        assert grow_topics(admin_config, [rule]) == [(topic, 1, 3)]
        assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 3
        assert grow_topics(admin_config, [rule]) == [], "a topic at its count is left as it is"
    finally:
        admin.delete_topics([topic])[topic].result(timeout=30)


def test_connect_lists_debezium_postgres_plugin(stack_env: dict[str, str]) -> None:
    response = requests.get(f"{stack_env['CONNECT_URL']}/connector-plugins", auth=connect_auth(stack_env), timeout=10)
    response.raise_for_status()
    plugins = {plugin["class"]: plugin for plugin in response.json()}
    debezium = plugins["io.debezium.connector.postgresql.PostgresConnector"]
    assert debezium["type"] == "source"
    assert debezium["version"].startswith("3.")


def _airflow_token(stack_env: dict[str, str], password: str) -> requests.Response:
    return requests.post(f"{stack_env['AIRFLOW_URL']}/auth/token",
                         json={"username": ADMIN_USER, "password": password}, timeout=10)


def test_airflow_rest_api_login_and_no_import_errors(stack_env: dict[str, str]) -> None:
    assert _airflow_token(stack_env, "not-the-password").status_code == 401
    token = _airflow_token(stack_env, stack_env["AIRFLOW_ADMIN_PASSWORD"])
    assert token.status_code in (200, 201), token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert requests.get(f"{stack_env['AIRFLOW_URL']}/api/v2/dags", timeout=10).status_code == 401
    errors = requests.get(f"{stack_env['AIRFLOW_URL']}/api/v2/importErrors", headers=headers, timeout=10)
    errors.raise_for_status()
    assert errors.json()["import_errors"] == []
    health = requests.get(f"{stack_env['AIRFLOW_URL']}/api/v2/monitor/health", timeout=10).json()
    assert {health[part]["status"] for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")} == {"healthy"}


def test_airflow_metadata_lives_in_the_stack_postgres(pg_admin_dsn: str) -> None:
    with psycopg2.connect(pg_admin_dsn.replace("dbname=bank", "dbname=airflow")) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'dag_run'")
        assert cur.fetchone()[0] == 1


def test_clickhouse_endpoint_answers(stack_env: dict[str, str]) -> None:
    base = f"http://{stack_env['CLICKHOUSE_HOST']}:{stack_env['CLICKHOUSE_PORT']}"
    assert requests.get(f"{base}/ping", timeout=5).text == "Ok.\n"
    answer = requests.post(base, data="SELECT 1 + 1", auth=("default", stack_env["CLICKHOUSE_PASSWORD"]), timeout=10)
    assert answer.status_code == 200 and answer.text.strip() == "2"


def test_up_twice_is_harmless(stack: Stack) -> None:
    pipeline = [name for name in stack.services if name != "filler"]  # what the session fixture started
    before = {row.name: row.pids for row in stack.status()}
    stack.up(pipeline)
    after = [row for row in stack.status() if row.name in pipeline]
    assert {row.name: row.pids for row in after} == {name: before[name] for name in pipeline}
    assert all(row.health.ok for row in after), [(row.name, row.health.detail) for row in after]


def test_down_of_one_service_leaves_what_it_needs_running(stack: Stack, stack_env: dict[str, str]) -> None:
    """`down filler` stops the filler, not PostgreSQL (the pipeline's source and Airflow's DB)."""
    filler = stack.services["filler"]
    filler.start()
    out = subprocess.run([sys.executable, "-m", "bankcdc_stack", "down", "filler"], env=stack_env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert not filler.is_running()
    running = {row.name: row.health.ok for row in stack.status()}
    assert running["postgres"] and running["airflow"] and running["connect"], running
    assert "still running: postgres" in out.stdout, out.stdout


def test_postgres_starts_from_a_state_dir_in_a_private_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A clone in root's 0700 home: PostgreSQL runs as the postgres OS user, which cannot enter
    it, so its cluster lives where that user can reach it; the stack starts and stops as usual."""
    import os
    import shutil
    import tempfile

    from bankcdc_stack.services.postgres import reachable_by

    private = Path(tempfile.mkdtemp(prefix="bankcdc-private-", dir=Path.home()))
    private.chmod(0o700)
    port = next(p for p in range(25432, 25532) if port_is_free(p))
    stack = Stack({**os.environ, "BANKCDC_STATE_DIR": str(private / "state"), "DB_PORT": str(port)})
    service = stack.services["postgres"]
    try:
        stack.up(["postgres"])
        assert service.health().ok
        if os.geteuid() == 0:
            assert not reachable_by("postgres", private / "state"), "the folder is private to root"
            assert not service.root.is_relative_to(private), f"the cluster moved out: {service.root}"
    finally:
        stack.down(["postgres"])
        cluster = service.root
        shutil.rmtree(private, ignore_errors=True)
        if not cluster.is_relative_to(private):
            shutil.rmtree(cluster.parent, ignore_errors=True)
    assert port_is_free(port)


def test_status_command_shows_each_service(stack_env: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, "-m", "bankcdc_stack", "status"], env=stack_env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stdout + result.stderr  # 3: some service (the filler) stopped
    assert "NEEDS" in result.stdout and "down SERVICE" in result.stdout, "what `down` will stop"
    for name, port in (("postgres", stack_env["DB_PORT"]), ("kafka", stack_env["KAFKA_PORT"]),
                       ("connect", stack_env["CONNECT_PORT"]), ("clickhouse", stack_env["CLICKHOUSE_PORT"]),
                       ("airflow", stack_env["AIRFLOW_PORT"])):
        line = next(line for line in result.stdout.splitlines() if line.startswith(name))
        assert port in line and " ok " in line, line


def test_secrets_stay_out_of_the_repository_and_are_private(stack: Stack) -> None:
    secrets_file = stack.settings.state_dir / "secrets.env"
    assert secrets_file.stat().st_mode & 0o077 == 0
    tracked = subprocess.run(["git", "ls-files"], cwd=stack.settings.repo_root, capture_output=True, text=True).stdout
    assert ".state/" not in tracked


@pytest.mark.stack_teardown
def test_down_leaves_no_process_and_no_listening_port(stack: Stack) -> None:
    ports = [port for svc in stack.services.values() for port, _ in svc.ports()]
    pids = [pid for row in stack.status() for pid in row.pids if pid]
    assert stack.services["postgres"].is_running()
    assert pids, "stack was not running"
    assert stack.down() == []
    assert [port for port in ports if port_is_listening(port) or not port_is_free(port)] == []
    import psutil

    assert [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE] == []
