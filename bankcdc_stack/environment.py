"""The addresses and credentials every component gets: one place, so no two parts disagree."""

from __future__ import annotations

import json
from typing import Mapping

from bankcdc_stack.settings import HOST, StackSettings

RUN_NOTES_USER = "run-notes"   # a SimpleAuthManager user with the role `user` (bankcdc_stack.services.airflow)
CONNECT_REST_USER = "connect-admin"  # Kafka Connect's REST API user (basic-auth extension)
# Kafka's SASL/SCRAM principals and the secret holding each one's password. `admin` (super user)
# is used by the stack's own set-up only; the ACLs of the others: bankcdc_stack.services.kafka
KAFKA_USERS = {
    "admin": "KAFKA_ADMIN_PASSWORD",
    "connect": "KAFKA_CONNECT_PASSWORD",
    "cdc-consumer": "KAFKA_CONSUMER_PASSWORD",
    "monitor": "KAFKA_MONITOR_PASSWORD",
}
KAFKA_SECURITY = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-512"}


def kafka_client_config(settings: StackSettings, secrets: Mapping[str, str], user: str) -> dict[str, str]:
    """librdkafka settings of a client of the local broker, as Kafka principal `user`."""
    return {"bootstrap.servers": f"{HOST}:{settings.kafka_port}", **KAFKA_SECURITY,
            "sasl.username": user, "sasl.password": secrets[KAFKA_USERS[user]]}


def client_environment(settings: StackSettings, secrets: Mapping[str, str]) -> dict[str, str]:
    """What a client of the running stack needs (`bankcdc-stack env` prints it)."""
    return {
        "BANKCDC_STATE_DIR": str(settings.state_dir),
        "DB_HOST": HOST,
        "DB_PORT": str(settings.db_port),
        "DB_NAME": "bank",
        "DB_SSLMODE": "prefer",
        # Debezium's sslmode (debezium/*.json): the local cluster has no TLS; compose says verify-full
        "DEBEZIUM_DB_SSLMODE": "disable",
        "KAFKA_BOOTSTRAP_SERVERS": f"{HOST}:{settings.kafka_port}",
        "KAFKA_PORT": str(settings.kafka_port),
        "KAFKA_CONTROLLER_PORT": str(settings.kafka_controller_port),
        "KAFKA_SECURITY_PROTOCOL": KAFKA_SECURITY["security.protocol"],
        "KAFKA_SASL_MECHANISM": KAFKA_SECURITY["sasl.mechanisms"],
        "CDC_KAFKA_USER": "cdc-consumer",
        "CONNECT_URL": f"http://{HOST}:{settings.connect_port}",
        "CONNECT_PORT": str(settings.connect_port),
        "CONNECT_REST_USER": CONNECT_REST_USER,
        "CLICKHOUSE_HOST": HOST,
        "CLICKHOUSE_PORT": str(settings.clickhouse_port),
        "AIRFLOW_URL": f"http://{HOST}:{settings.airflow_port}",
        "AIRFLOW_PORT": str(settings.airflow_port),
        "CONSUMER_METRICS_PORT": str(settings.consumer_metrics_port),
        "CONSUMER_INSTANCES": str(settings.consumer_instances),
        # debezium/bank-transactions.json creates (and the stack grows) bank.bank.transaction with it
        "CDC_TRANSACTION_PARTITIONS": str(settings.transaction_partitions),
        **secrets,
    }


def airflow_connections(settings: StackSettings, secrets: Mapping[str, str]) -> dict[str, str]:
    """Airflow connections by conn_id, defined from the environment (AIRFLOW_CONN_<ID> as JSON)."""
    conns = {
        "postgres_bank": {"conn_type": "postgres", "host": HOST, "port": settings.db_port, "schema": "bank",
                          "login": "bank_reader", "password": secrets["BANK_READER_DB_PASSWORD"]},
        "clickhouse_dwh": {"conn_type": "clickhousedb", "host": HOST, "port": settings.clickhouse_port,
                           "login": "transformer", "password": secrets["CLICKHOUSE_TRANSFORMER_PASSWORD"]},
        # the fraud pages in the Airflow UI (bankcdc_ops.ui): marts and masked dimensions only
        "clickhouse_analyst": {"conn_type": "clickhousedb", "host": HOST, "port": settings.clickhouse_port,
                               "login": "analyst", "password": secrets["CLICKHOUSE_ANALYST_PASSWORD"]},
        # pg_to_ch backfills write raw tables: the loader role, not the transformer
        "clickhouse_raw_loader": {"conn_type": "clickhousedb", "host": HOST, "port": settings.clickhouse_port,
                                  "login": "loader", "password": secrets["CLICKHOUSE_LOADER_PASSWORD"]},
        # cdc_monitoring and the source instant describe topics and the consumer group: `monitor`
        "kafka_default": {"conn_type": "generic", "host": HOST, "port": settings.kafka_port,
                          "extra": kafka_client_config(settings, secrets, "monitor")},
        "kafka_connect": {"conn_type": "http", "host": HOST, "port": settings.connect_port, "schema": "http",
                          "login": CONNECT_REST_USER, "password": secrets["CONNECT_REST_PASSWORD"]},
        # Airflow's own REST API, as the user that may only write notes on DAG runs (dbt_incremental's T)
        "airflow_api": {"conn_type": "http", "host": HOST, "port": settings.airflow_port, "schema": "http",
                        "login": RUN_NOTES_USER, "password": secrets["AIRFLOW_RUN_NOTES_PASSWORD"]},
    }
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in conns.items()}
