"""Kafka Connect: a distributed worker with the Debezium PostgreSQL plugin; its state in Kafka topics."""

from __future__ import annotations

from pathlib import Path

import requests

from bankcdc_stack.jvm import ensure_jars, java_argv, java_binary, write_properties
from bankcdc_stack.process import ManagedProcess
from bankcdc_stack.services.base import Health, Service, log
from bankcdc_stack.errors import ServiceFailedError
from cdc_consumer.connectors import register_all
from cdc_consumer.errors import ConnectorError
from bankcdc_stack.settings import HOST

DEBEZIUM_CLASS = "io.debezium.connector.postgresql.PostgresConnector"


class ConnectService(Service):
    name = "connect"
    start_timeout = 150.0

    @property
    def root(self) -> Path:
        return self.settings.state_dir / "connect"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.settings.connect_port}"

    def ports(self) -> list[tuple[int, str]]:
        return [(self.settings.connect_port, "CONNECT_PORT")]

    def processes(self) -> list[ManagedProcess]:
        return [self.ctx.managed("connect")]

    def check_installed(self) -> None:
        java_binary()
        ensure_jars(self.settings)

    def prepare(self) -> None:
        write_properties(self.root / "connect-distributed.properties", {
            "bootstrap.servers": f"{HOST}:{self.settings.kafka_port}",
            "group.id": "bankcdc-connect",
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
        })

    def launch(self) -> None:
        argv = java_argv(self.settings, self.settings.connect_heap,
                         "org.apache.kafka.connect.cli.ConnectDistributed",
                         str(self.root / "connect-distributed.properties"))
        self.processes()[0].spawn(argv, env=self.ctx.child_env("DEBEZIUM_DB_PASSWORD"), cwd=self.root)

    def health(self) -> Health:
        try:
            response = requests.get(f"{self.url}/connector-plugins", timeout=3)
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
            for name in register_all(self.url, self.settings.repo_root / "debezium"):
                log.info("connect: connector %s RUNNING", name)
        except ConnectorError as exc:
            raise ServiceFailedError(f"registering Debezium connectors failed: {exc}") from exc
