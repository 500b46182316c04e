"""Table-level GRANTs from users.xml, enforced by the endpoint.

chDB runs every query as its one built-in user and cannot impersonate another
(clickhouse-local never reads ``access_control_improvements``), so the
privileges that clickhouse-server enforces from a user's ``<grants>`` are
checked here, before the statement runs: ClickHouse's own parser names what
the statement does and which tables it touches (``EXPLAIN AST``), and the
user's grants must cover each of them. A user without ``<grants>`` has every
privilege, as in clickhouse-server.

Covered: SELECT, INSERT, ALTER [sub-privilege], CREATE/DROP TABLE|VIEW|DICTIONARY|DATABASE,
TRUNCATE, OPTIMIZE, dictGet (dictGet*, dictHas, dictIsIn, ... and the ``dictionary()``
table function need it on the dictionary) and ALL, on ``*.*``, ``db.*`` or ``db.table``.
Reads of ``system`` and ``information_schema`` are free, as by default on the server.
Differences from clickhouse-server: no column-level grants or row policies;
a view is checked on the view itself (like ``SQL SECURITY DEFINER``); table
functions other than generators need their source privilege (FILE, URL, ...);
``SELECT FROM db.dict`` needs SELECT only (the server also wants dictGet), and a
dictGet whose dictionary name is not a string literal needs dictGet ON *.*.
What a dictionary's CLICKHOUSE source reads is checked by dictionaries.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chdb_http.errors import ClickHouseError

FREE_DATABASES = frozenset({"system", "information_schema", "INFORMATION_SCHEMA"})
GENERATOR_FUNCTIONS = frozenset({"numbers", "numbers_mt", "zeros", "zeros_mt", "generateRandom", "values",
                                 "null", "generate_series", "generateSeries", "input", "view"})
# the source privilege each table function needs besides CREATE TEMPORARY TABLE (SOURCES covers them all)
_SOURCES = {"file": "FILE", "url": "URL", "remote": "REMOTE", "remoteSecure": "REMOTE", "cluster": "REMOTE",
            "clusterAllReplicas": "REMOTE", "s3": "S3", "s3Cluster": "S3", "hdfs": "HDFS", "mysql": "MYSQL",
            "postgresql": "POSTGRES", "sqlite": "SQLITE", "odbc": "ODBC", "jdbc": "JDBC", "mongodb": "MONGO",
            "azureBlobStorage": "AZURE"}
# privilege aliases (AccessType.h), as parse_grant upper-cases them
_ALIASES = {"ALL PRIVILEGES": "ALL", "DICTHAS": "DICTGET", "DICTGETHIERARCHY": "DICTGET", "DICTISIN": "DICTGET"}
# functions that read a dictionary named by their first argument: dictGet* (OrDefault, OrNull, String, ...),
# dictHas, dictIsIn, dictGetHierarchy, dictGetChildren, dictGetDescendants; they need dictGet on it
_DICT_FUNCTION = re.compile(r"dict(?:Get\w*|Has|IsIn)")
_STRING_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")
_GRANT = re.compile(r"^\s*GRANT\s+(?P<privs>.+?)\s+ON\s+(?P<obj>[^\s]+)(?:\s+WITH\s+GRANT\s+OPTION)?\s*;?\s*$",
                    re.IGNORECASE | re.DOTALL)
_NODE = re.compile(r"^(?P<indent> *)(?P<kind>\S+)(?P<args>.*?)(?: +\(children \d+\))?$")
_CTE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s+AS\s*\(", re.IGNORECASE)
_ALTER_COMMANDS = {"ADD_COLUMN": "ALTER ADD COLUMN", "DROP_COLUMN": "ALTER DROP COLUMN",
                   "MODIFY_COLUMN": "ALTER MODIFY COLUMN", "DELETE": "ALTER DELETE", "UPDATE": "ALTER UPDATE"}
_FREE_STATEMENTS = frozenset({"Set", "UseQuery", "ShowTables", "ShowColumns", "ExistsTableQuery",
                              "ExistsDatabaseQuery", "ExistsViewQuery", "ExistsDictionaryQuery",
                              "ShowCreateTableQuery", "ShowCreateViewQuery", "ShowCreateDatabaseQuery",
                              "ShowCreateDictionaryQuery",
                              "ShowProcesslistQuery", "ShowGrantsQuery", "ShowFunctions", "ShowEngineTables"})
_READ_STATEMENTS = frozenset({"SelectWithUnionQuery", "SelectIntersectExceptQuery", "SelectQuery", "Explain",
                              "DescribeQuery", "CheckQuery"})
# statements on one table, named by their first two top-level identifiers (db, table)
_TABLE_STATEMENTS = {"TruncateQuery": "TRUNCATE", "DeleteQuery": "ALTER DELETE", "OptimizeQuery": "OPTIMIZE",
                     "DetachQuery": "DROP TABLE", "AttachQuery": "CREATE TABLE"}


class GrantsConfigError(ValueError):
    """A ``<grants>`` query the endpoint cannot use; the message names it."""


@dataclass(frozen=True)
class Grant:
    privileges: frozenset[str]
    database: str  # "*" = any
    table: str  # "*" = any

    def covers(self, privilege: str, database: str, table: str) -> bool:
        if self.database not in ("*", database) or self.table not in ("*", table):
            return False
        privilege = privilege.upper()
        return any(p == "ALL" or privilege == p or privilege.startswith(p + " ")
                   or p == "SOURCES" and privilege in _SOURCES.values() for p in self.privileges)


@dataclass(frozen=True)
class Access:
    """One privilege a statement needs on one table (table "*" for a database-level privilege)."""

    privilege: str
    database: str
    table: str


def _unquote(name: str) -> str:
    return name.strip().strip("`\"")


def parse_grant(query: str) -> Grant:
    """``GRANT SELECT, INSERT ON raw.*`` as clickhouse-server accepts it in users.xml."""
    match = _GRANT.match(query)
    if not match:
        raise GrantsConfigError(f"<grants><query>{query}</query>: expected GRANT <privileges> ON <db>.<table>")
    obj = match["obj"]
    db, _, table = obj.partition(".")
    if not table:
        raise GrantsConfigError(f"<grants><query>{query}</query>: name the object as db.table, db.* or *.*")
    privs = frozenset(_ALIASES.get(p, p) for p in (" ".join(p.split()).upper() for p in match["privs"].split(",")))
    return Grant(privs, _unquote(db), _unquote(table))


def _nodes(ast: str) -> list[tuple[int, str, str]]:
    out = []
    for line in ast.splitlines():
        match = _NODE.match(line.rstrip())
        if match:
            out.append((len(match["indent"]), match["kind"], match["args"].strip()))
    return out


def _qualified(name: str, current_db: str) -> tuple[str, str]:
    db, dot, table = name.rpartition(".")
    return (_unquote(db), _unquote(table)) if dot else (current_db, _unquote(name))


def _first_words(query: str, count: int) -> list[str]:
    words = re.findall(r"[A-Za-z_]+", re.sub(r"--[^\n]*|/\*.*?\*/", " ", query, flags=re.DOTALL))
    return [w.upper() for w in words[:count]]


def required_access(ast: str, query: str, current_db: str) -> list[Access] | None:
    """What the statement needs, from its ``EXPLAIN AST``; None when nothing is needed; raises when unsupported."""
    nodes = _nodes(ast)
    if not nodes:
        return None
    kind = nodes[0][1]
    if kind in _FREE_STATEMENTS:
        return None
    cte_names = {m.group(1) for m in _CTE.finditer(query)}
    needed: list[Access] = []
    for i, (depth, node, rest) in enumerate(nodes):
        if node == "TableIdentifier":
            if "." not in rest and _unquote(rest) in cte_names:
                continue
            db, table = _qualified(rest, current_db)
            needed.append(Access("SELECT", db, table))
        elif node == "Function" and i > 0 and nodes[i - 1][1] == "TableExpression" and nodes[i - 1][0] == depth - 1:
            function = rest.split()[0] if rest else ""
            if function == "dictionary":
                needed += [Access("CREATE TEMPORARY TABLE", "*", "*"), _dict_get(nodes, i, current_db)]
            elif function not in GENERATOR_FUNCTIONS:
                needed += [Access("CREATE TEMPORARY TABLE", "*", "*"), Access(_SOURCES.get(function, "SOURCES"), "*", "*")]
        elif node == "Function" and rest and _DICT_FUNCTION.fullmatch(rest.split()[0]):
            needed.append(_dict_get(nodes, i, current_db))
    top_identifiers = [_unquote(rest) for depth, node, rest in nodes[1:] if depth == 1 and node == "Identifier"]
    target: tuple[str, str] = ((current_db, top_identifiers[0]) if len(top_identifiers) == 1
                               else (top_identifiers[0], top_identifiers[1]) if top_identifiers else (current_db, "*"))
    words = _first_words(query, 4)
    if kind in _READ_STATEMENTS:
        pass
    elif kind == "InsertQuery":
        if not top_identifiers:
            raise _unsupported("INSERT INTO FUNCTION")
        needed.append(Access("INSERT", *target))
    elif kind == "CreateQuery":
        needed += _create_access(words, target if len(top_identifiers) > 1 else None, top_identifiers, current_db)
    elif kind == "DropQuery":
        if "DATABASE" in words[:2]:
            needed.append(Access("DROP DATABASE", top_identifiers[0] if top_identifiers else current_db, "*"))
        else:
            obj = next((w for w in ("VIEW", "DICTIONARY") if w in words[:2]), "TABLE")
            needed.append(Access(f"DROP {obj}", *target))
    elif kind in ("DetachQuery", "AttachQuery") and "DICTIONARY" in words[:2]:
        needed.append(Access("DROP DICTIONARY" if kind == "DetachQuery" else "CREATE DICTIONARY", *target))
    elif kind in _TABLE_STATEMENTS:
        needed.append(Access(_TABLE_STATEMENTS[kind], *target))
    elif kind == "AlterQuery":
        commands = [rest.split()[0] for _, node, rest in nodes if node == "AlterCommand" and rest]
        for command in commands or ["ALTER"]:
            needed.append(Access(_ALTER_COMMANDS.get(command, "ALTER"), *target))
    elif kind == "Rename":
        for db, table in _rename_objects(top_identifiers, current_db):
            needed += [Access("DROP TABLE", db, table), Access("CREATE TABLE", db, table), Access("INSERT", db, table)]
    else:
        raise _unsupported(" ".join(words[:2]) or kind)
    return needed


def _create_access(words: list[str], target: tuple[str, str] | None, identifiers: list[str],
                   current_db: str) -> list[Access]:
    rest = [w for w in words[1:] if w not in ("OR", "REPLACE", "IF", "NOT", "EXISTS")]
    obj = rest[0] if rest else "TABLE"
    if obj == "TEMPORARY":
        return [Access("CREATE TEMPORARY TABLE", "*", "*")]
    if obj == "DATABASE":
        return [Access("CREATE DATABASE", identifiers[0] if identifiers else current_db, "*")]
    if obj == "DICTIONARY":  # OR REPLACE included: clickhouse-server asks CREATE DICTIONARY only
        return [Access("CREATE DICTIONARY", *(target or (current_db, identifiers[0] if identifiers else "*")))]
    if obj not in ("TABLE", "VIEW", "MATERIALIZED", "LIVE", "WINDOW"):
        raise _unsupported(f"CREATE {obj}")
    db, table = target or (current_db, identifiers[0] if identifiers else "*")
    kind = "CREATE TABLE" if obj == "TABLE" else "CREATE VIEW"
    needed = [Access(kind, db, table)]
    if "REPLACE" in words[:3]:
        needed.append(Access("DROP TABLE" if kind == "CREATE TABLE" else "DROP VIEW", db, table))
    return needed


def _dict_get(nodes: list[tuple[int, str, str]], i: int, current_db: str) -> Access:
    """dictGet on the dictionary a function's first argument names (any dictionary unless a string literal)."""
    depth = nodes[i][0]
    first = nodes[i + 2] if i + 2 < len(nodes) and nodes[i + 1][1] == "ExpressionList" else None
    match = _STRING_LITERAL.match(first[2]) if first and first[0] == depth + 2 and first[1] == "Literal" else None
    if not match:
        return Access("dictGet", "*", "*")
    db, name = _qualified(re.sub(r"\\(.)", r"\1", match.group(1)), current_db)
    return Access("dictGet", db, name)


