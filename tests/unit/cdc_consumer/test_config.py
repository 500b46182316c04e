"""Consumer settings: defaults work, bad values name the setting and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdc_consumer.config import ConsumerSettings
from cdc_consumer.errors import ConfigError


def test_defaults() -> None:
    settings = ConsumerSettings.from_env({})
    assert settings.bootstrap_servers == "127.0.0.1:9092" and settings.clickhouse_user == "loader"
    assert settings.topic_regex == r"^bank\.[a-z0-9_]+\.[a-z0-9_]+$"


@pytest.mark.parametrize("name, value, message", [
    ("CDC_BATCH_MAX_ROWS", "0", "CDC_BATCH_MAX_ROWS='0' is out of range: set CDC_BATCH_MAX_ROWS to a whole number"),
    ("CDC_BATCH_MAX_ROWS", "many", "CDC_BATCH_MAX_ROWS='many' is invalid"),
    ("CDC_BATCH_MAX_SECONDS", "120", "CDC_BATCH_MAX_SECONDS='120' is out of range"),
    ("CLICKHOUSE_PORT", "99999", "CLICKHOUSE_PORT='99999' is out of range"),
    ("KAFKA_BOOTSTRAP_SERVERS", "no port", "KAFKA_BOOTSTRAP_SERVERS='no port' is invalid: use host:port"),
    ("CDC_TOPIC_REGEX", "([", "CDC_TOPIC_REGEX='\\(\\[' is not a regular expression"),
])
def test_bad_values_name_the_setting(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ConsumerSettings.from_env({name: value})


def test_plain_connections_by_default() -> None:
    settings = ConsumerSettings.from_env({"KAFKA_CONSUMER_PASSWORD": "pw"})
    assert settings.kafka_client()["security.protocol"] == "SASL_PLAINTEXT"
    assert "ssl.ca.location" not in settings.kafka_client()
    client = settings.clickhouse_client()
    assert client["secure"] is False and "verify" not in client and "ca_cert" not in client
    assert (client["host"], client["port"], client["username"], client["database"]) == ("127.0.0.1", 8123, "loader",
                                                                                        "raw")


def test_tls_settings_reach_the_clients(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = ConsumerSettings.from_env({"KAFKA_CONSUMER_PASSWORD": "pw", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                                          "KAFKA_SSL_CA_LOCATION": str(ca), "CLICKHOUSE_SECURE": "true",
                                          "CLICKHOUSE_PORT": "8443", "CLICKHOUSE_CA_CERT": str(ca)})
    kafka = settings.kafka_client()
    assert (kafka["security.protocol"], kafka["ssl.ca.location"]) == ("SASL_SSL", str(ca))
    client = settings.clickhouse_client()
    assert (client["secure"], client["verify"], client["ca_cert"], client["port"]) == (True, True, str(ca), 8443)


def test_https_without_a_ca_file_trusts_the_system_store() -> None:
    client = ConsumerSettings.from_env({"CLICKHOUSE_SECURE": "1"}).clickhouse_client()
    assert client["secure"] is True and client["verify"] is True and "ca_cert" not in client


def test_the_loader_connects_with_the_settings_client_arguments(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from cdc_consumer import loader

    ca = tmp_path / "ca.crt"
    ca.write_text("pem")
    seen: dict = {}
    monkeypatch.setattr(loader.clickhouse_connect, "get_client", lambda **kwargs: seen.update(kwargs))
    raw = object.__new__(loader.RawLoader)
    raw.settings = ConsumerSettings.from_env({"CLICKHOUSE_SECURE": "true", "CLICKHOUSE_CA_CERT": str(ca)})
    raw.db = raw.settings.raw_database
    raw._connect()
    assert (seen["secure"], seen["verify"], seen["ca_cert"], seen["database"]) == (True, True, str(ca), "raw")


@pytest.mark.parametrize("env, message", [
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SSL_CA_LOCATION": "/no/such/ca.crt"},
     "KAFKA_SSL_CA_LOCATION='/no/such/ca.crt' is not a file: mount the PEM certificate"),
    ({"CLICKHOUSE_SECURE": "true", "CLICKHOUSE_CA_CERT": "/no/such/ca.crt"},
     "CLICKHOUSE_CA_CERT='/no/such/ca.crt' is not a file: mount the PEM certificate"),
    ({"CLICKHOUSE_SECURE": "maybe"}, "CLICKHOUSE_SECURE='maybe' is invalid: set CLICKHOUSE_SECURE to true"),
])
def test_tls_settings_that_cannot_work_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ConsumerSettings.from_env(env)


def test_a_ca_file_is_not_needed_without_tls() -> None:
    settings = ConsumerSettings.from_env({"KAFKA_SSL_CA_LOCATION": "/no/such/ca.crt",
                                          "CLICKHOUSE_CA_CERT": "/no/such/ca.crt"})
    assert settings.clickhouse_client()["secure"] is False and "ca_cert" not in settings.clickhouse_client()


@pytest.mark.parametrize("error, hint", [
    ("SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
     "self-signed certificate in certificate chain'))", "check CLICKHOUSE_CA_CERT"),
    ("SSLError(SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version number'))", "check CLICKHOUSE_SECURE and"),
])
def test_tls_failures_name_the_setting(error: str, hint: str) -> None:
    from cdc_consumer.loader import _connect_hint

    assert _connect_hint(error).startswith(hint)
