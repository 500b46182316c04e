"""Clients built from Airflow connections, looked up by conn_id at run time (never at parse time).

Credentials stay inside the Connection objects and the client libraries; nothing here logs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bankcdc_ops.errors import SourceUnavailableError
from bankcdc_ops.settings import CLICKHOUSE_CONN_ID, CONNECT_CONN_ID, KAFKA_CONN_ID, POSTGRES_CONN_ID

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client


def _connection(conn_id: str) -> Any:
    from airflow.sdk import Connection

    return Connection.get(conn_id)


def clickhouse(conn_id: str = CLICKHOUSE_CONN_ID) -> "Client":
    """clickhouse-connect client of the ClickHouse provider's hook (HTTP interface)."""
    from airflow.providers.clickhousedb.hooks.clickhouse import ClickHouseHook
    from clickhouse_connect.driver.exceptions import ClickHouseError

    hook = ClickHouseHook(clickhouse_conn_id=conn_id, client_kwargs={"autogenerate_session_id": False,
                                                                       "send_receive_timeout": 600})
    try:
        return hook.get_client()
    except ClickHouseError as exc:
        raise SourceUnavailableError(f"ClickHouse (connection {conn_id}) did not answer: {exc}") from exc


def postgres(conn_id: str = POSTGRES_CONN_ID, application: str = "bankcdc-airflow") -> Any:
    """psycopg2 connection, read-only session, from the postgres connection's fields."""
    import psycopg2

    conn = _connection(conn_id)
    try:
        pg = psycopg2.connect(host=conn.host, port=conn.port or 5432, user=conn.login, password=conn.password,
                              dbname=conn.schema or "bank", connect_timeout=10, application_name=application)
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
    """librdkafka settings: the connection's extra (bootstrap.servers, security.*), else host:port."""
    conn = _connection(conn_id)
    config = {k: str(v) for k, v in (conn.extra_dejson or {}).items()}
    config.setdefault("bootstrap.servers", f"{conn.host}:{conn.port or 9092}")
    return config
