"""Issue 8: after the whole test session, no secret of the test stack is written anywhere.

Runs after every other test (marker `stack_audit`, see tests/conftest.py) and before the stack is
torn down, so every service has logged what it will: service logs, Airflow's task and
dag-processor logs, Connect's config/status topics, dbt's logs, and the services' data at rest.
Every file under the test stack's state dir is searched for every secret value; a hit names the
file and the secret's NAME, never its value. The only files allowed to hold a secret are the
secret stores themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bankcdc_stack.stack import Stack

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
CHUNK = 8 * 1024 * 1024
MIN_SECRET_LENGTH = 16


def secret_stores(stack: Stack) -> set[Path]:
    """Where secrets are kept on purpose (mode 0600): never logs."""
    state = stack.settings.state_dir
    return {state / "secrets.env", state / "secrets.tmp",
            stack.services["airflow"].home / "simple_auth_manager_passwords.json",
            stack.services["postgres"].root / ".pwfile",
            stack.services["connect"].root / "rest-users.properties",
            stack.services["connect"].root / "connect-distributed.properties",
            stack.services["kafka"].config_path}


def files_to_search(stack: Stack) -> list[Path]:
    roots = [stack.settings.state_dir, REPO / "dbt" / "logs", REPO / "dbt" / "target"]
    skip = secret_stores(stack)
    found = []
    for root in roots:
        for dirpath, _, names in os.walk(root):
            found += [Path(dirpath) / name for name in names if Path(dirpath) / name not in skip]
    return found


def secrets_in(path: Path, secrets: dict[str, bytes]) -> set[str]:
    """Names of the secrets whose value occurs in the file (read in overlapping chunks)."""
    overlap = max(len(value) for value in secrets.values()) - 1
    hits: set[str] = set()
    try:
        with open(path, "rb") as handle:
            tail = b""
            while chunk := handle.read(CHUNK):
                window = tail + chunk
                hits |= {name for name, value in secrets.items() if name not in hits and value in window}
                tail = window[-overlap:]
    except OSError:  # vanished (a rotated log, a finished temp file) or unreadable socket
        pass
    return hits


@pytest.mark.stack_audit
def test_no_secret_in_any_log_or_file_of_the_test_stack(stack: Stack) -> None:
    secrets = {name: value.encode() for name, value in stack.ctx.secrets.items()}
    weak = sorted(name for name, value in secrets.items() if len(value) < MIN_SECRET_LENGTH)
    assert weak == [], f"secrets too short to search for (and to be secrets): {weak}"
    files = files_to_search(stack)
    # the search is not vacuous: every running service's log is among the files searched
    logs = {proc.log_path for svc in stack.services.values() if svc.is_running() for proc in svc.processes()}
    assert logs and logs <= set(files), f"service logs not searched: {sorted(map(str, logs - set(files)))}"
    leaks = {}
    for path in files:
        names = secrets_in(path, secrets)
        if names:
            leaks[str(path.relative_to(stack.settings.state_dir) if path.is_relative_to(stack.settings.state_dir)
                      else path.relative_to(REPO))] = sorted(names)
    assert leaks == {}, f"secret values written to files (file: secret names): {leaks}"


def test_secret_search_finds_a_planted_secret(tmp_path: Path) -> None:
    """The search itself works, across a chunk boundary too (no stack needed)."""
    secret = b"s3cr3t-value-0123456789"
    log = tmp_path / "service.log"
    log.write_bytes(b"x" * (CHUNK - 5) + secret + b"\n")
    assert secrets_in(log, {"SOME_PASSWORD": secret, "OTHER": b"not-there-at-all-xyz"}) == {"SOME_PASSWORD"}
