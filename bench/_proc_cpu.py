"""CPU seconds of process trees between two snapshots of /proc, for the benchmarks.

A process's CPU is its own (utime + stime) plus what its reaped children left in cutime + cstime,
so a tree's CPU over a window counts processes that started and ended inside it. Airflow's task
processes (the children of LocalExecutor's workers) are counted apart from Airflow's own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")
TASK_WORKER = "airflow worker -- LocalExecutor"   # LocalExecutor's pool worker: reaps task processes
TASK_PROCESS = "airflow worker -- "               # a task process (the worker's forked child)


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    own: float       # CPU seconds of the process itself
    reaped: float    # CPU seconds of its children it has waited for
    cmdline: str

    @property
    def is_task(self) -> bool:
        return self.cmdline.startswith(TASK_PROCESS) and not self.cmdline.startswith(TASK_WORKER)

    @property
    def reaps_tasks(self) -> bool:
        return self.cmdline.startswith(TASK_WORKER)


def snapshot() -> dict[int, Proc]:
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        procs[int(entry)] = Proc(int(entry), int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK,
                                 (int(fields[13]) + int(fields[14])) / TICK, cmdline)
    return procs


def tree(procs: dict[int, Proc], roots: list[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    seen, stack = set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid in seen or pid not in procs:
            continue
        seen.add(pid)
        stack.extend(children.get(pid, []))
    return seen


def usage(before: dict[int, Proc], after: dict[int, Proc], roots: list[int]) -> tuple[float, float]:
    """(CPU of the tree without task processes, CPU of task processes) between the snapshots."""
    own = tasks = 0.0
    members_before = tree(before, roots)
    members_after = tree(after, roots)
    for pid in members_after:
        now, then = after[pid], before.get(pid)
        delta_own = now.own - (then.own if then else 0.0)
        delta_reaped = now.reaped - (then.reaped if then else 0.0)
        if now.is_task:
            tasks += delta_own
        else:
            own += delta_own
        if now.reaps_tasks:
            tasks += delta_reaped
        else:
            own += delta_reaped
    for pid in members_before - members_after:   # ended in the window: reaped with their whole life
        if before[pid].is_task:
            tasks -= before[pid].own
        else:
            own -= before[pid].own + before[pid].reaped
    return own, tasks
