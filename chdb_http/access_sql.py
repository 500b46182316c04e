"""SQL-driven access management (CREATE USER, GRANT, ...), answered as clickhouse-server answers it
when its only user directory is a read-only users.xml.

The endpoint's users, roles and grants come from its configuration (users.py); the engine runs as
its one internal user and keeps no access storage. clickhouse-server without a writable
``local_directory`` refuses these statements with codes 514 (nothing to create the entity in),
495 (the entity lives in read-only users_xml) or 192/511 (no such entity): so does the endpoint,
instead of the engine's misleading ACCESS_DENIED for its internal user.
"""

from __future__ import annotations

import re
from collections.abc import Container

from chdb_http.errors import ClickHouseError

_NAME = r"(?:`(?:[^`\\]|\\.)*`|\"(?:[^\"\\]|\\.)*\"|[A-Za-z_][\w.@-]*)"
_ENTITY = r"USER|ROLE|ROW\s+POLICY|POLICY|QUOTA|SETTINGS\s+PROFILE|PROFILE"
_DDL = re.compile(
    rf"^\s*(?P<verb>CREATE|ALTER|DROP)\s+(?P<entity>{_ENTITY})\s+(?P<if>IF\s+(?:NOT\s+)?EXISTS\s+)?"
    rf"(?P<name>{_NAME})",
    re.IGNORECASE,
)
_GRANT = re.compile(rf"^\s*(?P<verb>GRANT|REVOKE)\b.*?\b(?:TO|FROM)\s+(?P<name>{_NAME})\s*(?:,|WITH\b|$|;)",
                    re.IGNORECASE | re.DOTALL)
_CREATE_OR_REPLACE = re.compile(rf"^\s*CREATE\s+OR\s+REPLACE\s+(?P<entity>{_ENTITY})\s+(?P<name>{_NAME})",
                                re.IGNORECASE)


def check(statement: str, users: Container[str]) -> bool:
    """Raise clickhouse-server's error if ``statement`` manages users, roles or policies by SQL;
    True for a ``DROP ... IF EXISTS`` of an entity that does not exist (the server does nothing)."""
    m = _DDL.match(statement) or _CREATE_OR_REPLACE.match(statement)
    if m:
        verb = (m.groupdict().get("verb") or "CREATE").upper()
        entity = " ".join(m["entity"].upper().split())
        entity = {"POLICY": "ROW POLICY", "PROFILE": "SETTINGS PROFILE"}.get(entity, entity).lower()
        name = _unquote(m["name"])
        if verb == "CREATE":
            raise ClickHouseError(514, "ACCESS_STORAGE_FOR_INSERTION_NOT_FOUND",
                                  f"Could not insert {entity} `{name}` because there is no writeable access storage "
                                  "in user directories")
        if verb == "DROP" and m.groupdict().get("if") and not (entity == "user" and name in users):
            return True
        _existing(entity, name, users, "update" if verb == "ALTER" else "remove")
    m = _GRANT.match(statement)
    if m:
        name = _unquote(m["name"])
        if name not in users:
            raise ClickHouseError(511, "UNKNOWN_ROLE", f"There is no role `{name}` in user directories")
        _existing("user", name, users, "update")
    return False


def _existing(entity: str, name: str, users: Container[str], action: str) -> None:
    if entity == "user" and name in users:
        where = "in" if action == "update" else "from"
        raise ClickHouseError(495, "ACCESS_STORAGE_READONLY",
                              f"Cannot {action} user `{name}` {where} users_xml because this storage is readonly")
    code, error = {"user": (192, "UNKNOWN_USER"), "role": (511, "UNKNOWN_ROLE")}.get(
        entity, (492, "ACCESS_ENTITY_NOT_FOUND"))
    raise ClickHouseError(code, error, f"There is no {entity} `{name}` in user directories")


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "`\"":
        return re.sub(r"\\(.)", r"\1", name[1:-1])
    return name
