"""The CDC consumer: Kafka topics -> ClickHouse raw tables (package cdc_consumer)."""

from __future__ import annotations

import sys

import requests

from bankcdc_stack.process import ManagedProcess
from bankcdc_stack.services.base import Health, Service
from bankcdc_stack.settings import HOST


class ConsumerService(Service):
    name = "consumer"
    start_timeout = 60.0

    def ports(self) -> list[tuple[int, str]]:
        return [(self.settings.consumer_metrics_port, "CONSUMER_METRICS_PORT")]

    def processes(self) -> list[ManagedProcess]:
        return [self.ctx.managed("consumer")]

    def launch(self) -> None:
        # supervised, as compose's restart policy does in production; a bad config (exit 2) is not retried
        argv = [sys.executable, "-m", "bankcdc_stack.supervise", "--", sys.executable, "-m", "cdc_consumer", "run"]
        env = self.ctx.child_env("CLICKHOUSE_LOADER_PASSWORD", "KAFKA_CONSUMER_PASSWORD")
        self.processes()[0].spawn(argv, env=env, cwd=self.settings.repo_root)

    def health(self) -> Health:
        try:
            response = requests.get(f"http://{HOST}:{self.settings.consumer_metrics_port}/metrics", timeout=2)
        except requests.RequestException as exc:
            return Health(False, type(exc).__name__)
        if response.status_code != 200:
            return Health(False, f"/metrics answered {response.status_code}")
        lines = response.text.splitlines()
        waiting = [line.split('"')[1] for line in lines
                   if line.startswith("cdc_waiting_for{") and float(line.split()[-1]) == 1]
        if waiting:
            return Health(False, f"waiting for {', '.join(waiting)} (see ./stack logs consumer)")
        rows = sum(float(line.split()[-1]) for line in lines if line.startswith("cdc_rows_loaded_total"))
        return Health(True, f"consuming, {rows:.0f} rows loaded since start")
