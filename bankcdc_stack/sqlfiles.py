"""Apply a folder of `.sql` files to ClickHouse, statement by statement, in file order."""

from __future__ import annotations

import re
from pathlib import Path

import clickhouse_connect

_COMMENT = re.compile(r"^\s*--.*$", re.MULTILINE)


def statements(text: str) -> list[str]:
    """Statements of a SQL file: `--` comment lines dropped, split on `;` at the end of a line."""
    body = _COMMENT.sub("", text)
    return [part.strip() for part in re.split(r";\s*$", body, flags=re.MULTILINE) if part.strip()]


def apply_clickhouse_folder(folder: Path, host: str, port: int, user: str, password: str) -> int:
    client = clickhouse_connect.get_client(host=host, port=port, username=user, password=password,
                                           autogenerate_session_id=False)
    count = 0
    try:
        for path in sorted(folder.glob("*.sql")):
            for statement in statements(path.read_text()):
                client.command(statement)
                count += 1
    finally:
        client.close()
    return count
