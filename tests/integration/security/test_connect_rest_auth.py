"""Issue 14: Kafka Connect's REST API answers only a client with its credentials.

Tried on the live test stack: reading, creating, pausing and deleting connectors without
credentials, with a wrong password and as an unknown user are all refused (401), and the real
connectors keep running; the registration command names the missing or refused setting.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from ..cdc_helpers import connect_auth

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
ATTEMPTS = (("GET", "/connectors"), ("GET", "/connectors/bank-dims/config"),
            ("POST", "/connectors"), ("PUT", "/connectors/bank-dims/pause"), ("DELETE", "/connectors/bank-dims"))


def test_every_call_without_valid_credentials_is_refused(stack_env: dict[str, str]) -> None:
    url, (user, password) = stack_env["CONNECT_URL"], connect_auth(stack_env)
    for auth in (None, (user, "not-the-password"), ("intruder", password)):
        for method, path in ATTEMPTS:
            response = requests.request(method, f"{url}{path}", auth=auth, timeout=10,
                                        json={"name": "intruder", "config": {}} if method == "POST" else None)
            assert response.status_code == 401, (auth and auth[0], method, path, response.status_code)
    status = requests.get(f"{url}/connectors/bank-dims/status", auth=(user, password), timeout=10)
    assert status.status_code == 200 and status.json()["connector"]["state"] == "RUNNING"
    assert "intruder" not in requests.get(f"{url}/connectors", auth=(user, password), timeout=10).json()


@pytest.mark.parametrize("password, message", [
    ("", "CONNECT_REST_PASSWORD is not set"),
    ("not-the-password", "refused user 'connect-admin' (401): check CONNECT_REST_USER and CONNECT_REST_PASSWORD"),
])
def test_registration_names_a_missing_or_refused_credential(stack_env: dict[str, str], password: str,
                                                            message: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECT_REST_")}
    env.update(CONNECT_REST_USER="connect-admin", CONNECT_REST_PASSWORD=password)
    result = subprocess.run([sys.executable, "-m", "cdc_consumer", "register-connectors", "--connect-url",
                             stack_env["CONNECT_URL"], "--timeout", "10"], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=60)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-1000:]
    assert "not-the-password" not in result.stderr
