#!/bin/bash
# Kafka in compose: a KRaft node that is broker and controller, configured as the local stack's
# (bankcdc_stack/services/kafka.py). Alone by default (docker-compose.yml: node 1, its own voter,
# replication factor 1); docker-compose.cluster.yml runs three with the variables below set.
# Every listener is TLS (the stack's CA, bankcdc_stack/tls_certs.py, mounted at /certs), every client
# authenticates with SASL/SCRAM-SHA-512 and the StandardAuthorizer allows each principal only its
# ACLs (bankcdc_stack/kafka_access.py, applied by the kafka-setup one-shot); the broker reaches its
# controller with SASL/PLAIN as `admin`, over TLS too. The storage is formatted on the first start,
# with the admin's SCRAM credential. The properties hold the admin password: readable by Kafka only.
set -euo pipefail
# the node: its id, the controller quorum it votes in, the name the other containers reach it by;
# how many copies of each partition (topics created without their own factor, consumer offsets,
# transactions, share groups) and how many must have a write before it is acknowledged (acks=all)
: "${KAFKA_NODE_ID:=1}"
: "${KAFKA_CONTROLLER_QUORUM_VOTERS:=1@kafka:9093}"
: "${KAFKA_ADVERTISED_HOST:=kafka}"
: "${KAFKA_REPLICATION_FACTOR:=1}"
: "${KAFKA_MIN_INSYNC_REPLICAS:=1}"
for name in KAFKA_NODE_ID KAFKA_REPLICATION_FACTOR KAFKA_MIN_INSYNC_REPLICAS; do
    if ! [[ "${!name}" =~ ^[1-9][0-9]*$ ]]; then
        echo "kafka start.sh: $name=${!name} is not a positive integer" >&2
        exit 1
    fi
done
if (( KAFKA_MIN_INSYNC_REPLICAS > KAFKA_REPLICATION_FACTOR )); then
    echo "kafka start.sh: KAFKA_MIN_INSYNC_REPLICAS=$KAFKA_MIN_INSYNC_REPLICAS exceeds" \
         "KAFKA_REPLICATION_FACTOR=$KAFKA_REPLICATION_FACTOR: no write with acks=all could succeed" >&2
    exit 1
fi
if [[ ",$KAFKA_CONTROLLER_QUORUM_VOTERS," != *",$KAFKA_NODE_ID@"* ]]; then
    echo "kafka start.sh: node $KAFKA_NODE_ID is not among KAFKA_CONTROLLER_QUORUM_VOTERS=$KAFKA_CONTROLLER_QUORUM_VOTERS" >&2
    exit 1
fi
for name in KAFKA_ADMIN_PASSWORD KAFKA_CLUSTER_ID KAFKA_HOST_PORT KAFKA_LOG_DIRS KAFKA_TLS_DIR; do
    if [ -z "${!name:-}" ] || [ "${!name}" = change-me ]; then
        echo "kafka start.sh: $name is empty or still the .env.example placeholder: set it in .env" >&2
        exit 1
    fi
done
for file in kafka.pem ca.crt; do
    if [ ! -r "$KAFKA_TLS_DIR/$file" ]; then
        echo "kafka start.sh: $KAFKA_TLS_DIR/$file is missing or unreadable: the certs one-shot makes it" >&2
        exit 1
    fi
done
umask 077
config=/opt/kafka/config/bank-cdc.properties
scram='org.apache.kafka.common.security.scram.ScramLoginModule required'
plain='org.apache.kafka.common.security.plain.PlainLoginModule required'
cat > "$config" <<PROPERTIES
process.roles=broker,controller
node.id=${KAFKA_NODE_ID}
controller.quorum.voters=${KAFKA_CONTROLLER_QUORUM_VOTERS}
listeners=SASL_SSL://:9092,HOST://:29092,CONTROLLER://:9093
advertised.listeners=SASL_SSL://${KAFKA_ADVERTISED_HOST}:9092,HOST://127.0.0.1:${KAFKA_HOST_PORT}
controller.listener.names=CONTROLLER
listener.security.protocol.map=SASL_SSL:SASL_SSL,HOST:SASL_SSL,CONTROLLER:SASL_SSL
inter.broker.listener.name=SASL_SSL
ssl.keystore.type=PEM
ssl.keystore.location=${KAFKA_TLS_DIR}/kafka.pem
ssl.truststore.type=PEM
ssl.truststore.location=${KAFKA_TLS_DIR}/ca.crt
ssl.endpoint.identification.algorithm=https
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${scram} username="admin" password="${KAFKA_ADMIN_PASSWORD}";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=${plain} username="admin" password="${KAFKA_ADMIN_PASSWORD}" user_admin="${KAFKA_ADMIN_PASSWORD}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
log.dirs=${KAFKA_LOG_DIRS}
num.partitions=1
default.replication.factor=${KAFKA_REPLICATION_FACTOR}
min.insync.replicas=${KAFKA_MIN_INSYNC_REPLICAS}
offsets.topic.replication.factor=${KAFKA_REPLICATION_FACTOR}
transaction.state.log.replication.factor=${KAFKA_REPLICATION_FACTOR}
transaction.state.log.min.isr=${KAFKA_MIN_INSYNC_REPLICAS}
share.coordinator.state.topic.replication.factor=${KAFKA_REPLICATION_FACTOR}
share.coordinator.state.topic.min.isr=${KAFKA_MIN_INSYNC_REPLICAS}
group.initial.rebalance.delay.ms=0
log.retention.hours=72
log.retention.bytes=4294967296
log.segment.bytes=268435456
message.max.bytes=33554432
PROPERTIES
# what the health check logs in with
cat > /opt/kafka/config/admin-client.properties <<PROPERTIES
security.protocol=SASL_SSL
ssl.truststore.type=PEM
ssl.truststore.location=${KAFKA_TLS_DIR}/ca.crt
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=${scram} username="admin" password="${KAFKA_ADMIN_PASSWORD}";
PROPERTIES
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "$KAFKA_CLUSTER_ID" -c "$config" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=${KAFKA_ADMIN_PASSWORD}]"
exec /opt/kafka/bin/kafka-server-start.sh "$config"
