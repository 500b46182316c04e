"""Kafka's principals and what each may do, applied by the super user `admin`.

The local stack applies them after each broker start (bankcdc_stack.services.kafka); compose runs
`python -m bankcdc_stack.kafka_access` once before Connect and the consumer start. Both are
idempotent: a SCRAM credential is upserted, an ACL that exists already is left as it is.
"""

from __future__ import annotations

import os
import sys
from typing import Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, ResourcePatternType,
                                   ResourceType, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion)

from bankcdc_stack.settings import REPO_ROOT
from bankcdc_stack.topic_partitions import grow_topics, topic_rules

SCRAM = "SCRAM-SHA-512"
CONNECT_GROUP = "bankcdc-connect"
CONSUMER_GROUP = "bankcdc-raw-loader"
SCRAM_ITERATIONS = 8192

_R, _OP = ResourceType, AclOperation
# principal -> (resource type, name, pattern, operations): everything else is denied
ACLS: dict[str, list[tuple[ResourceType, str, ResourcePatternType, tuple[AclOperation, ...]]]] = {
    # Debezium writes (and creates) the bank topics and its heartbeat topic; the worker keeps its
    # configs, offsets and statuses in its own topics and coordinates in its group
    "connect": [
        (_R.TOPIC, "bank.", ResourcePatternType.PREFIXED, (_OP.WRITE, _OP.CREATE, _OP.DESCRIBE, _OP.DESCRIBE_CONFIGS)),
        (_R.TOPIC, "__debezium-heartbeat", ResourcePatternType.PREFIXED,
         (_OP.WRITE, _OP.CREATE, _OP.DESCRIBE, _OP.DESCRIBE_CONFIGS)),
        (_R.TOPIC, "_connect-", ResourcePatternType.PREFIXED,
         (_OP.READ, _OP.WRITE, _OP.CREATE, _OP.DESCRIBE, _OP.DESCRIBE_CONFIGS)),
        (_R.GROUP, CONNECT_GROUP, ResourcePatternType.LITERAL, (_OP.READ, _OP.DESCRIBE)),
        (_R.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, (_OP.DESCRIBE,)),
    ],
    # the CDC consumer reads the bank topics in its group (and the groups named after it)
    "cdc-consumer": [
        (_R.TOPIC, "bank.", ResourcePatternType.PREFIXED, (_OP.READ, _OP.DESCRIBE)),
        (_R.GROUP, CONSUMER_GROUP, ResourcePatternType.PREFIXED, (_OP.READ, _OP.DESCRIBE)),
    ],
    # monitoring: describe topics (log ends) and groups (members, committed offsets)
    "monitor": [
        (_R.TOPIC, "*", ResourcePatternType.LITERAL, (_OP.DESCRIBE,)),
        (_R.GROUP, "*", ResourcePatternType.LITERAL, (_OP.DESCRIBE,)),
    ],
}


class KafkaAccessError(Exception):
    """The broker refused or failed to store a credential or an ACL."""


def bindings() -> list[AclBinding]:
    return [AclBinding(kind, name, pattern, f"User:{user}", "*", operation, AclPermissionType.ALLOW)
            for user, grants in ACLS.items() for kind, name, pattern, operations in grants
            for operation in operations]


def apply_kafka_access(admin_config: Mapping[str, str], passwords: Mapping[str, str]) -> int:
    """Upsert each principal's SCRAM credential (`passwords`: user -> password) and create every
    ACL of ACLS, as the super user of `admin_config`. Returns the number of ACLs."""
    admin = AdminClient(dict(admin_config))
    upserts = [UserScramCredentialUpsertion(user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS),
                                            password.encode()) for user, password in passwords.items()]
    _wait_all(admin.alter_user_scram_credentials(upserts), "storing the principals' SCRAM credentials")
    acls = bindings()
    _wait_all(admin.create_acls(acls), "creating the ACLs")
    return len(acls)


def _wait_all(futures: dict, what: str) -> None:
    try:
        for future in futures.values():
            future.result(timeout=30)
    except KafkaException as exc:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else exc
        raise KafkaAccessError(f"{what} failed: {error}") from None


def admin_config(env: Mapping[str, str]) -> dict[str, str]:
    """librdkafka settings of the super user `admin` from compose's environment: KAFKA_BOOTSTRAP_SERVERS,
    KAFKA_ADMIN_PASSWORD, KAFKA_SECURITY_PROTOCOL (default SASL_PLAINTEXT) and, when set,
    KAFKA_SSL_CA_LOCATION as ssl.ca.location. ConfigError when TLS is on and that is not a file
    (the consumer's own check, cdc_consumer.config.ca_file)."""
    from bankcdc_stack.environment import KAFKA_SECURITY
    from cdc_consumer.config import ca_file

    protocol = env.get("KAFKA_SECURITY_PROTOCOL") or KAFKA_SECURITY["security.protocol"]
    config = {"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"], "security.protocol": protocol,
              "sasl.mechanisms": SCRAM, "sasl.username": "admin", "sasl.password": env["KAFKA_ADMIN_PASSWORD"]}
    ca = ca_file(env, "KAFKA_SSL_CA_LOCATION", protocol.endswith("_SSL"), "the broker's certificate")
    if ca:
        config["ssl.ca.location"] = ca
    return config


def main(env: Mapping[str, str] | None = None) -> int:
    """Compose's set-up step: KAFKA_BOOTSTRAP_SERVERS, KAFKA_ADMIN_PASSWORD and each principal's
    password (KAFKA_CONNECT_PASSWORD, KAFKA_CONSUMER_PASSWORD, KAFKA_MONITOR_PASSWORD); over TLS
    also KAFKA_SECURITY_PROTOCOL=SASL_SSL and KAFKA_SSL_CA_LOCATION; the partition counts the
    connectors read (CDC_TRANSACTION_PARTITIONS). Exit 2 for a missing setting or CA file."""
    from bankcdc_stack.environment import KAFKA_USERS
    from cdc_consumer.errors import ConfigError

    env = os.environ if env is None else env
    missing = [secret for secret in KAFKA_USERS.values() if not env.get(secret)]
    if missing or not env.get("KAFKA_BOOTSTRAP_SERVERS"):
        print(f"kafka_access: set {', '.join(missing or ['KAFKA_BOOTSTRAP_SERVERS'])}", file=sys.stderr)
        return 2
    try:
        admin = admin_config(env)
    except ConfigError as exc:
        print(f"kafka_access: {exc}", file=sys.stderr)
        return 2
    passwords = {user: env[secret] for user, secret in KAFKA_USERS.items() if user != "admin"}
    try:
        count = apply_kafka_access(admin, passwords)
    except KafkaAccessError as exc:
        print(f"kafka_access: {exc}", file=sys.stderr)
        return 1
    print(f"kafka_access: users {', '.join(passwords)} and their {count} ACLs in place")
    return _grow_topics(admin, env)


def _grow_topics(admin: Mapping[str, str], env: Mapping[str, str]) -> int:
    """Topics made before their partition setting (debezium/*.json) was raised get the new count."""
    from cdc_consumer.errors import ConfigError

    try:
        grown = grow_topics(admin, topic_rules(REPO_ROOT / "debezium", env))
    except ConfigError as exc:
        print(f"kafka_access: {exc}", file=sys.stderr)
        return 2
    except KafkaException as exc:
        print(f"kafka_access: adding partitions failed: {exc}", file=sys.stderr)
        return 1
    for topic, before, after in grown:
        print(f"kafka_access: {topic} grown from {before} to {after} partitions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
