"""Start, find and stop detached service processes by pidfile.

Each service runs in its own session (process group), so stopping it stops
every child it forked (Airflow's workers, uvicorn) and `down` leaves nothing
behind. A pidfile records the pid and its start time, so a recycled pid is
never mistaken for ours.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import psutil

from bankcdc_stack.errors import PortInUseError


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_free_port(port: int, setting: str, service: str) -> None:
    if not port_is_free(port):
        raise PortInUseError(
            f"port {port} ({setting}) is already in use by another process, so {service} cannot start: "
            f"stop that process (see `ss -ltnp 'sport = :{port}'`) or set {setting} to a free port"
        )


def start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (/proc/<pid>/stat, field 22).

    Unlike psutil's create_time, which adds the ticks to the boot time as the wall clock gives it
    now, this does not move when the clock is stepped (NTP, a VM resumed): a pid file keeps
    naming its process however the clock moved.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[19])


@dataclass
class ManagedProcess:
    """One long-running process of the stack, tracked through `<run_dir>/<name>.pid`."""

    name: str
    run_dir: Path
    log_path: Path

    @property
    def pidfile(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    def process(self) -> psutil.Process | None:
        try:
            record = json.loads(self.pidfile.read_text())
            proc = psutil.Process(record["pid"])
            if "start_ticks" in record:
                same = start_ticks(proc.pid) == record["start_ticks"]
            else:  # a pid file of an older stack
                same = abs(proc.create_time() - record["started"]) <= 1.0
            if not same or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (FileNotFoundError, ValueError, KeyError, psutil.Error):
            return None

    def pid(self) -> int | None:
        proc = self.process()
        return proc.pid if proc else None

    def spawn(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path | None = None,
        user: str | None = None,
    ) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab", buffering=0) as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}: {argv[0]}\n".encode())
            proc = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=user,
                group=user,
            )
        started = psutil.Process(proc.pid).create_time()
        self.pidfile.write_text(json.dumps({"pid": proc.pid, "started": started, "start_ticks": start_ticks(proc.pid),
                                            "argv": list(argv)}))
        return proc.pid

    def memory_bytes(self) -> int:
        """Proportional memory (PSS) of the process and its descendants: shared pages counted once."""
        proc = self.process()
        if proc is None:
            return 0
        total = 0
        for member in [proc, *proc.children(recursive=True)]:
            try:
                total += member.memory_full_info().pss
            except psutil.Error:
                pass
        return total

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> bool:
        """Signal the process group, wait, then SIGKILL what is left. True if something ran."""
        proc = self.process()
        if proc is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        members = [proc, *proc.children(recursive=True)]
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        _, alive = psutil.wait_procs(members, timeout=timeout)
        for member in alive:
            try:
                member.kill()
            except psutil.Error:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        psutil.wait_procs(alive, timeout=5)
        self.pidfile.unlink(missing_ok=True)
        return True