def _rename_objects(identifiers: list[str], current_db: str) -> Iterable[tuple[str, str]]:
    if len(identifiers) % 4 == 0:
        return [(identifiers[i], identifiers[i + 1]) for i in range(0, len(identifiers), 2)]
    if len(identifiers) == 2:
        return [(current_db, identifiers[0]), (current_db, identifiers[1])]
    raise _unsupported("RENAME with unqualified tables")


def _unsupported(what: str) -> ClickHouseError:
    return ClickHouseError(497, "ACCESS_DENIED", f"Not enough privileges to execute {what} for this user")


def check(user: str, grants: tuple[Grant, ...], ast: str, query: str,
          current_db: Callable[[], str]) -> None:
    """Raise ACCESS_DENIED, worded as clickhouse-server words it, unless ``grants`` cover the statement."""
    try:
        needed = required_access(ast, query, current_db())
    except ClickHouseError as exc:
        exc.message = f"{user}: {exc.message}"
        raise
    for access in needed or ():
        if access.privilege == "SELECT" and access.database in FREE_DATABASES:
            continue
        if not any(g.covers(access.privilege, access.database, access.table) for g in grants):
            obj = f"{access.database}.{access.table}"
            raise ClickHouseError(
                497, "ACCESS_DENIED",
                f"{user}: Not enough privileges. To execute this query, it's necessary to have the grant "
                f"{access.privilege} ON {obj}",
            )
