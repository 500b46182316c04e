"""Partition counts of the CDC topics, read from the repository's debezium/*.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from bankcdc_stack.settings import StackSettings
from bankcdc_stack.environment import client_environment
from bankcdc_stack.topic_partitions import topic_rules
from cdc_consumer.errors import ConfigError

DEBEZIUM = Path(__file__).resolve().parents[2] / "debezium"


def test_the_transaction_topic_takes_its_count_from_the_environment() -> None:
    [rule] = topic_rules(DEBEZIUM, {"CDC_TRANSACTION_PARTITIONS": "6"})
    assert (rule.connector, rule.partitions) == ("bank-transactions", 6)
    assert rule.matches("bank.bank.transaction")
    assert not rule.matches("bank.cdc.heartbeat") and not rule.matches("bank.bank.transactions")


def test_the_local_stack_gives_connect_the_setting() -> None:
    env = client_environment(StackSettings.from_env({"CDC_TRANSACTION_PARTITIONS": "4"}), {})
    assert [r.partitions for r in topic_rules(DEBEZIUM, env)] == [4]


@pytest.mark.parametrize(("env", "message"), [
    ({}, "CDC_TRANSACTION_PARTITIONS is not set"),
    ({"CDC_TRANSACTION_PARTITIONS": "lots"}, "partitions is 'lots'"),
])
def test_a_missing_or_bad_count_names_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        topic_rules(DEBEZIUM, env)
