"""Typed settings of the local stack, read once from the environment and validated.

Every address the services use is loopback; every port has an environment
variable with a working default, so two stacks (or a stack and a test run) can
live side by side.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from bankcdc_stack.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"

_PORT_DEFAULTS: dict[str, int] = {
    "DB_PORT": 5432,
    "KAFKA_PORT": 9092,
    "KAFKA_CONTROLLER_PORT": 9093,
    "CONNECT_PORT": 8083,
    "CLICKHOUSE_PORT": 8123,
    "AIRFLOW_PORT": 8080,
    "CONSUMER_METRICS_PORT": 9464,
}
MAX_CONSUMER_INSTANCES = 8
_HEAP_RE = re.compile(r"^[1-9][0-9]*[mMgG]$")


def _port(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name, "").strip() or str(_PORT_DEFAULTS[name])
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(f"{name}={raw!r} is not a TCP port: set {name} to a number from 1 to 65535")
    return int(raw)


def _instances(env: Mapping[str, str]) -> int:
    raw = env.get("CONSUMER_INSTANCES", "").strip() or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_CONSUMER_INSTANCES:
        raise ConfigError(f"CONSUMER_INSTANCES={raw!r} is invalid: set it to the number of CDC consumer processes, "
                          f"1 to {MAX_CONSUMER_INSTANCES} (more than the topics' partitions leaves some idle)")
    return int(raw)


def _partitions(env: Mapping[str, str]) -> int:
    raw = env.get("CDC_TRANSACTION_PARTITIONS", "").strip() or "3"
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ConfigError(f"CDC_TRANSACTION_PARTITIONS={raw!r} is invalid: set it to the partition count of "
                          "topic bank.bank.transaction, 1 to 1000 (an existing topic only grows)")
    return int(raw)


def _heap(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, "").strip() or default
    if not _HEAP_RE.match(raw):
        raise ConfigError(f"{name}={raw!r} is not a JVM heap size: use a value like 512m or 1g")
    return raw


@dataclass(frozen=True)
class StackSettings:
    repo_root: Path
    state_dir: Path
    db_port: int
    kafka_port: int
    kafka_controller_port: int
    connect_port: int
    clickhouse_port: int
    airflow_port: int
    consumer_metrics_port: int
    consumer_instances: int
    transaction_partitions: int
    kafka_heap: str
    connect_heap: str

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def jvm_lib(self) -> Path:
        return self.repo_root / "jvm" / "lib"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "StackSettings":
        env = os.environ if env is None else env
        repo_root = Path(env.get("BANKCDC_HOME") or REPO_ROOT).resolve()
        state_dir = Path(env.get("BANKCDC_STATE_DIR") or repo_root / ".state").resolve()
        settings = cls(
            repo_root=repo_root,
            state_dir=state_dir,
            db_port=_port(env, "DB_PORT"),
            kafka_port=_port(env, "KAFKA_PORT"),
            kafka_controller_port=_port(env, "KAFKA_CONTROLLER_PORT"),
            connect_port=_port(env, "CONNECT_PORT"),
            clickhouse_port=_port(env, "CLICKHOUSE_PORT"),
            airflow_port=_port(env, "AIRFLOW_PORT"),
            consumer_metrics_port=_port(env, "CONSUMER_METRICS_PORT"),
            consumer_instances=_instances(env),
            transaction_partitions=_partitions(env),
            kafka_heap=_heap(env, "KAFKA_HEAP", "384m"),
            connect_heap=_heap(env, "CONNECT_HEAP", "512m"),
        )
        settings._check_distinct_ports()
        return settings

    def consumer_metrics_port_of(self, instance: int) -> int:
        """/metrics port of consumer instance `instance`, from 1: CONSUMER_METRICS_PORT, then the ports after it."""
        return self.consumer_metrics_port + instance - 1

    @property
    def consumer_metrics_ports(self) -> list[int]:
        """/metrics port of each configured consumer instance."""
        return [self.consumer_metrics_port_of(i) for i in range(1, self.consumer_instances + 1)]

    def _check_distinct_ports(self) -> None:
        seen: dict[int, str] = {}
        named = [(name, getattr(self, name.lower())) for name in _PORT_DEFAULTS]
        named += [(f"CONSUMER_METRICS_PORT+{i} (consumer instance {i + 1} of CONSUMER_INSTANCES)", port)
                  for i, port in enumerate(self.consumer_metrics_ports) if i]
        for name, port in named:
            if port > 65535:
                raise ConfigError(f"{name} is {port}, past 65535: lower CONSUMER_METRICS_PORT or CONSUMER_INSTANCES")
            if port in seen:
                raise ConfigError(f"{name} and {seen[port]} are both {port}: give each service its own port")
            seen[port] = name
