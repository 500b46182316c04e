"""`cdc-consumer`: load Debezium change events from Kafka into ClickHouse raw tables."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from cdc_consumer.config import ConsumerSettings
from cdc_consumer.connectors import CREDENTIALS_HELP
from cdc_consumer.errors import CdcError, ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cdc-consumer",
        description="Consume Debezium change events (topics <prefix>.<schema>.<table>) and load them into "
                    "ClickHouse raw changelog tables. Offsets are committed only after ClickHouse acknowledged "
                    "the batch; replays load nothing twice. Settings come from the environment: "
                    "KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SSL_CA_LOCATION, CDC_GROUP_ID, CDC_CLIENT_ID, "
                    "CDC_TOPIC_PREFIX, CDC_TOPIC_REGEX, CDC_BATCH_MAX_ROWS, CDC_BATCH_MAX_SECONDS, CLICKHOUSE_HOST, "
                    "CLICKHOUSE_PORT, CLICKHOUSE_SECURE, CLICKHOUSE_CA_CERT, CDC_CLICKHOUSE_USER, "
                    "CLICKHOUSE_LOADER_PASSWORD, CDC_RAW_DATABASE, CONSUMER_METRICS_PORT.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="consume until SIGTERM/SIGINT (finishes the current batch, then exits 0)")
    sub.add_parser("check-config", help="validate the settings and exit")
    register = sub.add_parser("register-connectors",
                              help="create or update the Debezium connectors (debezium/*.json) and wait for RUNNING")
    register.add_argument("--dir", type=Path, default=Path(__file__).resolve().parents[1] / "debezium",
                          help="folder of connector JSON payloads (default: the repository's debezium/)")
    register.add_argument("--connect-url", default=os.environ.get("CONNECT_URL", "http://127.0.0.1:8083"),
                          help=f"Kafka Connect REST URL (env CONNECT_URL); {CREDENTIALS_HELP}")
    register.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for RUNNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    try:
        if args.command == "register-connectors":
            from cdc_consumer.connectors import register_all, rest_auth_from_env

            register_all(args.connect_url, args.dir, rest_auth_from_env(), args.timeout)
            return 0
        settings = ConsumerSettings.from_env()
        if args.command == "check-config":
            print(settings.describe())
            return 0
        from cdc_consumer.startup import run_when_ready

        return run_when_ready(settings)
    except ConfigError as exc:
        logging.getLogger("cdc_consumer").error("%s", exc)
        return 2
    except CdcError as exc:
        logging.getLogger("cdc_consumer").error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
