"""``chdb-http`` / ``python -m chdb_http``: start the endpoint, stop cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import errno
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from chdb_http.config import ConfigError, load_config
from chdb_http.users import UsersConfigError, load_users

log = logging.getLogger("chdb_http")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
        users = load_users(config.users_file)
    except (ConfigError, UsersConfigError) as exc:
        print(f"chdb-http: configuration error: {exc}", file=sys.stderr)
        return 2
    if config.check_only:
        print(config)
        for user in users.users.values():
            grants = "all" if user.grants is None else len(user.grants)
            print(f"user {user.name}: password {user.password_kind}, readonly={user.readonly}, grants={grants}")
        return 0
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    from chdb_http.engine import Engine  # imports chDB, which is slow: after the config is known good
    from chdb_http.server import EndpointServer

    try:
        engine = Engine(config.data_dir)
    except Exception as exc:  # noqa: BLE001 - report any engine start failure plainly
        print(f"chdb-http: cannot open chDB data directory {config.data_dir} (CHDB_DATA_DIR): {exc}", file=sys.stderr)
        return 1
    try:
        server = EndpointServer((config.host, config.port), engine, users)
    except OSError as exc:
        engine.close()
        if exc.errno == errno.EADDRINUSE:
            print(
                f"chdb-http: port {config.port} on {config.host} is already in use; stop the other server "
                "or choose another port with --port / CLICKHOUSE_PORT",
                file=sys.stderr,
            )
        else:
            print(f"chdb-http: cannot listen on {config.host}:{config.port}: {exc.strerror}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s: draining in-flight requests", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http-accept")
    serving.start()
    host, port = server.server_address[:2]
    log.info(
        "chdb-http %s listening on http://%s:%s data_dir=%s users=%s (%s)",
        engine.version, host, port, config.data_dir, config.users_file, ", ".join(sorted(users.users)),
    )
    while not stop.wait(1.0):
        pass
    server.drain()
    serving.join()
    engine.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
