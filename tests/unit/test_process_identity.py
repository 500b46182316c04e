"""A pid file names its process by start ticks, so a stepped wall clock does not orphan it."""

from __future__ import annotations

import json
import sys

import psutil

from bankcdc_stack.process import ManagedProcess, start_ticks


def test_a_pid_file_still_names_its_process_after_the_clock_moved(tmp_path, monkeypatch) -> None:
    proc = ManagedProcess("sleeper", tmp_path / "run", tmp_path / "sleeper.log")
    pid = proc.spawn([sys.executable, "-c", "import time; time.sleep(60)"], env={})
    try:
        assert proc.pid() == pid and json.loads(proc.pidfile.read_text())["start_ticks"] == start_ticks(pid)
        real = psutil.Process.create_time
        monkeypatch.setattr(psutil.Process, "create_time", lambda self: real(self) + 28.0)  # the clock stepped
        assert proc.pid() == pid, "the process is still found"
        record = json.loads(proc.pidfile.read_text())
        proc.pidfile.write_text(json.dumps({**record, "start_ticks": record["start_ticks"] + 1}))
        assert proc.pid() is None, "a different start is a different process (a reused pid)"
        proc.pidfile.write_text(json.dumps(record))
    finally:
        assert proc.stop(timeout=10)
    assert proc.pid() is None and not proc.pidfile.exists()
