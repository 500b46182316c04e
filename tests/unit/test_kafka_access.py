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
    monkeypatch.setattr(kafka_access, "grow_topics", lambda config, _rules: [])
    return configs


def test_grows_the_transaction_topic_to_its_setting(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    grown: list[tuple[dict[str, str], list]] = []
    monkeypatch.setattr(kafka_access, "apply_kafka_access", lambda config, _passwords: 0)
    monkeypatch.setattr(kafka_access, "grow_topics",
                        lambda config, rules: grown.append((config, rules)) or [("bank.bank.transaction", 3, 6)])
    assert kafka_access.main({**ENV, "CDC_TRANSACTION_PARTITIONS": "6"}) == 0
    [(config, rules)] = grown
    assert config["sasl.username"] == "admin"
    assert [(r.partitions, r.matches("bank.bank.transaction"), r.matches("bank.bank.card")) for r in rules] == \
        [(6, True, False)]
    assert "bank.bank.transaction grown from 3 to 6 partitions" in capsys.readouterr().out


def test_an_unset_partition_setting_is_a_config_error(applied: list[dict[str, str]],
                                                      capsys: pytest.CaptureFixture) -> None:
    assert kafka_access.main(ENV) == 2
    assert "CDC_TRANSACTION_PARTITIONS is not set" in capsys.readouterr().err


def test_plain_by_default(applied: list[dict[str, str]]) -> None:
    assert kafka_access.main({**ENV, "CDC_TRANSACTION_PARTITIONS": "3"}) == 0
    assert applied[0]["security.protocol"] == "SASL_PLAINTEXT" and "ssl.ca.location" not in applied[0]
    assert (applied[0]["sasl.username"], applied[0]["sasl.password"]) == ("admin", "pw-admin")


def test_tls_with_the_ca(tmp_path: Path, applied: list[dict[str, str]]) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("pem")
    env = {**ENV, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SSL_CA_LOCATION": str(ca),
           "CDC_TRANSACTION_PARTITIONS": "3"}
    assert kafka_access.main(env) == 0
    assert (applied[0]["security.protocol"], applied[0]["ssl.ca.location"]) == ("SASL_SSL", str(ca))


def test_a_missing_ca_file_names_the_setting(applied: list[dict[str, str]], capsys: pytest.CaptureFixture) -> None:
    env = {**ENV, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SSL_CA_LOCATION": "/no/such/ca.crt"}
    assert kafka_access.main(env) == 2 and not applied
    assert "KAFKA_SSL_CA_LOCATION='/no/such/ca.crt' is not a file" in capsys.readouterr().err
