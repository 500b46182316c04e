"""ClickHouse conformance fixtures.

With CLICKHOUSE_HOST set, the suite runs against that server (CLICKHOUSE_PORT,
default 8123; passwords from CLICKHOUSE_PASSWORD, CLICKHOUSE_LOADER_PASSWORD,
CLICKHOUSE_TRANSFORMER_PASSWORD, CLICKHOUSE_ANALYST_PASSWORD). Otherwise it
starts ``chdb-http`` on a free port with a temporary data directory.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

PASSWORD_ENV = {
    "default": "CLICKHOUSE_PASSWORD",
    "loader": "CLICKHOUSE_LOADER_PASSWORD",
    "transformer": "CLICKHOUSE_TRANSFORMER_PASSWORD",
    "analyst": "CLICKHOUSE_ANALYST_PASSWORD",
}
REPO = Path(__file__).resolve().parents[3]


@dataclass
class Endpoint:
    """Where the ClickHouse under test listens and who may log in."""

    host: str
    port: int
    passwords: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, user: str = "default", **kwargs: object) -> Client:
        import clickhouse_connect

        return clickhouse_connect.get_client(
            host=self.host, port=self.port, username=user, password=self.passwords[user], **kwargs
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ping(url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"chdb-http exited with {proc.returncode} before answering /ping")
        try:
            with urllib.request.urlopen(url + "/ping", timeout=2) as resp:
                if resp.read() == b"Ok.\n":
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url}/ping did not answer within {timeout}s")


def endpoint_env(passwords: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update({PASSWORD_ENV[u]: p for u, p in passwords.items()})
    env.pop("CLICKHOUSE_HOST", None)
    return env


def start_endpoint(data_dir: Path, passwords: dict[str, str], log_path: Path, port: int | None = None) -> Endpoint:
    """Start chdb-http as a subprocess and wait until /ping answers."""
    port = port or free_port()
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "chdb_http", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)],
        env=endpoint_env(passwords),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    ep = Endpoint("127.0.0.1", port, passwords, proc, log_path)
    try:
        wait_ping(ep.url, proc=proc)
    except Exception:
        proc.kill()
        raise
    return ep


def stop_endpoint(ep: Endpoint, timeout: float = 30.0) -> int:
    assert ep.process is not None
    ep.process.terminate()
    try:
        return ep.process.wait(timeout)
    except subprocess.TimeoutExpired:
        ep.process.kill()
        ep.process.wait()
        raise


def generated_passwords() -> dict[str, str]:
    return {u: secrets.token_urlsafe(12) for u in PASSWORD_ENV}


@pytest.fixture(scope="session")
def ch_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """The ClickHouse HTTP endpoint under test (a real server if CLICKHOUSE_HOST is set)."""
    host = os.environ.get("CLICKHOUSE_HOST")
    if host:
        ep = Endpoint(host, int(os.environ.get("CLICKHOUSE_PORT", "8123")), {u: os.environ.get(v, "") for u, v in PASSWORD_ENV.items()})
        wait_ping(ep.url)
        yield ep
        return
    base = tmp_path_factory.mktemp("chdb_http")
    ep = start_endpoint(base / "data", generated_passwords(), base / "endpoint.log")
    yield ep
    assert stop_endpoint(ep) == 0, (base / "endpoint.log").read_text()[-3000:]


@pytest.fixture
def marts_table(ch_endpoint: Endpoint) -> Iterator[str]:
    """An empty table ``marts.it_<id> (a UInt8)`` (marts: what the analyst may read), dropped afterwards."""
    name = f"marts.it_{uuid.uuid4().hex[:12]}"
    admin = ch_endpoint.client()
    admin.command("CREATE DATABASE IF NOT EXISTS marts")
    admin.command(f"CREATE TABLE {name} (a UInt8) ENGINE = MergeTree ORDER BY a")
    yield name
    admin.command(f"DROP TABLE IF EXISTS {name}")
    admin.close()


@pytest.fixture
def database(ch_endpoint: Endpoint) -> Iterator[str]:
    """A database unique to this test, dropped afterwards."""
    name = f"it_{uuid.uuid4().hex[:12]}"
    admin = ch_endpoint.client()
    admin.command(f"CREATE DATABASE {name}")
    yield name
    admin.command(f"DROP DATABASE IF EXISTS {name}")
    admin.close()
