"""Kafka: one KRaft node (broker and controller), storage formatted on first start."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path
from typing import Callable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from bankcdc_stack.errors import ServiceFailedError
from bankcdc_stack.jvm import ensure_jars, java_argv, java_binary, write_properties
from bankcdc_stack.process import ManagedProcess
from bankcdc_stack.services.base import Health, Service, log
from bankcdc_stack.settings import HOST

MAX_MESSAGE_BYTES = 32 * 1024**2
"""Largest Kafka message (broker message.max.bytes = the connectors' producer max.request.size)."""


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

    def prepare(self) -> None:
        s = self.settings
        write_properties(self.config_path, {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@{HOST}:{s.kafka_controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{s.kafka_port},CONTROLLER://{HOST}:{s.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
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
        })
        if (self.root / "data" / "meta.properties").exists():
            return
        cluster_id = kraft_cluster_id()
        log.info("kafka: formatting KRaft storage (cluster id %s)", cluster_id)
        result = subprocess.run(
            java_argv(s, "256m", "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(self.config_path)),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise ServiceFailedError(f"formatting Kafka storage failed:\n{result.stdout}\n{result.stderr}")

    def launch(self) -> None:
        argv = java_argv(self.settings, self.settings.kafka_heap, "kafka.Kafka", str(self.config_path))
        self.processes()[0].spawn(argv, env=self.ctx.child_env(), cwd=self.root)

    def health(self) -> Health:
        try:
            admin = AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 2000,
                                 "logger": _silent_logger()})
            meta = admin.list_topics(timeout=2)
        except KafkaException as exc:
            return Health(False, str(exc))
        if not meta.brokers:
            return Health(False, "no broker in metadata")
        return Health(True, f"{len(meta.brokers)} broker, {len(meta.topics)} topics")


def _silent_logger():
    """librdkafka logs connection-refused noise while the broker boots; keep the CLI readable."""
    import logging

    quiet = logging.getLogger("bankcdc_stack.librdkafka")
    quiet.setLevel(logging.CRITICAL)
    return quiet
