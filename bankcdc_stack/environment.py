"""The addresses and credentials every component gets: one place, so no two parts disagree."""

from __future__ import annotations

import json
from typing import Mapping

from bankcdc_stack.settings import HOST, StackSettings

RUN_NOTES_USER = "run-notes"   # a SimpleAuthManager user with the role `user` (bankcdc_stack.services.airflow)


def client_environment(settings: StackSettings, secrets: Mapping[str, str]) -> dict[str, str]:
    """What a client of the running stack needs (`bankcdc-stack env` prints it)."""
    return {
        "BANKCDC_STATE_DIR": str(settings.state_dir),
        "DB_HOST": HOST,
        "DB_PORT": str(settings.db_port),
        "DB_NAME": "bank",
        "DB_SSLMODE": "prefer",
        "KAFKA_BOOTSTRAP_SERVERS": f"{HOST}:{settings.kafka_port}",
        "KAFKA_PORT": str(settings.kafka_port),
        "KAFKA_CONTROLLER_PORT": str(settings.kafka_controller_port),
        "CONNECT_URL": f"http://{HOST}:{settings.connect_port}",
        "CONNECT_PORT": str(settings.connect_port),
        "CLICKHOUSE_HOST": HOST,
        "CLICKHOUSE_PORT": str(settings.clickhouse_port),
        "AIRFLOW_URL": f"http://{HOST}:{settings.airflow_port}",
        "AIRFLOW_PORT": str(settings.airflow_port),
        "CONSUMER_METRICS_PORT": str(settings.consumer_metrics_port),
        **secrets,
    }


def airflow_connections(settings: StackSettings, secrets: Mapping[str, str]) -> dict[str, str]:
    """Airflow connections by conn_id, defined from the environment (AIRFLOW_CONN_<ID> as JSON)."""
    conns = {
        "postgres_bank": {"conn_type": "postgres", "host": HOST, "port": settings.db_port, "schema": "bank",
                          "login": "bank_reader", "password": secrets["BANK_READER_DB_PASSWORD"]},
        "clickhouse_dwh": {"conn_type": "clickhousedb", "host": HOST, "port": settings.clickhouse_port,
                           "login": "transformer", "password": secrets["CLICKHOUSE_TRANSFORMER_PASSWORD"]},
        # pg_to_ch backfills write raw tables: the loader role, not the transformer
        "clickhouse_raw_loader": {"conn_type": "clickhousedb", "host": HOST, "port": settings.clickhouse_port,
                                  "login": "loader", "password": secrets["CLICKHOUSE_LOADER_PASSWORD"]},
        "kafka_default": {"conn_type": "generic", "host": HOST, "port": settings.kafka_port,
                          "extra": {"bootstrap.servers": f"{HOST}:{settings.kafka_port}"}},
        "kafka_connect": {"conn_type": "http", "host": HOST, "port": settings.connect_port, "schema": "http"},
        # Airflow's own REST API, as the user that may only write notes on DAG runs (dbt_incremental's T)
        "airflow_api": {"conn_type": "http", "host": HOST, "port": settings.airflow_port, "schema": "http",
                        "login": RUN_NOTES_USER, "password": secrets["AIRFLOW_RUN_NOTES_PASSWORD"]},
    }
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in conns.items()}
