"""Kafka Connect: a distributed worker with the Debezium PostgreSQL plugin; its state in Kafka topics.

Its REST API asks every client for credentials (Kafka's basic-auth REST extension, users from a
JAAS property file of the state dir): CONNECT_REST_USER with CONNECT_REST_PASSWORD.
"""

from __future__ import annotations

from pathlib import Path

import requests

from bankcdc_stack.environment import CONNECT_REST_USER, KAFKA_SECURITY, KAFKA_USERS
from bankcdc_stack.errors import ServiceFailedError
from bankcdc_stack.jvm import ensure_jars, java_argv, java_binary, write_private, write_properties
from bankcdc_stack.kafka_access import CONNECT_GROUP
from bankcdc_stack.process import ManagedProcess
from bankcdc_stack.services.base import Health, Service, log
from bankcdc_stack.settings import HOST
from cdc_consumer.connectors import register_all
from cdc_consumer.errors import CdcError

DEBEZIUM_CLASS = "io.debezium.connector.postgresql.PostgresConnector"
BASIC_AUTH_EXTENSION = "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension"
LOGIN_MODULE = "org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule"


class ConnectService(Service):
    name = "connect"
    start_timeout = 150.0

    @property
    def root(self) -> Path:
        return self.settings.state_dir / "connect"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.settings.connect_port}"

    @property
    def auth(self) -> tuple[str, str]:
        return CONNECT_REST_USER, self.ctx.secrets["CONNECT_REST_PASSWORD"]

    def ports(self) -> list[tuple[int, str]]:
        return [(self.settings.connect_port, "CONNECT_PORT")]

    def processes(self) -> list[ManagedProcess]:
        return [self.ctx.managed("connect")]

    def check_installed(self) -> None:
        java_binary()
        ensure_jars(self.settings)

    def _kafka_login(self) -> dict[str, str]:
        """The worker's Kafka credentials (principal `connect`), for itself and for the producers,
        consumers and admin clients it creates for connectors."""
        password = self.ctx.secrets[KAFKA_USERS["connect"]]
        login = {"security.protocol": KAFKA_SECURITY["security.protocol"],
                 "sasl.mechanism": KAFKA_SECURITY["sasl.mechanisms"],
                 "sasl.jaas.config": f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                                     f'username="connect" password="{password}";'}
        return {f"{prefix}{key}": value for prefix in ("", "producer.", "consumer.", "admin.")
                for key, value in login.items()}

    def prepare(self) -> None:
        write_properties(self.root / "connect-distributed.properties", {
            "bootstrap.servers": f"{HOST}:{self.settings.kafka_port}",
            **self._kafka_login(),
            "group.id": CONNECT_GROUP,
            "listeners": f"http://{HOST}:{self.settings.connect_port}",
            "rest.advertised.host.name": HOST,
            "rest.advertised.port": self.settings.connect_port,
            "plugin.path": self.settings.jvm_lib / "debezium",
            "plugin.discovery": "hybrid_warn",
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable": "false",
            "value.converter.schemas.enable": "false",
            "config.storage.topic": "_connect-configs",
            "offset.storage.topic": "_connect-offsets",
            "status.storage.topic": "_connect-status",
            "config.storage.replication.factor": 1,
            "offset.storage.replication.factor": 1,
            "status.storage.replication.factor": 1,
            "offset.flush.interval.ms": 5000,
            # connectors set producer.override.max.request.size (debezium/*.json) for large values
            "connector.client.config.override.policy": "All",
            # secrets reach connector configs as ${env:NAME}, never inline in the JSON
            "config.providers": "env",
            "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
            "rest.extension.classes": BASIC_AUTH_EXTENSION,
        }, private=True)
        write_private(self.root / "rest-users.properties", f"{CONNECT_REST_USER}={self.auth[1]}\n")
        write_private(self.root / "rest-jaas.conf", f'KafkaConnect {{\n  {LOGIN_MODULE} required\n'
                                                   f'  file="{self.root / "rest-users.properties"}";\n}};\n')

    def launch(self) -> None:
        argv = java_argv(self.settings, self.settings.connect_heap,
                         "org.apache.kafka.connect.cli.ConnectDistributed",
                         str(self.root / "connect-distributed.properties"),
                         properties={"java.security.auth.login.config": self.root / "rest-jaas.conf"})
        self.processes()[0].spawn(argv, env=self.ctx.child_env("DEBEZIUM_DB_PASSWORD"), cwd=self.root)

    def health(self) -> Health:
        try:
            response = requests.get(f"{self.url}/connector-plugins", auth=self.auth, timeout=3)
            response.raise_for_status()
            plugins = {plugin["class"] for plugin in response.json()}
        except (requests.RequestException, ValueError) as exc:
            return Health(False, type(exc).__name__)
        if DEBEZIUM_CLASS not in plugins:
            return Health(False, f"Debezium plugin not loaded (plugins: {sorted(plugins)})")
        return Health(True, "REST up, Debezium PostgresConnector loaded")

    def after_healthy(self) -> None:
        """Create or update the Debezium connectors of debezium/ and wait until they run."""
        try:
            for name in register_all(self.url, self.settings.repo_root / "debezium", self.auth):
                log.info("connect: connector %s RUNNING", name)
        except CdcError as exc:
            raise ServiceFailedError(f"registering Debezium connectors failed: {exc}") from exc
