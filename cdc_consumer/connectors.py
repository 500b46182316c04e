"""Register Debezium connectors through the Kafka Connect REST API: create-or-update, wait for RUNNING.

`PUT /connectors/<name>/config` creates a connector or updates it in place,
so registering twice is harmless. Secrets stay `${env:NAME}` references that
the Connect worker's EnvVarConfigProvider resolves; they never appear here.
The REST API asks for credentials (Connect's basic-auth extension): user
CONNECT_REST_USER, password CONNECT_REST_PASSWORD, both from the environment.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import requests

from cdc_consumer.errors import ConfigError, ConnectorError

log = logging.getLogger("cdc_consumer.connectors")


@dataclass(frozen=True)
class ConnectorSpec:
    name: str
    config: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> "ConnectorSpec":
        try:
            body = json.loads(path.read_text())
            return cls(body["name"], {k: str(v) for k, v in body["config"].items()})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConnectorError(f"{path}: not a Connect payload {{\"name\", \"config\"}}: {exc}") from exc


def load_specs(directory: Path) -> list[ConnectorSpec]:
    specs = [ConnectorSpec.load(path) for path in sorted(directory.glob("*.json"))]
    if not specs:
        raise ConnectorError(f"no connector JSON in {directory}")
    return specs


CREDENTIALS_HELP = "credentials from env CONNECT_REST_USER (default connect-admin) and CONNECT_REST_PASSWORD"


def rest_auth_from_env(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(user, password) for Connect's REST API; ConfigError naming the missing setting."""
    env = os.environ if env is None else env
    user, password = env.get("CONNECT_REST_USER", "connect-admin"), env.get("CONNECT_REST_PASSWORD", "")
    if not password:
        raise ConfigError("CONNECT_REST_PASSWORD is not set: Kafka Connect's REST API requires credentials; "
                          "set it to the password of CONNECT_REST_USER (./stack env prints the local one)")
    return user, password


class ConnectClient:
    def __init__(self, url: str, auth: tuple[str, str], timeout: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self.auth = auth
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs: object) -> requests.Response:
        try:
            response = requests.request(method, f"{self.url}{path}", auth=self.auth, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ConnectorError(f"Kafka Connect at {self.url} not reachable ({type(exc).__name__}); "
                                 "is it running? (./stack status)") from exc
        if response.status_code in (401, 403):
            raise ConfigError(f"Kafka Connect at {self.url} refused user {self.auth[0]!r} ({response.status_code}): "
                              "check CONNECT_REST_USER and CONNECT_REST_PASSWORD")
        return response

    def put_config(self, spec: ConnectorSpec) -> str:
        response = self._call("PUT", f"/connectors/{spec.name}/config", json=spec.config)
        if response.status_code not in (200, 201):
            try:
                reason = str(response.json().get("message") or response.text)
            except ValueError:
                reason = response.text
            message = (f"connector {spec.name} refused by Kafka Connect ({response.status_code}); "
                       f"fix its config in debezium/{spec.name}.json or the environment it reads:\n{reason}")
            # 4xx: Connect validated the config and said no, a wrong setting (exit 2, no retry helps);
            # 5xx: Connect itself is in trouble (e.g. Kafka unreachable), worth retrying
            raise (ConfigError if response.status_code < 500 else ConnectorError)(message)
        return "created" if response.status_code == 201 else "updated"

    def status(self, name: str) -> dict | None:
        response = self._call("GET", f"/connectors/{name}/status")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def pause(self, name: str) -> None:
        self._call("PUT", f"/connectors/{name}/pause").raise_for_status()

    def resume(self, name: str) -> None:
        self._call("PUT", f"/connectors/{name}/resume").raise_for_status()

    def restart_failed(self, name: str) -> None:
        self._call("POST", f"/connectors/{name}/restart?includeTasks=true&onlyFailed=true")

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/connectors/{name}")

    def wait_running(self, name: str, timeout: float = 120.0, grace: float = 10.0) -> dict:
        """Wait until the connector and its tasks run; FAILED counts once `grace` seconds have passed,
        since right after a config update Connect may still report the previous run's failure."""
        started = time.monotonic()
        deadline = started + timeout
        status: dict | None = None
        while time.monotonic() < deadline:
            status = self.status(name)
            if status:
                states = [status["connector"]["state"]] + [task["state"] for task in status.get("tasks", [])]
                failed = [task for task in status.get("tasks", []) if task["state"] == "FAILED"]
                settled = time.monotonic() - started >= min(grace, timeout)
                if (status["connector"]["state"] == "FAILED" or failed) and settled:
                    trace = (failed[0] if failed else status["connector"]).get("trace", "(no trace)")
                    raise ConnectorError(f"connector {name} FAILED:\n{trace}")
                if status.get("tasks") and set(states) == {"RUNNING"}:
                    return status
            time.sleep(0.5)
        raise ConnectorError(f"connector {name} not RUNNING after {timeout:.0f}s: {status}")


def register_all(connect_url: str, directory: Path, auth: tuple[str, str], timeout: float = 120.0) -> list[str]:
    client = ConnectClient(connect_url, auth)
    done = []
    for spec in load_specs(directory):
        outcome = client.put_config(spec)
        client.restart_failed(spec.name)  # a task FAILED before (e.g. on the old config) runs again
        client.wait_running(spec.name, timeout)
        log.info("connector %s %s and RUNNING", spec.name, outcome)
        done.append(spec.name)
    return done
