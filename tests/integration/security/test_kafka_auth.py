"""Issue 14: the Kafka broker authenticates every client and allows each principal only its job.

Tried on the live test stack's broker with real clients: no credentials and wrong credentials are
refused; the consumer's principal may read the bank topics in its group, and may not produce to
them, read Kafka Connect's config topic or delete a topic; monitoring may describe, not read.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from ..cdc_helpers import kafka_client

pytestmark = pytest.mark.integration
BANK_TOPIC = "bank.bank.terminal"


def _metadata_error(config: dict[str, str]) -> str:
    """What the broker answers a metadata request from a client with `config`: "" if it serves it."""
    try:
        AdminClient({**config, "socket.timeout.ms": 5000}).list_topics(timeout=8)
    except KafkaException as exc:
        return str(exc)
    return ""


def _read_error(config: dict[str, str], topic: str) -> KafkaError | None:
    """The error reading `topic` from its start as `config` gives, or None if a message arrives."""
    consumer = Consumer({**config, "group.id": f"bankcdc-raw-loader-auth-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        for _ in range(20):
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            return msg.error()
        return KafkaError(KafkaError._TIMED_OUT)
    finally:
        consumer.close()


def test_no_or_wrong_credentials_are_refused(stack_env: dict[str, str]) -> None:
    anonymous = _metadata_error({"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]})
    assert anonymous, "a client without credentials was served"
    wrong = _metadata_error({**kafka_client(stack_env, "cdc-consumer"), "sasl.password": "not-the-password"})
    assert wrong, "a client with a wrong password was served"
    assert _metadata_error(kafka_client(stack_env, "cdc-consumer")) == "", "the consumer's own login works"


def test_the_consumer_principal_reads_bank_topics_and_nothing_more(stack_env: dict[str, str]) -> None:
    consumer = kafka_client(stack_env, "cdc-consumer")
    assert _read_error(consumer, BANK_TOPIC) is None, "it reads a bank topic"

    delivered: list[KafkaError | None] = []
    producer = Producer({**consumer, "message.send.max.retries": 0})
    producer.produce(BANK_TOPIC, value=b"{}", on_delivery=lambda err, _msg: delivered.append(err))
    producer.flush(15)
    assert delivered and delivered[0] is not None and delivered[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, \
        f"it produced to a bank topic: {delivered}"

    # a topic it may not even describe: hidden from its topic list, refused when asked for by name
    admin = AdminClient(consumer)
    assert "_connect-configs" not in admin.list_topics(timeout=10).topics
    hidden = admin.list_topics(topic="_connect-configs", timeout=10).topics["_connect-configs"]
    assert hidden.error is not None and hidden.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, hidden.error

    futures = admin.delete_topics([BANK_TOPIC], operation_timeout=10)
    with pytest.raises(KafkaException) as err:
        futures[BANK_TOPIC].result(timeout=15)
    assert err.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert BANK_TOPIC in AdminClient(kafka_client(stack_env)).list_topics(timeout=10).topics, "the topic is still there"


def test_monitoring_describes_but_cannot_read(stack_env: dict[str, str]) -> None:
    monitor = kafka_client(stack_env, "monitor")
    topics = AdminClient(monitor).list_topics(timeout=10).topics
    assert BANK_TOPIC in topics
    denied = _read_error(monitor, BANK_TOPIC)
    assert denied is not None and denied.code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                                    KafkaError.GROUP_AUTHORIZATION_FAILED), denied
