"""The local stack's restart wrapper: what compose's `restart: unless-stopped` does in production."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = "import pathlib, sys; p = pathlib.Path(sys.argv[1]); n = int(p.read_text() or 0) + 1; p.write_text(str(n)); " \
         "sys.exit(0 if n >= int(sys.argv[2]) else int(sys.argv[3]))"


def supervise(tmp_path: Path, succeed_on_run: int, failure_code: int) -> tuple[int, int, str]:
    counter = tmp_path / "runs"
    counter.write_text("")
    out = subprocess.run([sys.executable, "-m", "bankcdc_stack.supervise", "--", sys.executable, "-c", SCRIPT,
                          str(counter), str(succeed_on_run), str(failure_code)],
                         capture_output=True, text=True, timeout=60)
    return out.returncode, int(counter.read_text()), out.stderr


def test_a_command_that_crashes_is_started_again_until_it_ends_well(tmp_path: Path) -> None:
    code, runs, log = supervise(tmp_path, succeed_on_run=2, failure_code=1)
    assert (code, runs) == (0, 2)
    assert "exited 1 after 0s: restarting it in 2s" in log


def test_a_configuration_error_is_not_retried(tmp_path: Path) -> None:
    code, runs, log = supervise(tmp_path, succeed_on_run=5, failure_code=2)
    assert (code, runs) == (2, 1)
    assert "exited 2 (configuration error): not restarting it" in log
