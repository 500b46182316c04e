"""The partition count of each CDC topic, from the topic creation groups of debezium/*.json.

Debezium creates a topic at its first event with the count its connector's
`topic.creation.<group>.partitions` gives (`${env:NAME}` is read from the
environment, as Connect's EnvVarConfigProvider does). A topic made with fewer,
before the setting was raised, is grown to it here: Kafka can add partitions,
never remove them. Growing moves the keys that hash to the new partitions; the
raw layer and the ODS take each key's change with the highest (_version, _lsn),
so they do not depend on the order across partitions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from cdc_consumer.connectors import load_specs
from cdc_consumer.errors import ConfigError

_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class TopicRule:
    connector: str
    group: str
    include: re.Pattern[str]
    partitions: int

    def matches(self, topic: str) -> bool:
        return self.include.fullmatch(topic) is not None


def _resolve(value: str, env: Mapping[str, str], where: str) -> str:
    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if not env.get(name, "").strip():
            raise ConfigError(f"{name} is not set: {where} reads it; set {name} (the stack's default is in "
                              "`./stack env`)")
        return env[name].strip()

    return _ENV_REF.sub(lookup, value)


def topic_rules(debezium_dir: Path, env: Mapping[str, str]) -> list[TopicRule]:
    """Every connector's non-default topic creation groups, partition counts resolved."""
    rules = []
    for spec in load_specs(debezium_dir):
        config = spec.config
        for group in (g.strip() for g in config.get("topic.creation.groups", "").split(",") if g.strip()):
            key = f"topic.creation.{group}.partitions"
            raw = _resolve(config.get(key, config.get("topic.creation.default.partitions", "1")), env,
                           f"{spec.name}'s {key}")
            if not raw.isdigit() or not 1 <= int(raw) <= 1000:
                raise ConfigError(f"{spec.name}'s {key} is {raw!r}: set it (or the variable it names) to a "
                                  "partition count from 1 to 1000")
            include = config.get(f"topic.creation.{group}.include", "")
            rules.append(TopicRule(spec.name, group, re.compile(include), int(raw)))
    return rules


def grow_topics(admin_config: Mapping[str, str], rules: list[TopicRule]) -> list[tuple[str, int, int]]:
    """As the Kafka user of `admin_config` (it needs ALTER on the topics), add partitions to every
    existing topic a rule covers that has fewer than the rule's count. Returns (topic, partitions
    before, after) per grown topic; topics not created yet are left to Debezium. Raises
    KafkaException when the broker refuses or does not answer."""
    from confluent_kafka.admin import AdminClient, NewPartitions

    admin = AdminClient(dict(admin_config))
    topics = admin.list_topics(timeout=15).topics
    grow: list[tuple[str, int, int]] = []
    for name, meta in sorted(topics.items()):
        wanted = max((rule.partitions for rule in rules if rule.matches(name)), default=0)
        if wanted > len(meta.partitions):
            grow.append((name, len(meta.partitions), wanted))
    if grow:
        futures = admin.create_partitions([NewPartitions(name, after) for name, _, after in grow],
                                          request_timeout=30)
        for future in futures.values():
            future.result(timeout=30)
    return grow
