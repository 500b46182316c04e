"""Kafka: one KRaft node (broker and controller), storage formatted on first start.

Every client authenticates: SASL/SCRAM-SHA-512 on the client listener, SASL/PLAIN (the broker
alone, as `admin`) on the controller listener, and KRaft's StandardAuthorizer allows each
principal only what bankcdc_stack.kafka_access.ACLS gives it. `admin` is the super user, used by the stack's set-up only;
its SCRAM credential is written when the storage is formatted, the others' after each start.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path
from typing import Callable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from bankcdc_stack.environment import KAFKA_USERS, kafka_client_config
from bankcdc_stack.kafka_access import SCRAM, KafkaAccessError, apply_kafka_access
from bankcdc_stack.errors import ConfigError, ServiceFailedError
from bankcdc_stack.jvm import ensure_jars, java_argv, java_binary, write_properties
from bankcdc_stack.process import ManagedProcess
from bankcdc_stack.services.base import Health, Service, log
from bankcdc_stack.settings import HOST
from bankcdc_stack.topic_partitions import grow_topics, topic_rules
from cdc_consumer.errors import CdcError

MAX_MESSAGE_BYTES = 32 * 1024**2
"""Largest Kafka message (broker message.max.bytes = the connectors' producer max.request.size)."""
SASL_MARKER = ".bankcdc-sasl"   # in the data dir: formatted with the admin's SCRAM credential



def kraft_cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A KRaft cluster id as Kafka's Uuid.randomUuid() makes them: urlsafe base64 of 16 random
    bytes, never starting with '-' (a command line would read it as an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes()).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class KafkaService(Service):
    name = "kafka"
    start_timeout = 90.0

    @property
    def root(self) -> Path:
        return self.settings.state_dir / "kafka"

    @property
    def config_path(self) -> Path:
        return self.root / "server.properties"

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.settings.kafka_port}"

    def ports(self) -> list[tuple[int, str]]:
        return [(self.settings.kafka_port, "KAFKA_PORT"), (self.settings.kafka_controller_port, "KAFKA_CONTROLLER_PORT")]

    def processes(self) -> list[ManagedProcess]:
        return [self.ctx.managed("kafka")]

    def check_installed(self) -> None:
        java_binary()
        ensure_jars(self.settings)

    @property
    def admin_config(self) -> dict[str, str]:
        return kafka_client_config(self.settings, self.ctx.secrets, "admin")

    def prepare(self) -> None:
        s = self.settings
        admin = self.ctx.secrets[KAFKA_USERS["admin"]]
        write_properties(self.config_path, {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@{HOST}:{s.kafka_controller_port}",
            "listeners": f"SASL_PLAINTEXT://{HOST}:{s.kafka_port},CONTROLLER://{HOST}:{s.kafka_controller_port}",
            "advertised.listeners": f"SASL_PLAINTEXT://{HOST}:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
            "inter.broker.listener.name": "SASL_PLAINTEXT",
            # clients (and the broker to itself) by SCRAM; the broker to its controller by PLAIN,
            # since SCRAM credentials live in the metadata the controller serves
            "sasl.enabled.mechanisms": SCRAM,
            "sasl.mechanism.inter.broker.protocol": SCRAM,
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config":
                f'org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" '
                f'password="{admin}";',
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config":
                f'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
                f'password="{admin}" user_admin="{admin}";',
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin",
            "allow.everyone.if.no.acl.found": "false",
            "log.dirs": self.root / "data",
            "num.partitions": 1,
            "offsets.topic.replication.factor": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            "log.retention.hours": 72,
            "log.retention.bytes": 4 * 1024**3,
            "log.segment.bytes": 256 * 1024**2,
            "auto.create.topics.enable": "true",
            # one change event may carry a multi-megabyte value twice (before and after image, REPLICA
            # IDENTITY FULL): the 1 MB default would fail the Debezium task (RecordTooLargeException)
            "message.max.bytes": MAX_MESSAGE_BYTES,
            "num.network.threads": 2,
            "num.io.threads": 4,
        }, private=True)
        data = self.root / "data"
        if (data / "meta.properties").exists():
            if not (data / SASL_MARKER).exists():
                raise ConfigError(
                    f"Kafka's storage in {data} was formatted before the broker authenticated its clients, so it "
                    "holds no SCRAM credential for the stack's admin: stop the stack and remove the state "
                    f"(./stack down && rm -rf {self.settings.state_dir}), then ./stack up")
            return
        cluster_id = kraft_cluster_id()
        log.info("kafka: formatting KRaft storage (cluster id %s)", cluster_id)
        result = subprocess.run(
            java_argv(s, "256m", "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                      "-c", str(self.config_path), "--add-scram", f"{SCRAM}=[name=admin,password={admin}]"),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise ServiceFailedError(f"formatting Kafka storage failed:\n{result.stdout}\n{result.stderr}")
        (data / SASL_MARKER).write_text("admin SCRAM credential written at format\n")

    def launch(self) -> None:
        argv = java_argv(self.settings, self.settings.kafka_heap, "kafka.Kafka", str(self.config_path))
        self.processes()[0].spawn(argv, env=self.ctx.child_env(), cwd=self.root)

    def health(self) -> Health:
        try:
            admin = AdminClient({**self.admin_config, "socket.timeout.ms": 2000, "logger": _silent_logger()})
            meta = admin.list_topics(timeout=2)
        except KafkaException as exc:
            return Health(False, str(exc))
        if not meta.brokers:
            return Health(False, "no broker in metadata")
        return Health(True, f"{len(meta.brokers)} broker, {len(meta.topics)} topics")

    def after_healthy(self) -> None:
        """The pipeline's principals (SCRAM credentials from the secrets) and their ACLs; idempotent."""
        passwords = {user: self.ctx.secrets[secret] for user, secret in KAFKA_USERS.items() if user != "admin"}
        try:
            count = apply_kafka_access(self.admin_config, passwords)
        except KafkaAccessError as exc:
            raise ServiceFailedError(f"kafka: {exc}") from None
        log.info("kafka: users %s and their %d ACLs in place", ", ".join(passwords), count)
        self._grow_topics()

    def _grow_topics(self) -> None:
        """Topics made before their partition setting was raised get the new count (topic_partitions)."""
        try:
            rules = topic_rules(self.settings.repo_root / "debezium", self.ctx.env)
        except CdcError as exc:
            raise ConfigError(str(exc)) from None
        try:
            grown = grow_topics(self.admin_config, rules)
        except KafkaException as exc:
            raise ServiceFailedError(f"kafka: adding partitions failed: {exc}") from None
        for topic, before, after in grown:
            log.info("kafka: %s grown from %d to %d partitions", topic, before, after)


def _silent_logger():
    """librdkafka logs connection-refused noise while the broker boots; keep the CLI readable."""
    import logging

    quiet = logging.getLogger("bankcdc_stack.librdkafka")
    quiet.setLevel(logging.CRITICAL)
    return quiet
