"""The local stack as a whole: services in dependency order, up/down/status."""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping

from bankcdc_stack.environment import airflow_connections, client_environment
from bankcdc_stack.errors import ConfigError, StackError
from bankcdc_stack.process import port_is_listening
from bankcdc_stack.secrets import load_secrets
from bankcdc_stack.services.airflow import AirflowService
from bankcdc_stack.services.base import Health, Service, StackContext, log
from bankcdc_stack.services.clickhouse import ClickHouseService
from bankcdc_stack.services.connect import ConnectService
from bankcdc_stack.services.filler import FillerService
from bankcdc_stack.services.consumer import ConsumerService
from bankcdc_stack.services.kafka import KafkaService
from bankcdc_stack.services.postgres import PostgresService
from bankcdc_stack.settings import StackSettings

SERVICE_CLASSES: tuple[type[Service], ...] = (
    PostgresService,
    KafkaService,
    ClickHouseService,
    ConnectService,
    ConsumerService,
    AirflowService,
    FillerService,
)
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "connect": ("kafka", "postgres"),
    "consumer": ("kafka", "clickhouse"),
    "airflow": ("postgres",),
    "filler": ("postgres",),
}


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pids: list[int | None]
    ports: list[int]
    health: Health
    memory_bytes: int


class Stack:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        """`env` defaults to os.environ; tests pass their own to run an isolated stack."""
        base = dict(os.environ if env is None else env)
        self.settings = StackSettings.from_env(base)
        secrets = load_secrets(self.settings.state_dir, base)
        env = {**base, **client_environment(self.settings, secrets), **airflow_connections(self.settings, secrets)}
        self.ctx = StackContext(self.settings, secrets, env)
        self.services: dict[str, Service] = {cls.name: cls(self.ctx) for cls in SERVICE_CLASSES}

    def resolve(self, names: list[str] | None) -> list[Service]:
        """The named services plus what they depend on, in start order (what `up` starts)."""
        return self._closure(names, lambda name: DEPENDS_ON.get(name, ()))

    def dependents(self, names: list[str] | None) -> list[Service]:
        """The named services plus what cannot run without them, in start order (what
        `down --with-dependents` stops); never what they depend on."""
        return self._closure(names, lambda name: [n for n, deps in DEPENDS_ON.items() if name in deps])

    def _closure(self, names: list[str] | None, follow: Callable[[str], Iterable[str]]) -> list[Service]:
        if not names:
            return list(self.services.values())
        unknown = [n for n in names if n not in self.services]
        if unknown:
            raise ConfigError(f"unknown service {', '.join(unknown)}: choose from {', '.join(self.services)}")
        wanted: set[str] = set()
        pending = list(names)
        while pending:
            name = pending.pop()
            if name not in wanted:
                wanted.add(name)
                pending.extend(follow(name))
        return [svc for name, svc in self.services.items() if name in wanted]

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.settings.state_dir / "stack.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def up(self, names: list[str] | None = None) -> float:
        started = time.monotonic()
        with self._lock():
            for svc in self.resolve(names):
                t0 = time.monotonic()
                log.info("%-10s starting ...", svc.name)
                outcome = svc.start()
                log.info("%-10s %s, healthy in %.1fs", svc.name, outcome, time.monotonic() - t0)
        return time.monotonic() - started

    def down(self, names: list[str] | None = None, with_dependents: bool = False) -> list[int]:
        """Stop the named services (all when none are named), and with `with_dependents` what
        cannot run without them, in reverse start order; never what they depend on. Returns the
        stopped services' ports still listening (should be none)."""
        with self._lock():
            if not names:
                targets = list(self.services.values())
            elif with_dependents:
                targets = self.dependents(names)
            else:
                targets = self._closure(names, lambda name: ())
            for svc in reversed(targets):
                if svc.stop():
                    log.info("%-10s stopped", svc.name)
        return [port for svc in targets for port, _ in svc.ports() if port_is_listening(port)]

    def status(self) -> list[ServiceStatus]:
        rows = []
        for svc in self.services.values():
            procs = svc.processes()
            pids = [proc.pid() for proc in procs]
            health = svc.health() if any(pids) else Health(False, "stopped")
            rows.append(ServiceStatus(svc.name, pids, [p for p, _ in svc.ports()], health,
                                      sum(proc.memory_bytes() for proc in procs)))
        return rows


__all__ = ["Stack", "StackError", "ServiceStatus"]
