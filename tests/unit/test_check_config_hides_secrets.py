"""Every CLI's check-config prints its settings and never a secret (passwords only as set/empty)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bankcdc_stack.secrets import SECRET_NAMES

SECRETS = {name: f"s3cret-{name.lower()}-value" for name in SECRET_NAMES} | {"DB_PASSWORD": "s3cret-db-password"}
CHECKS = {
    "cdc-consumer": [sys.executable, "-m", "cdc_consumer", "check-config"],
    "filler": [sys.executable, "-m", "filler", "check-config"],
    "chdb-http": [sys.executable, "-m", "chdb_http", "--check-config", "--data-dir", "{tmp}"],
}


@pytest.mark.parametrize("cli", sorted(CHECKS))
def test_check_config_prints_no_secret(cli: str, tmp_path: Path) -> None:
    argv = [arg.format(tmp=tmp_path) for arg in CHECKS[cli]]
    out = subprocess.run(argv, env={**os.environ, **SECRETS}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    printed = out.stdout + out.stderr
    assert printed.strip(), "it printed its settings"
    leaked = [name for name, value in SECRETS.items() if value in printed]
    assert not leaked, f"{cli} check-config printed {leaked}"
