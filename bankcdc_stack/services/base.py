"""What every service of the local stack offers the orchestrator."""

from __future__ import annotations

import logging
import signal
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Mapping

from bankcdc_stack.errors import ServiceFailedError
from bankcdc_stack.process import ManagedProcess, require_free_port
from bankcdc_stack.settings import StackSettings

log = logging.getLogger("bankcdc_stack")


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str


@dataclass
class StackContext:
    settings: StackSettings
    secrets: Mapping[str, str]
    env: Mapping[str, str] = field(default_factory=dict)
    """The environment every child process gets: os.environ plus the stack's addresses and secrets."""

    def child_env(self, *secrets: str, airflow_connections: bool = False) -> dict[str, str]:
        """``env`` without the secrets (and Airflow connection URIs) a process does not use, so no
        local component holds another's password: least privilege between the stack's processes."""
        drop = set(self.secrets) - set(secrets)
        return {key: value for key, value in self.env.items()
                if key not in drop and (airflow_connections or not key.startswith("AIRFLOW_CONN_"))}

    def managed(self, name: str) -> ManagedProcess:
        return ManagedProcess(name, self.settings.run_dir, self.settings.logs_dir / f"{name}.log")


class Service(ABC):
    """A part of the pipeline: installed, started, health-checked and stopped by the stack."""

    name: str
    start_timeout: float = 120.0

    def __init__(self, ctx: StackContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings

    @abstractmethod
    def ports(self) -> list[tuple[int, str]]:
        """(port, setting name) pairs this service listens on."""

    @abstractmethod
    def processes(self) -> list[ManagedProcess]:
        """The processes that make up this service, in start order."""

    @abstractmethod
    def health(self) -> Health:
        """A real request to the service; never raises."""

    def check_installed(self) -> None:
        """Raise MissingDependencyError naming what is missing and how to install it."""

    def prepare(self) -> None:
        """One-time initialisation before the first start (formatting storage, config files)."""

    @abstractmethod
    def launch(self) -> None:
        """Spawn the processes (ports already checked free)."""

    def after_healthy(self) -> None:
        """Idempotent set-up that needs the service answering (users, schemas, connectors)."""

    def is_running(self) -> bool:
        return any(proc.pid() for proc in self.processes())

    def start(self) -> str:
        """Start if needed and wait until healthy; returns what was done."""
        if all(proc.pid() for proc in self.processes()):
            self.wait_healthy()
            self.after_healthy()
            return "already running"
        if self.is_running():
            log.info("%s: partly running, restarting it", self.name)
            self.stop()
        self.check_installed()
        for port, setting in self.ports():
            require_free_port(port, setting, self.name)
        self.prepare()
        self.launch()
        self.wait_healthy()
        self.after_healthy()
        return "started"

    def wait_healthy(self) -> Health:
        deadline = time.monotonic() + self.start_timeout
        health = self.health()
        while not health.ok:
            dead = [proc.name for proc in self.processes() if proc.pid() is None]
            if dead:
                raise ServiceFailedError(
                    f"{self.name}: process {', '.join(dead)} exited during start-up ({health.detail}); "
                    f"see its log: {self._log_hint()}"
                )
            if time.monotonic() > deadline:
                raise ServiceFailedError(
                    f"{self.name} not healthy after {self.start_timeout:.0f}s ({health.detail}); see {self._log_hint()}"
                )
            time.sleep(0.5)
            health = self.health()
        return health

    def stop(self) -> bool:
        stopped = False
        for proc in reversed(self.processes()):
            stopped = proc.stop(self.stop_signal(proc)) or stopped
        return stopped

    def stop_signal(self, proc: ManagedProcess) -> int:
        return signal.SIGTERM

    def _log_hint(self) -> str:
        return ", ".join(str(proc.log_path) for proc in self.processes())
