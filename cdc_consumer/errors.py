"""The consumer's one exception hierarchy."""


class CdcError(Exception):
    """Base of every error the CDC package raises on purpose."""


class ConfigError(CdcError):
    """A setting has a bad value; the message names the setting and the fix."""


class DecodeError(CdcError):
    """A Kafka message is not a Debezium change event we can load; it goes to the dead-letter table."""


class LoadError(CdcError):
    """ClickHouse refused or failed a batch; the batch is retried, offsets are not committed."""


class DependencyUnavailable(CdcError):
    """ClickHouse or Kafka did not answer: the consumer waits with back-off, it never exits 2 for it."""

    def __init__(self, dependency: str, message: str) -> None:
        super().__init__(message)
        self.dependency = dependency


class ConnectorError(CdcError):
    """Kafka Connect refused a connector or its task failed."""
