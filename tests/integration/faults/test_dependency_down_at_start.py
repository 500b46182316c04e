"""Issue 18: a dependency that does not answer at start is an outage, not a wrong setting.

The consumer started while ClickHouse (or Kafka) does not answer waits with back-off, says so in
its log, on /metrics and in `./stack status`, and starts consuming as soon as the service
answers; it never exits 2 (which its supervisor would not restart). The filler does the same for
PostgreSQL, and exits 2 only when PostgreSQL refuses its user or password.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from bankcdc_stack.stack import Stack

from ..cdc_helpers import wait_for
from .test_bad_config import consumer_env, free_ports

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


class Forwarder:
    """A TCP port that forwards to `target` once opened: a service that comes up late."""

    def __init__(self, port: int, target: int) -> None:
        self.port, self.target = port, target
        self.server: socket.socket | None = None

    def open(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port), reuse_port=True)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.server is not None:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None


@pytest.fixture
def late_clickhouse(stack_env: dict[str, str]) -> Iterator[Forwarder]:
    forwarder = Forwarder(free_ports(1)[0], int(stack_env["CLICKHOUSE_PORT"]))
    yield forwarder
    forwarder.close()


def _waiting(metrics_port: int) -> dict[str, float]:
    try:
        text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).text
    except requests.RequestException:
        return {}
    return {line.split('"')[1]: float(line.split()[-1]) for line in text.splitlines()
            if line.startswith("cdc_waiting_for{")}


def _start_consumer(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """`cdc_consumer run` with its output in `log_path`: a file, not a pipe, since nothing reads a
    pipe while a test waits, and a full one would stall the consumer."""
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-m", "cdc_consumer", "run"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=REPO)


def test_consumer_waits_for_clickhouse_then_consumes(stack: Stack, stack_env: dict[str, str],
                                                      late_clickhouse: Forwarder, tmp_path: Path) -> None:
    env = consumer_env(stack_env, stack, CLICKHOUSE_PORT=str(late_clickhouse.port))
    metrics = int(env["CONSUMER_METRICS_PORT"])
    log_path = tmp_path / "consumer.log"
    proc = _start_consumer(env, log_path)
    try:
        wait_for(lambda: _waiting(metrics).get("clickhouse") == 1, timeout=60, what="/metrics to show the wait")
        time.sleep(3)
        assert proc.poll() is None, f"the consumer exited {proc.returncode} instead of waiting"
        assert "waiting for clickhouse:" in log_path.read_text() and "next try in" in log_path.read_text()
        late_clickhouse.open()
        wait_for(lambda: _waiting(metrics).get("clickhouse") == 0, timeout=90, interval=1,
                 what="the consumer to connect once ClickHouse answers")
        wait_for(lambda: "assigned" in log_path.read_text(), timeout=60, what="the consumer to take partitions")
        assert proc.poll() is None
    finally:
        proc.terminate()
        code = proc.wait(timeout=60)
    assert code == 0, log_path.read_text()[-3000:]


def test_consumer_waits_for_kafka_and_stops_cleanly_while_waiting(stack: Stack, stack_env: dict[str, str],
                                                                   tmp_path: Path) -> None:
    env = consumer_env(stack_env, stack, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_ports(1)[0]}")
    metrics = int(env["CONSUMER_METRICS_PORT"])
    log_path = tmp_path / "consumer.log"
    proc = _start_consumer(env, log_path)
    try:
        try:
            wait_for(lambda: _waiting(metrics).get("kafka") == 1, timeout=120,
                     what="/metrics to show the wait for Kafka")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; consumer exit {proc.poll()}, log:\n{log_path.read_text()[-3000:]}") from None
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    output = log_path.read_text()
    assert proc.returncode == 0, output[-3000:]
    assert "waiting for kafka: no Kafka broker answered at KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:" in output


def test_filler_waits_for_postgres_but_a_wrong_password_exits_2(stack: Stack, stack_env: dict[str, str],
                                                                 filler_env: dict[str, str]) -> None:
    down = {**filler_env, "DB_PORT": str(free_ports(1)[0])}
    proc = subprocess.Popen([sys.executable, "-m", "filler", "run", "--rate", "1"], env=down, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=REPO)
    time.sleep(8)
    assert proc.poll() is None, "the filler waits for PostgreSQL"
    proc.terminate()
    output, _ = proc.communicate(timeout=60)
    assert "unavailable" in output and "retrying in" in output, output[-2000:]
    wrong = subprocess.run([sys.executable, "-m", "filler", "run", "--rate", "1"],
                           env={**filler_env, "DB_PASSWORD": "not-the-password"}, capture_output=True, text=True,
                           timeout=60, cwd=REPO)
    assert wrong.returncode == 2, wrong.stdout + wrong.stderr
    assert "DB_PASSWORD" in wrong.stderr and "password authentication failed" in wrong.stderr, wrong.stderr
