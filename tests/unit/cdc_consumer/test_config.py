"""Consumer settings: defaults work, bad values name the setting and the fix."""

from __future__ import annotations

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
