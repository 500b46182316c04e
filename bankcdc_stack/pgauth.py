"""SCRAM-SHA-256 verifiers, so role passwords are set without the clear text ever reaching PostgreSQL.

`ALTER ROLE r PASSWORD '<verifier>'` stores the verifier as is; the server
never sees (nor logs, on error) the password itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

_ITERATIONS = 4096


def scram_sha256_verifier(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
