"""Typed consumer settings, built once from the environment and validated at start-up."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping, TypeVar

from cdc_consumer.errors import ConfigError

T = TypeVar("T")


def _read(env: Mapping[str, str], name: str, default: str, parse: Callable[[str], T], allowed: str,
          check: Callable[[T], bool] = lambda _: True) -> T:
    raw = env.get(name, "").strip() or default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is invalid: set {name} to {allowed}") from None
    if not check(value):
        raise ConfigError(f"{name}={raw!r} is out of range: set {name} to {allowed}")
    return value


def _is_ip_address(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


KAFKA_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
FLAGS = {"true": True, "1": True, "false": False, "0": False}


def _flag(raw: str) -> bool:
    try:
        return FLAGS[raw.lower()]
    except KeyError:
        raise ValueError(raw) from None


def ca_file(env: Mapping[str, str], name: str, tls: bool, signed: str) -> str:
    """The PEM CA file `name` names ("" when unset: the system's trust store). ConfigError when
    `tls` is on and the path is not a file."""
    path = env.get(name, "").strip()
    if tls and path and not os.path.isfile(path):
        raise ConfigError(f"{name}={path!r} is not a file: mount the PEM certificate of the CA that signed "
                          f"{signed} there, or set {name} to its path (unset: the system's trust store)")
    return path


@dataclass(frozen=True)
class ConsumerSettings:
    bootstrap_servers: str
    kafka_security_protocol: str
    kafka_sasl_mechanism: str
    kafka_ssl_ca_location: str
    kafka_user: str
    kafka_password: str = field(repr=False)
    group_id: str
    client_id: str
    topic_prefix: str
    topic_regex: str
    batch_max_rows: int
    batch_max_seconds: float
    clickhouse_host: str
    clickhouse_port: int
    clickhouse_secure: bool
    clickhouse_ca_cert: str
    clickhouse_user: str
    clickhouse_password: str = field(repr=False)
    raw_database: str
    metrics_port: int
    log_every_seconds: float
    metrics_host: str = "127.0.0.1"   # 0.0.0.0 where a scraper in another container reads it

    def describe(self) -> str:
        """Every setting, one per line; the passwords only as whether they are set."""
        lines = [f"{f.name} = {getattr(self, f.name)!r}" for f in fields(self) if f.repr]
        lines.append(f"kafka_password = {'(set)' if self.kafka_password else '(empty)'}")
        lines.append(f"clickhouse_password = {'(set)' if self.clickhouse_password else '(empty)'}")
        return "\n".join(lines)

    def kafka_client(self) -> dict[str, str]:
        """librdkafka settings that reach and authenticate to the broker as `kafka_user`.
        ConfigError when the password is missing: the broker refuses anonymous clients."""
        if not self.kafka_password:
            raise ConfigError("KAFKA_CONSUMER_PASSWORD is not set: the Kafka broker authenticates every client "
                              f"(SASL/{self.kafka_sasl_mechanism}); set it to the password of CDC_KAFKA_USER="
                              f"{self.kafka_user} (`./stack env` prints the local one)")
        config = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.kafka_security_protocol,
                  "sasl.mechanisms": self.kafka_sasl_mechanism, "sasl.username": self.kafka_user,
                  "sasl.password": self.kafka_password}
        if self.kafka_ssl_ca_location:
            config["ssl.ca.location"] = self.kafka_ssl_ca_location
        return config

    def clickhouse_client(self) -> dict[str, Any]:
        """clickhouse-connect arguments reaching the raw database as `clickhouse_user`: plain HTTP,
        or with `clickhouse_secure` HTTPS verifying the server's certificate (against
        `clickhouse_ca_cert` when set, else the system's trust store)."""
        kwargs: dict[str, Any] = {"host": self.clickhouse_host, "port": self.clickhouse_port,
                                  "username": self.clickhouse_user, "password": self.clickhouse_password,
                                  "database": self.raw_database, "secure": self.clickhouse_secure}
        if self.clickhouse_secure:
            kwargs["verify"] = True
            if self.clickhouse_ca_cert:
                kwargs["ca_cert"] = self.clickhouse_ca_cert
        return kwargs

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ConsumerSettings":
        env = os.environ if env is None else env
        prefix = env.get("CDC_TOPIC_PREFIX", "").strip() or "bank"
        regex = env.get("CDC_TOPIC_REGEX", "").strip() or rf"^{re.escape(prefix)}\.[a-z0-9_]+\.[a-z0-9_]+$"
        try:
            re.compile(regex)
        except re.error as exc:
            raise ConfigError(f"CDC_TOPIC_REGEX={regex!r} is not a regular expression ({exc})") from None
        bootstrap = env.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or "127.0.0.1:9092"
        if not all(re.fullmatch(r"[\w.\-\[\]:]+:\d+", part) for part in bootstrap.split(",")):
            raise ConfigError(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap!r} is invalid: use host:port[,host:port]")
        protocol = env.get("KAFKA_SECURITY_PROTOCOL", "").strip() or "SASL_PLAINTEXT"
        if protocol not in KAFKA_PROTOCOLS:
            raise ConfigError(f"KAFKA_SECURITY_PROTOCOL={protocol!r} is invalid: set it to one of "
                              f"{', '.join(KAFKA_PROTOCOLS)} (the broker accepts authenticated clients only)")
        secure = _read(env, "CLICKHOUSE_SECURE", "false", _flag, "true (HTTPS) or false (HTTP)")
        return cls(
            bootstrap_servers=bootstrap,
            kafka_security_protocol=protocol,
            kafka_sasl_mechanism=env.get("KAFKA_SASL_MECHANISM", "").strip() or "SCRAM-SHA-512",
            kafka_ssl_ca_location=ca_file(env, "KAFKA_SSL_CA_LOCATION", protocol.endswith("_SSL"),
                                           "the Kafka brokers' certificates"),
            kafka_user=env.get("CDC_KAFKA_USER", "").strip() or "cdc-consumer",
            kafka_password=env.get("KAFKA_CONSUMER_PASSWORD", ""),
            group_id=env.get("CDC_GROUP_ID", "").strip() or "bankcdc-raw-loader",
            client_id=env.get("CDC_CLIENT_ID", "").strip() or "cdc-consumer",
            topic_prefix=prefix,
            topic_regex=regex,
            batch_max_rows=_read(env, "CDC_BATCH_MAX_ROWS", "20000", int, "a whole number from 1 to 1000000",
                                 lambda v: 1 <= v <= 1_000_000),
            batch_max_seconds=_read(env, "CDC_BATCH_MAX_SECONDS", "0.3", float, "seconds from 0.01 to 60",
                                    lambda v: 0.01 <= v <= 60),
            clickhouse_host=env.get("CLICKHOUSE_HOST", "").strip() or "127.0.0.1",
            clickhouse_port=_read(env, "CLICKHOUSE_PORT", "8123", int, "a TCP port (1-65535)",
                                  lambda v: 1 <= v <= 65535),
            clickhouse_secure=secure,
            clickhouse_ca_cert=ca_file(env, "CLICKHOUSE_CA_CERT", secure, "ClickHouse's certificate"),
            clickhouse_user=env.get("CDC_CLICKHOUSE_USER", "").strip() or "loader",
            clickhouse_password=env.get("CLICKHOUSE_LOADER_PASSWORD", ""),
            raw_database=env.get("CDC_RAW_DATABASE", "").strip() or "raw",
            metrics_port=_read(env, "CONSUMER_METRICS_PORT", "9464", int, "a TCP port (1-65535), or 0 for none",
                               lambda v: 0 <= v <= 65535),
            log_every_seconds=_read(env, "CDC_LOG_EVERY_SECONDS", "10", float, "seconds from 1 to 3600",
                                    lambda v: 1 <= v <= 3600),
            metrics_host=_read(env, "CONSUMER_METRICS_HOST", "127.0.0.1", str,
                               "the address /metrics listens on (an IP address, 0.0.0.0 for every interface)",
                               _is_ip_address),
        )
