"""Airflow 3: api-server, scheduler, dag-processor and triggerer; LocalExecutor; metadata in PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
import os
import subprocess
import sys
from pathlib import Path

import requests

from bankcdc_stack.environment import RUN_NOTES_USER
from bankcdc_stack.errors import ServiceFailedError
from bankcdc_stack.process import ManagedProcess, require_free_port
from bankcdc_stack.services.base import Health, Service, log
from bankcdc_stack.settings import HOST
from bankcdc_ops.settings import DBT_POOL

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
SPARSE_POLLING = ("dag-processor", "triggerer")  # started through bankcdc_ops.sparse_polling
DBT_SOURCES = ("*.yml", "*.sql", "*.md")
DBT_ARTEFACTS = {"target", "logs", "dbt_packages"}


def project_digest(project: Path) -> str:
    """A digest of the dbt project's sources: when it changes, its manifest is parsed again."""
    digest = hashlib.sha256()
    for path in sorted(p for pattern in DBT_SOURCES for p in project.rglob(pattern)
                       if not DBT_ARTEFACTS & set(p.relative_to(project).parts) and not p.name.startswith(".")):
        digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
ADMIN_USER = "admin"


def dbt_state_dir(state_dir: Path) -> Path:
    return state_dir / "dbt"


def airflow_environment(ctx_env: dict[str, str], state_dir: Path, repo_root: Path, port: int,
                        db_port: int, secrets: dict[str, str]) -> dict[str, str]:
    """Everything Airflow's processes and `airflow` CLI calls need, as AIRFLOW__* variables."""
    home = state_dir / "airflow"
    base_url = f"http://{HOST}:{port}"
    return {
        **ctx_env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(repo_root / "airflow" / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        # LocalExecutor whose task processes inherit dbt and the tasks' other imports
        "AIRFLOW__CORE__EXECUTOR": "bankcdc_ops.executor.WarmLocalExecutor",
        # 2 cores: a handful of task processes, not the default 32
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__FERNET_KEY": secrets["AIRFLOW_FERNET_KEY"],
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin,{RUN_NOTES_USER}:user",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "simple_auth_manager_passwords.json"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
            f"postgresql+psycopg2://airflow:{secrets['AIRFLOW_DB_PASSWORD']}@{HOST}:{db_port}/airflow",
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets["AIRFLOW_API_SECRET_KEY"],
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets["AIRFLOW_JWT_SECRET"],
        # DAG files are parsed when they change (mtime) and otherwise every 10 minutes, not every
        # 30 s: re-parsing unchanged files was the dag-processor's whole cost on 2 cores
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__DAG_PROCESSOR__STALE_DAG_THRESHOLD": "900",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "600",
        # housekeeping loops of the scheduler and triggerer at a pace 2 cores can afford; health
        # thresholds (30 s) stay above the heartbeats
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "10",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "2",
        "AIRFLOW__SCHEDULER__PARSING_CLEANUP_INTERVAL": "300",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "60",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "10",
        # dbt_incremental renders from the manifest dbt_build keeps warm here (bankcdc_ops.dbt_manifest)
        "BANKCDC_DBT_STATE_DIR": ctx_env.get("BANKCDC_DBT_STATE_DIR") or str(dbt_state_dir(state_dir)),
        # scheduled DAGs run as soon as they are parsed; the test stack sets True (tests run
        # `airflow dags test` themselves and must not race scheduled runs)
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": ctx_env.get("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY": str(home / "logs" / "dag_processor"),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        # a task whose worker died with a crashed scheduler is failed (and retried) after a minute,
        # not the default five; orphans of a dead scheduler are reset as often
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "60",
        "AIRFLOW__TRIGGERER__CAPACITY": "100",
    }


class AirflowService(Service):
    name = "airflow"
    start_timeout = 180.0

    @property
    def home(self) -> Path:
        return self.settings.state_dir / "airflow"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.settings.airflow_port}"

    def env(self) -> dict[str, str]:
        # Airflow reaches PostgreSQL, ClickHouse, Kafka and Connect only through its connections
        # (AIRFLOW_CONN_*); no other password of the stack is in its processes' environment
        own = self.ctx.child_env("AIRFLOW_FERNET_KEY", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_JWT_SECRET",
                                 airflow_connections=True)
        return airflow_environment(own, self.settings.state_dir, self.settings.repo_root,
                                   self.settings.airflow_port, self.settings.db_port, dict(self.ctx.secrets))

    def ports(self) -> list[tuple[int, str]]:
        return [(self.settings.airflow_port, "AIRFLOW_PORT")]

    def processes(self) -> list[ManagedProcess]:
        return [self.ctx.managed(f"airflow-{component}") for component in COMPONENTS]

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "plugins").mkdir(exist_ok=True)
        passwords = self.home / "simple_auth_manager_passwords.json"
        fd = os.open(passwords, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({ADMIN_USER: self.ctx.secrets["AIRFLOW_ADMIN_PASSWORD"],
                       RUN_NOTES_USER: self.ctx.secrets["AIRFLOW_RUN_NOTES_PASSWORD"]}, handle)
        self._parse_dbt_project()
        marker = self.home / ".migrated"
        airflow_version = version("apache-airflow")  # not `import airflow`: it reconfigures logging
        if marker.exists() and marker.read_text() == airflow_version:
            self._ensure_pool()
            return
        log.info("airflow: migrating the metadata database (first start takes a minute)")
        self._airflow("db", "migrate")
        marker.write_text(airflow_version)
        self._ensure_pool()

    def _ensure_pool(self) -> None:
        """The one-slot pool that keeps dbt builds and the dbt test suite apart."""
        marker = self.home / f".pool-{DBT_POOL}"
        if not marker.exists():
            self._airflow("pools", "set", DBT_POOL, "1", "dbt builds and the dbt test suite, one at a time")
            marker.write_text("1")

    def _airflow(self, *args: str) -> None:
        result = subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env(), capture_output=True, text=True)
        if result.returncode != 0:
            raise ServiceFailedError(f"`airflow {' '.join(args)}` failed:\n{result.stdout[-2000:]}\n"
                                     f"{result.stderr[-4000:]}")

    def _parse_dbt_project(self) -> None:
        """The manifest dbt_incremental renders from, parsed again when the dbt project changed."""
        from bankcdc_ops.dbt_cli import parse_project

        target = dbt_state_dir(self.settings.state_dir)
        digest = project_digest(self.settings.repo_root / "dbt")
        marker = target / ".parsed"
        if (target / "manifest.json").exists() and marker.exists() and marker.read_text() == digest:
            return
        log.info("airflow: parsing the dbt project (the manifest dbt_incremental renders from)")
        target.mkdir(parents=True, exist_ok=True)
        result = parse_project(dict(self.ctx.env), target)
        if not result.ok:
            raise ServiceFailedError(f"`dbt parse` failed:\n{result.tail()}")
        marker.write_text(digest)

    def start(self) -> str:
        """After one component crashed (the scheduler, say), start that one alone: the others keep
        serving, and the tasks they supervise keep running."""
        missing = [component for component, proc in zip(COMPONENTS, self.processes()) if proc.pid() is None]
        if not missing or len(missing) == len(COMPONENTS):
            return super().start()
        if "api-server" in missing:
            require_free_port(self.settings.airflow_port, "AIRFLOW_PORT", self.name)
        log.info("airflow: %s not running, starting %s", ", ".join(missing), "it" if len(missing) == 1 else "them")
        self.launch(missing)
        self.wait_healthy()
        return f"restarted {', '.join(missing)}"

    def launch(self, components: list[str] | None = None) -> None:
        env = self.env()
        for component, proc in zip(COMPONENTS, self.processes()):
            if components is not None and component not in components:
                continue
            # supervised: a component that exits (PostgreSQL, its metadata DB, went away) starts again
            # the dag-processor and triggerer with their metadata-DB housekeeping spaced out
            module = "bankcdc_ops.sparse_polling" if component in SPARSE_POLLING else "airflow"
            argv = [sys.executable, "-m", "bankcdc_stack.supervise", "--", sys.executable, "-m", module, component]
            if component == "api-server":
                argv += ["--host", HOST, "--port", str(self.settings.airflow_port), "--workers", "1"]
            elif component in ("scheduler", "triggerer"):
                # their log servers bind every interface; LocalExecutor's logs are local files anyway
                argv += ["--skip-serve-logs"]
            proc.spawn(argv, env=env, cwd=self.home)

    def health(self) -> Health:
        try:
            response = requests.get(f"{self.url}/api/v2/monitor/health", timeout=3)
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            return Health(False, type(exc).__name__)
        unhealthy = [part for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
                     if (body.get(part) or {}).get("status") != "healthy"]
        if unhealthy:
            return Health(False, f"not yet healthy: {', '.join(unhealthy)}")
        return Health(True, "api-server, scheduler, triggerer, dag-processor healthy")
