"""Airflow connections to clients, plain or TLS: what reaches librdkafka, psycopg2, the ClickHouse
provider's hook and dbt from each connection's extra."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bankcdc_ops import connections
from bankcdc_ops.dbt_build import trust_variables
from bankcdc_ops.dbt_cli import dbt_env
from bankcdc_ops.errors import ParamError


def _conn(extra: dict[str, Any] | None = None, **fields: Any) -> SimpleNamespace:
    defaults = {"host": "db", "port": 5432, "login": "user", "password": "pw", "schema": None}
    return SimpleNamespace(**{**defaults, **fields}, extra_dejson=extra or {})


@pytest.fixture
def ca(tmp_path: Path) -> str:
    path = tmp_path / "ca.crt"
    path.write_text("pem")
    return str(path)


def test_kafka_extra_reaches_librdkafka_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {"bootstrap.servers": "kafka:9092", "security.protocol": "SASL_SSL", "ssl.ca.location": "/certs/ca.crt",
             "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "monitor", "sasl.password": "pw",
             "enable.ssl.certificate.verification": True}
    monkeypatch.setattr(connections, "_connection", lambda _id: _conn(extra, host="kafka", port=9092))
    assert connections.kafka_config() == {**extra, "enable.ssl.certificate.verification": "true"}


def test_kafka_without_extra_uses_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connections, "_connection", lambda _id: _conn(host="kafka", port=None))
    assert connections.kafka_config() == {"bootstrap.servers": "kafka:9092"}


class _FakePg:
    def set_session(self, **_kwargs: Any) -> None:
        pass


@pytest.mark.parametrize("extra, tls", [
    ({}, {}),  # nothing passed: libpq's default and PGSSLMODE / PGSSLROOTCERT apply
    ({"sslmode": "verify-full", "sslrootcert": "/certs/ca.crt"}, {"sslmode": "verify-full",
                                                                 "sslrootcert": "/certs/ca.crt"}),
    ({"sslmode": "require"}, {"sslmode": "require"}),
])
def test_postgres_extra_tls_reaches_libpq(extra: dict[str, str], tls: dict[str, str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg2

    seen: dict[str, Any] = {}
    monkeypatch.setattr(connections, "_connection", lambda _id: _conn(extra))
    monkeypatch.setattr(psycopg2, "connect", lambda **kwargs: seen.update(kwargs) or _FakePg())
    connections.postgres()
    assert {k: v for k, v in seen.items() if k.startswith("ssl")} == tls


def test_clickhouse_tls_from_the_extra(ca: str) -> None:
    assert connections.clickhouse_tls({}, "c") == (False, "")
    assert connections.clickhouse_tls({"secure": False, "ca_cert": "/no/such/ca.crt"}, "c") == (False, "")
    assert connections.clickhouse_tls({"secure": True}, "c") == (True, "")
    assert connections.clickhouse_tls({"secure": True, "verify": True, "ca_cert": ca}, "c") == (True, ca)


@pytest.mark.parametrize("extra, message", [
    ({"secure": "false"}, "connection c: extra secure='false' is not a boolean"),
    ({"secure": True, "ca_cert": "/no/such/ca.crt"}, "connection c: extra ca_cert='/no/such/ca.crt' is not a file"),
])
def test_clickhouse_extra_that_cannot_work_names_the_key(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamError, match=message):
        connections.clickhouse_tls(extra, "c")


def test_the_clickhouse_hook_gets_https_and_the_ca(ca: str, monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = pytest.importorskip("airflow.providers.clickhousedb.hooks.clickhouse")
    import clickhouse_connect

    conn = _conn({"secure": True, "verify": True, "ca_cert": ca}, host="clickhouse", port=8443, login="transformer")
    seen: dict[str, Any] = {}
    monkeypatch.setattr(connections, "_connection", lambda _id: conn)
    monkeypatch.setattr(hooks.ClickHouseHook, "get_connection", classmethod(lambda _cls, _id: conn))
    monkeypatch.setattr(clickhouse_connect, "get_client", lambda **kwargs: seen.update(kwargs))
    connections.clickhouse()
    assert (seen["host"], seen["port"], seen["username"]) == ("clickhouse", 8443, "transformer")
    assert (seen["secure"], seen["verify"], seen["ca_cert"]) == (True, True, ca)
    assert seen["autogenerate_session_id"] is False


def test_dbt_profile_over_https_trusts_the_ca(ca: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sdk = pytest.importorskip("airflow.sdk")
    from bankcdc_ops.dbt import profile_environment

    conn = _conn({"secure": True, "ca_cert": ca}, host="clickhouse", port=8443, login="transformer")
    monkeypatch.setattr(sdk.Connection, "get", classmethod(lambda _cls, _id: conn))
    env = profile_environment()
    assert (env["CLICKHOUSE_HOST"], env["CLICKHOUSE_PORT"], env["CLICKHOUSE_SECURE"]) == ("clickhouse", "8443", "True")
    assert env["SSL_CERT_FILE"] == ca
    monkeypatch.setattr(sdk.Connection, "get", classmethod(lambda _cls, _id: _conn(host="clickhouse", port=8123)))
    assert profile_environment()["CLICKHOUSE_SECURE"] == "False" and "SSL_CERT_FILE" not in profile_environment()


def test_dbt_builds_on_the_cluster_the_connection_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """docker-compose.cluster.yml gives clickhouse_dwh the extra `cluster`; one server has none."""
    sdk = pytest.importorskip("airflow.sdk")
    from bankcdc_ops.dbt import profile_environment

    monkeypatch.setattr(sdk.Connection, "get", classmethod(lambda _cls, _id: _conn({"cluster": " bank "})))
    assert profile_environment()["CLICKHOUSE_CLUSTER"] == "bank"
    monkeypatch.setattr(sdk.Connection, "get", classmethod(lambda _cls, _id: _conn()))
    assert profile_environment()["CLICKHOUSE_CLUSTER"] == ""


def test_dbt_trusts_the_ca_through_ssl_cert_file(ca: str) -> None:
    assert trust_variables("") == {} and trust_variables(ca) == {"SSL_CERT_FILE": ca}


def test_dbt_by_hand_follows_clickhouse_secure(ca: str, tmp_path: Path) -> None:
    stack = {"CLICKHOUSE_HOST": "127.0.0.1", "CLICKHOUSE_PORT": "8123", "CLICKHOUSE_TRANSFORMER_PASSWORD": "pw"}
    plain = dbt_env(stack, tmp_path)
    assert plain["CLICKHOUSE_SECURE"] == "False" and plain.get("SSL_CERT_FILE") == os.environ.get("SSL_CERT_FILE")
    tls = dbt_env({**stack, "CLICKHOUSE_SECURE": "true", "CLICKHOUSE_CA_CERT": ca}, tmp_path)
    assert (tls["CLICKHOUSE_SECURE"], tls["SSL_CERT_FILE"]) == ("True", ca)
    with pytest.raises(ParamError, match="CLICKHOUSE_SECURE='yes' is invalid"):
        dbt_env({**stack, "CLICKHOUSE_SECURE": "yes"}, tmp_path)


def test_dbt_by_hand_runs_as_the_transformer_unless_told_otherwise(tmp_path: Path) -> None:
    stack = {"CLICKHOUSE_HOST": "127.0.0.1", "CLICKHOUSE_PORT": "8123", "CLICKHOUSE_TRANSFORMER_PASSWORD": "pw"}
    assert dbt_env(stack, tmp_path)["CLICKHOUSE_TRANSFORMER_USER"] == "transformer"
    admin = dbt_env({**stack, "CLICKHOUSE_TRANSFORMER_USER": "default"}, tmp_path)  # bench/dbt_incremental.py
    assert (admin["CLICKHOUSE_TRANSFORMER_USER"], admin["CLICKHOUSE_TRANSFORMER_PASSWORD"]) == ("default", "pw")
