"""kafka_access's CLI (compose's kafka-setup): the admin client's settings, plain or TLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from bankcdc_stack import kafka_access
from bankcdc_stack.environment import KAFKA_USERS

ENV = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", **{secret: f"pw-{user}" for user, secret in KAFKA_USERS.items()}}


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    configs: list[dict[str, str]] = []
    monkeypatch.setattr(kafka_access, "apply_kafka_access", lambda config, _passwords: configs.append(config) or 0)
    return configs


def test_plain_by_default(applied: list[dict[str, str]]) -> None:
    assert kafka_access.main(ENV) == 0
    assert applied[0]["security.protocol"] == "SASL_PLAINTEXT" and "ssl.ca.location" not in applied[0]
    assert (applied[0]["sasl.username"], applied[0]["sasl.password"]) == ("admin", "pw-admin")


def test_tls_with_the_ca(tmp_path: Path, applied: list[dict[str, str]]) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("pem")
    env = {**ENV, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SSL_CA_LOCATION": str(ca)}
    assert kafka_access.main(env) == 0
    assert (applied[0]["security.protocol"], applied[0]["ssl.ca.location"]) == ("SASL_SSL", str(ca))


def test_a_missing_ca_file_names_the_setting(applied: list[dict[str, str]], capsys: pytest.CaptureFixture) -> None:
    env = {**ENV, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SSL_CA_LOCATION": "/no/such/ca.crt"}
    assert kafka_access.main(env) == 2 and not applied
    assert "KAFKA_SSL_CA_LOCATION='/no/such/ca.crt' is not a file" in capsys.readouterr().err
