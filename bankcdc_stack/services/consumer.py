"""The CDC consumer: Kafka topics -> ClickHouse raw tables (package cdc_consumer).

CONSUMER_INSTANCES processes share one consumer group, so Kafka spreads the topics' partitions
over them; instance i serves /metrics on CONSUMER_METRICS_PORT + i - 1.
"""

from __future__ import annotations

import sys

import requests

from bankcdc_stack.process import ManagedProcess, require_free_port
from bankcdc_stack.services.base import Health, Service
from bankcdc_stack.settings import HOST, MAX_CONSUMER_INSTANCES


def instance_name(index: int) -> str:
    """The process name (and log file) of instance `index`, from 1: the first keeps plain `consumer`."""
    return "consumer" if index == 1 else f"consumer-{index}"


class ConsumerService(Service):
    name = "consumer"
    start_timeout = 60.0

    def _indexes(self) -> list[int]:
        """The configured instances, then any still running past a CONSUMER_INSTANCES lowered (or
        not exported) since they started: status, logs and stop see every live consumer."""
        configured = self.settings.consumer_instances
        extra = [i for i in range(configured + 1, MAX_CONSUMER_INSTANCES + 1)
                 if self.ctx.managed(instance_name(i)).pid() is not None]
        return [*range(1, configured + 1), *extra]

    def _configured(self) -> list[tuple[ManagedProcess, int]]:
        """(process, /metrics port) of each instance CONSUMER_INSTANCES asks for."""
        return [(self.ctx.managed(instance_name(i)), self.settings.consumer_metrics_port_of(i))
                for i in range(1, self.settings.consumer_instances + 1)]

    def ports(self) -> list[tuple[int, str]]:
        return [(self.settings.consumer_metrics_port_of(i),
                 "CONSUMER_METRICS_PORT" if i == 1 else f"CONSUMER_METRICS_PORT+{i - 1}")
                for i in self._indexes()]

    def processes(self) -> list[ManagedProcess]:
        return [self.ctx.managed(instance_name(i)) for i in self._indexes()]

    def start(self) -> str:
        """Start the instances that are not running beside those that are: raising CONSUMER_INSTANCES
        adds consumers to the group without stopping the others (the group rebalances)."""
        instances = self._configured()
        missing = [(proc, port) for proc, port in instances if proc.pid() is None]
        if not missing or len(missing) == len(instances):
            return super().start()
        for proc, port in missing:
            require_free_port(port, f"CONSUMER_METRICS_PORT (instance {proc.name})", self.name)
        self._spawn(missing)
        self.wait_healthy()
        return f"started {', '.join(proc.name for proc, _ in missing)} beside the running instances"

    def launch(self) -> None:
        self._spawn(self._configured())

    def _spawn(self, instances: list[tuple[ManagedProcess, int]]) -> None:
        # supervised, as compose's restart policy does in production; a bad config (exit 2) is not retried
        argv = [sys.executable, "-m", "bankcdc_stack.supervise", "--", sys.executable, "-m", "cdc_consumer", "run"]
        env = self.ctx.child_env("CLICKHOUSE_LOADER_PASSWORD", "KAFKA_CONSUMER_PASSWORD")
        for proc, port in instances:
            proc.spawn(argv, env={**env, "CONSUMER_METRICS_PORT": str(port), "CDC_CLIENT_ID": f"cdc-{proc.name}"},
                       cwd=self.settings.repo_root)

    def health(self) -> Health:
        loaded = 0.0
        indexes = self._indexes()
        for index in indexes:
            proc, port = self.ctx.managed(instance_name(index)), self.settings.consumer_metrics_port_of(index)
            try:
                response = requests.get(f"http://{HOST}:{port}/metrics", timeout=2)
            except requests.RequestException as exc:
                return Health(False, f"{proc.name}: {type(exc).__name__}")
            if response.status_code != 200:
                return Health(False, f"{proc.name}: /metrics answered {response.status_code}")
            lines = response.text.splitlines()
            waiting = [line.split('"')[1] for line in lines
                       if line.startswith("cdc_waiting_for{") and float(line.split()[-1]) == 1]
            if waiting:
                return Health(False, f"{proc.name}: waiting for {', '.join(waiting)} (see ./stack logs {proc.name})")
            loaded += sum(float(line.split()[-1]) for line in lines if line.startswith("cdc_rows_loaded_total"))
        count = len(indexes)
        return Health(True, f"consuming{f' as {count} instances' if count > 1 else ''}, "
                            f"{loaded:.0f} rows loaded since start")
