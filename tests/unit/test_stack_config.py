"""The stack's settings, secrets and port checks, without starting anything."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from bankcdc_stack.errors import ConfigError, PortInUseError
from bankcdc_stack.pgauth import scram_sha256_verifier
from bankcdc_stack.process import require_free_port
from bankcdc_stack.secrets import SECRET_NAMES, load_secrets
from bankcdc_stack.settings import StackSettings


def test_defaults_are_working_loopback_ports(tmp_path: Path) -> None:
    settings = StackSettings.from_env({"BANKCDC_STATE_DIR": str(tmp_path)})
    assert (settings.db_port, settings.kafka_port, settings.connect_port,
            settings.clickhouse_port, settings.airflow_port) == (5432, 9092, 8083, 8123, 8080)
    assert settings.state_dir == tmp_path


@pytest.mark.parametrize("value", ["abc", "0", "70000", "-1"])
def test_bad_port_names_the_setting_and_the_fix(value: str) -> None:
    with pytest.raises(ConfigError, match=r"KAFKA_PORT=.*set KAFKA_PORT to a number from 1 to 65535"):
        StackSettings.from_env({"KAFKA_PORT": value})


def test_two_services_on_one_port_is_refused() -> None:
    with pytest.raises(ConfigError, match="CONNECT_PORT and DB_PORT are both 5432"):
        StackSettings.from_env({"CONNECT_PORT": "5432"})


def test_bad_heap_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="KAFKA_HEAP='lots'.*like 512m"):
        StackSettings.from_env({"KAFKA_HEAP": "lots"})


def test_secrets_generated_once_private_and_overridable(tmp_path: Path) -> None:
    first = load_secrets(tmp_path, {})
    assert set(first) == set(SECRET_NAMES) and all(len(v) >= 24 for v in first.values())
    assert stat.S_IMODE((tmp_path / "secrets.env").stat().st_mode) == 0o600
    assert load_secrets(tmp_path, {}) == first
    assert load_secrets(tmp_path, {"CLICKHOUSE_PASSWORD": "from-env"})["CLICKHOUSE_PASSWORD"] == "from-env"


def test_token_key_is_long_enough_and_replaced_alone(tmp_path: Path) -> None:
    from bankcdc_stack.secrets import new_secret, store_secret

    first = load_secrets(tmp_path, {})
    assert len(first["BANK_TOKEN_KEY"]) >= 32, "schema.sql refuses a token key under 32 characters"
    rotated = new_secret("BANK_TOKEN_KEY")
    assert rotated != first["BANK_TOKEN_KEY"] and len(rotated) >= 32
    store_secret(tmp_path, "BANK_TOKEN_KEY", rotated)
    assert load_secrets(tmp_path, {}) == {**first, "BANK_TOKEN_KEY": rotated}
    assert stat.S_IMODE((tmp_path / "secrets.env").stat().st_mode) == 0o600


def test_port_in_use_error_names_port_setting_and_fix() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortInUseError, match=rf"port {port} \(DB_PORT\) is already in use.*set DB_PORT"):
            require_free_port(port, "DB_PORT", "postgres")


def test_scram_verifier_shape_hides_the_password() -> None:
    verifier = scram_sha256_verifier("s3cret", salt=b"0" * 16)
    assert verifier.startswith("SCRAM-SHA-256$4096:") and "s3cret" not in verifier
    assert verifier == scram_sha256_verifier("s3cret", salt=b"0" * 16)


def test_missing_java_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from bankcdc_stack.errors import MissingDependencyError
    from bankcdc_stack.jvm import java_binary

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingDependencyError, match="apt-get install -y openjdk-17-jre-headless"):
        java_binary()


def test_unknown_service_is_refused_with_the_choices(tmp_path: Path) -> None:
    from bankcdc_stack.stack import Stack

    stack = Stack({"BANKCDC_STATE_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="unknown service kafak: choose from postgres, kafka"):
        stack.resolve(["kafak"])
    assert [svc.name for svc in stack.resolve(["connect"])] == ["postgres", "kafka", "connect"]


def test_generated_ids_and_secrets_never_start_with_a_dash() -> None:
    """A value starting with '-' is read as an option by the command line it is passed to
    (kafka-storage failed on about one cluster id in 64)."""
    from bankcdc_stack.secrets import _new_value
    from bankcdc_stack.services.kafka import kraft_cluster_id

    draws = iter([b"\xfb" + bytes(15), b"\x00" * 16])      # the first encodes to '-w...'
    assert kraft_cluster_id(lambda: next(draws)) == "AAAAAAAAAAAAAAAAAAAAAA"
    values = iter(["-starts-with-a-dash", "fine-value"])
    assert _new_value("CLICKHOUSE_PASSWORD", lambda _n: next(values)) == "fine-value"


def test_down_of_one_service_never_stops_what_it_depends_on(tmp_path: Path) -> None:
    from bankcdc_stack.stack import Stack

    stack = Stack({"BANKCDC_STATE_DIR": str(tmp_path)})
    assert [s.name for s in stack.resolve(["filler"])] == ["postgres", "filler"], "up starts what it needs"
    assert [s.name for s in stack.dependents(["filler"])] == ["filler"]
    assert [s.name for s in stack.dependents(["kafka"])] == ["kafka", "connect", "consumer"]
    assert [s.name for s in stack.dependents(["postgres"])] == ["postgres", "connect", "airflow", "filler"]


def test_consumer_instances_take_the_ports_after_the_metrics_port() -> None:
    settings = StackSettings.from_env({"CONSUMER_INSTANCES": "3", "CONSUMER_METRICS_PORT": "9500"})
    assert settings.consumer_metrics_ports == [9500, 9501, 9502]
    assert StackSettings.from_env({}).consumer_metrics_ports == [9464]


@pytest.mark.parametrize("value", ["0", "9", "two"])
def test_bad_consumer_instances_names_the_setting(value: str) -> None:
    with pytest.raises(ConfigError, match=rf"CONSUMER_INSTANCES='{value}' is invalid: .* 1 to 8"):
        StackSettings.from_env({"CONSUMER_INSTANCES": value})


def test_a_consumer_instance_on_another_services_port_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"CONSUMER_METRICS_PORT\+1 .* and CONNECT_PORT are both 8083"):
        StackSettings.from_env({"CONSUMER_INSTANCES": "2", "CONSUMER_METRICS_PORT": "8082"})


def test_bad_transaction_partitions_names_the_setting() -> None:
    assert StackSettings.from_env({}).transaction_partitions == 3
    with pytest.raises(ConfigError, match="CDC_TRANSACTION_PARTITIONS='0' is invalid"):
        StackSettings.from_env({"CDC_TRANSACTION_PARTITIONS": "0"})
