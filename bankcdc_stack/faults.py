"""Fault injection for the local stack: crash a part the way a machine or container does, then
bring it back with the stack's own start-up path.

A crash is `kill -9` of the part's process and every process it started (PostgreSQL's
backends, Airflow's task workers and the dbt they run), with no chance to flush or say goodbye.
Used by the fault tests (tests/integration/faults) and the fault benchmark (bench/faults.py).
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass

import psutil

from bankcdc_stack.errors import ConfigError
from bankcdc_stack.process import ManagedProcess
from bankcdc_stack.stack import Stack


@dataclass(frozen=True)
class Part:
    """A crashable part: a service of the stack, or one process of it (`process` set)."""

    name: str
    service: str
    process: str | None = None


PARTS: dict[str, Part] = {part.name: part for part in (
    Part("postgres", "postgres"),
    Part("kafka", "kafka"),
    Part("connect", "connect"),
    Part("consumer", "consumer"),
    Part("clickhouse", "clickhouse"),
    Part("airflow-scheduler", "airflow", "airflow-scheduler"),
)}


def part(name: str) -> Part:
    if name not in PARTS:
        raise ConfigError(f"unknown part {name!r}: choose from {', '.join(PARTS)}")
    return PARTS[name]


def _processes(stack: Stack, target: Part) -> list[ManagedProcess]:
    procs = stack.services[target.service].processes()
    return [proc for proc in procs if target.process in (None, proc.name)]


def crash(stack: Stack, name: str) -> list[int]:
    """SIGKILL the part and all its descendants at once; returns the pids killed (none: not running)."""
    target = part(name)
    victims: list[psutil.Process] = []
    for proc in _processes(stack, target):
        root = proc.process()
        if root is not None:
            victims += [root, *root.children(recursive=True)]
    for victim in victims:
        try:
            victim.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=10)
    return [victim.pid for victim in victims]


def is_down(stack: Stack, name: str) -> bool:
    return all(proc.pid() is None for proc in _processes(stack, part(name)))


def recover(stack: Stack, name: str) -> float:
    """Start the part again (what `./stack up` does after a crash); seconds until it is healthy."""
    started = time.monotonic()
    stack.up([part(name).service])
    return time.monotonic() - started
