"""Clients built from Airflow connections, looked up by conn_id at run time (never at parse time).

Credentials stay inside the Connection objects and the client libraries; nothing here logs them.
"""

from __future__ import annotations

import hashlib
import os
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from bankcdc_ops.errors import ParamError, SourceUnavailableError
from bankcdc_ops.settings import CLICKHOUSE_CONN_ID, CONNECT_CONN_ID, KAFKA_CONN_ID, POSTGRES_CONN_ID

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client


def _connection(conn_id: str) -> Any:
    from airflow.sdk import Connection

    return Connection.get(conn_id)


def clickhouse_tls(extra: Mapping[str, Any], conn_id: str) -> tuple[bool, str]:
    """(secure, CA file) of a ClickHouse connection, from its extra: `secure` (a JSON boolean,
    default false: HTTP) and `ca_cert` (a PEM CA path; "" for the system's trust store, and
    always "" without secure). ParamError when `secure` is not a boolean (the provider's hook
    reads any non-empty string as true) or, with secure, when `ca_cert` is not a file."""
    secure = extra.get("secure")
    if secure is None:
        secure = False
    if not isinstance(secure, bool):
        raise ParamError(f"connection {conn_id}: extra secure={secure!r} is not a boolean: set it to true (HTTPS) "
                         "or false (HTTP), unquoted")
    ca_cert = str(extra.get("ca_cert") or "").strip() if secure else ""
    if ca_cert and not os.path.isfile(ca_cert):
        raise ParamError(f"connection {conn_id}: extra ca_cert={ca_cert!r} is not a file: mount the PEM certificate "
                         "of the CA that signed ClickHouse's certificate there, or set ca_cert to its path")
    return secure, ca_cert


def clickhouse(conn_id: str = CLICKHOUSE_CONN_ID) -> "Client":
    """clickhouse-connect client of the ClickHouse provider's hook: HTTP, or HTTPS with the extra
    `secure`, verifying the server's certificate against the extra `ca_cert` (clickhouse_tls)."""
    from airflow.providers.clickhousedb.hooks.clickhouse import ClickHouseHook
    from clickhouse_connect.driver.exceptions import ClickHouseError

    _secure, ca_cert = clickhouse_tls(_connection(conn_id).extra_dejson or {}, conn_id)
    client_kwargs: dict[str, Any] = {"autogenerate_session_id": False, "send_receive_timeout": 600}
    if ca_cert:
        client_kwargs["ca_cert"] = ca_cert  # the hook reads `secure` and `verify` from the extra itself
    hook = ClickHouseHook(clickhouse_conn_id=conn_id, client_kwargs=client_kwargs)
    try:
        return hook.get_client()
    except ClickHouseError as exc:
        raise SourceUnavailableError(f"ClickHouse (connection {conn_id}) did not answer: {exc}") from exc


_idle_clients: dict[str, tuple[str, list["Client"]]] = {}  # conn_id -> (fingerprint, idle clients)
_idle_lock = threading.Lock()


@contextmanager
def reused_clickhouse(conn_id: str = CLICKHOUSE_CONN_ID) -> Iterator["Client"]:
    """A clickhouse() client for a long-lived process (the triggerer's stage checks): it is kept
    after use and lent again while the connection is unchanged, since building one costs two
    queries. The connection is looked up on every call; once it changes, the clients built from
    the old one are closed. A client whose use raised is closed, not kept. One client is never
    lent to two callers at once."""
    fingerprint = hashlib.sha256(_connection(conn_id).get_uri().encode()).hexdigest()
    with _idle_lock:
        kept_for, idle = _idle_clients.get(conn_id, (fingerprint, []))
        stale = idle if kept_for != fingerprint else []
        idle = [] if stale else idle
        client = idle.pop() if idle else None
        _idle_clients[conn_id] = (fingerprint, idle)
    for old in stale:
        old.close()
    if client is None:
        client = clickhouse(conn_id)
    try:
        yield client
    except BaseException:
        client.close()
        raise
    with _idle_lock:
        kept_for, idle = _idle_clients[conn_id]
        if kept_for == fingerprint:
            idle.append(client)
            client = None
    if client is not None:
        client.close()


LIBPQ_TLS = ("sslmode", "sslrootcert")


def postgres_tls(extra: Mapping[str, Any]) -> dict[str, str]:
    """libpq's TLS parameters from a postgres connection's extra (`sslmode`, `sslrootcert`); one
    absent is not passed, so libpq's default and its PGSSLMODE / PGSSLROOTCERT apply."""
    return {key: str(extra[key]) for key in LIBPQ_TLS if extra.get(key)}


def postgres(conn_id: str = POSTGRES_CONN_ID, application: str = "bankcdc-airflow") -> Any:
    """psycopg2 connection, read-only session, from the postgres connection's fields and its
    extra's TLS parameters (postgres_tls)."""
    import psycopg2

    conn = _connection(conn_id)
    try:
        pg = psycopg2.connect(host=conn.host, port=conn.port or 5432, user=conn.login, password=conn.password,
                              dbname=conn.schema or "bank", connect_timeout=10, application_name=application,
                              **postgres_tls(conn.extra_dejson or {}))
    except psycopg2.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceUnavailableError(f"PostgreSQL (connection {conn_id}, {conn.host}:{conn.port}) "
                                     f"refused: {first_line}") from exc
    pg.set_session(readonly=True, autocommit=True)
    return pg


def connect_api(conn_id: str = CONNECT_CONN_ID) -> tuple[str, tuple[str, str] | None]:
    """Base URL of the Kafka Connect REST API, and the basic-auth credentials it asks for (the
    connection's login and password; None when the connection has no login)."""
    conn = _connection(conn_id)
    auth = (conn.login, conn.password or "") if conn.login else None
    return f"{conn.schema or 'http'}://{conn.host}:{conn.port or 8083}", auth


def kafka_config(conn_id: str = KAFKA_CONN_ID) -> dict[str, str]:
    """librdkafka settings: the connection's extra key by key as it is (bootstrap.servers,
    security.protocol, ssl.ca.location, sasl.*), each value as text (a JSON boolean as
    true/false); bootstrap.servers defaults to the connection's host:port."""
    conn = _connection(conn_id)
    config = {k: _librdkafka_value(v) for k, v in (conn.extra_dejson or {}).items()}
    config.setdefault("bootstrap.servers", f"{conn.host}:{conn.port or 9092}")
    return config


def _librdkafka_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
