"""ClickHouse: locally, chDB served over ClickHouse's HTTP interface by `chdb_http`."""

from __future__ import annotations

import sys
from pathlib import Path

import requests

from bankcdc_stack.process import ManagedProcess
from bankcdc_stack.services.base import Health, Service, log
from bankcdc_stack.sqlfiles import apply_clickhouse_folder, drop_clear_pii_models, unpartition_raw_tables
from bankcdc_stack.settings import HOST


class ClickHouseService(Service):
    name = "clickhouse"
    start_timeout = 60.0

    @property
    def data_dir(self) -> Path:
        return self.settings.state_dir / "clickhouse"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.settings.clickhouse_port}"

    def ports(self) -> list[tuple[int, str]]:
        return [(self.settings.clickhouse_port, "CLICKHOUSE_PORT")]

    def processes(self) -> list[ManagedProcess]:
        return [self.ctx.managed("clickhouse")]

    def launch(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "chdb_http",
                "--host", HOST, "--port", str(self.settings.clickhouse_port),
                "--data-dir", str(self.data_dir),
                "--users-file", str(self.settings.repo_root / "clickhouse_init" / "users.xml")]
        # users.xml takes every ClickHouse user's password from the environment (from_env)
        env = self.ctx.child_env("CLICKHOUSE_PASSWORD", "CLICKHOUSE_LOADER_PASSWORD",
                                 "CLICKHOUSE_TRANSFORMER_PASSWORD", "CLICKHOUSE_ANALYST_PASSWORD")
        self.processes()[0].spawn(argv, env=env, cwd=self.settings.repo_root)

    def health(self) -> Health:
        try:
            response = requests.get(f"{self.url}/ping", timeout=2)
        except requests.RequestException as exc:
            return Health(False, type(exc).__name__)
        if response.status_code != 200 or response.text != "Ok.\n":
            return Health(False, f"/ping answered {response.status_code} {response.text[:80]!r}")
        return Health(True, "/ping Ok.")

    def after_healthy(self) -> None:
        """Databases, raw tables and monitoring tables from clickhouse_init/ (idempotent DDL)."""
        login = (HOST, self.settings.clickhouse_port, "default", self.ctx.secrets["CLICKHOUSE_PASSWORD"])
        count = apply_clickhouse_folder(self.settings.repo_root / "clickhouse_init", *login)
        log.info("clickhouse: applied %d statements from clickhouse_init/", count)
        dropped = drop_clear_pii_models(*login)
        if dropped:
            log.info("clickhouse: dropped %s (clear PII from before card-data protection); "
                     "the next dbt run rebuilds them", ", ".join(dropped))
        if self.ctx.managed("consumer").pid() is not None:
            return  # raw tables are rebuilt only while nothing writes them: at the next start
        rebuilt = unpartition_raw_tables(*login)
        if rebuilt:
            log.info("clickhouse: rebuilt %s without partitioning (one part per consumer block)", ", ".join(rebuilt))
