"""`bankcdc-stack`: start, stop and inspect the local (no-Docker) pipeline."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import subprocess
import sys

from bankcdc_stack.environment import client_environment
from bankcdc_stack.errors import StackError
from bankcdc_stack.secrets import new_secret, store_secret
from bankcdc_stack.services.airflow import ADMIN_USER
from bankcdc_stack.stack import DEPENDS_ON, SERVICE_CLASSES, Stack

SERVICE_NAMES = [cls.name for cls in SERVICE_CLASSES]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bankcdc-stack",
        description="Run the bank-cdc pipeline locally without Docker: PostgreSQL, Kafka (KRaft), "
                    "Kafka Connect + Debezium, ClickHouse (chDB over HTTP) and Airflow 3, on 127.0.0.1. "
                    "State and logs live in $BANKCDC_STATE_DIR (default: .state/ in the repository).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="install what is missing, start services, wait until healthy")
    up.add_argument("services", nargs="*", metavar="SERVICE",
                    help=f"only these (and what they need); default all: {', '.join(SERVICE_NAMES)}")
    needs = "; ".join(f"{name} needs {', '.join(deps)}" for name, deps in DEPENDS_ON.items())
    down = sub.add_parser(
        "down", help="stop services and every process they started",
        description=f"Stop the named services (default: all). Never stops what they depend on ({needs}): "
                    "`down filler` leaves PostgreSQL, and what else uses it, running.")
    down.add_argument("services", nargs="*", metavar="SERVICE", help="only these; default all")
    down.add_argument("--with-dependents", action="store_true",
                      help="also stop the services that cannot run without them (e.g. `down kafka "
                           "--with-dependents` stops connect and consumer too)")
    sub.add_parser("status", help="each service with PID, port, health and memory "
                                  "(exit 0 all healthy, 1 one running but unhealthy, 3 some stopped)")
    logs = sub.add_parser("logs", help="show a service's log")
    logs.add_argument("service", nargs="?", help="service or process name (e.g. kafka, airflow-scheduler)")
    logs.add_argument("-n", "--lines", type=int, default=50, help="lines to show (default 50)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    sub.add_parser("env", help="print the stack's environment as shell exports: eval \"$(bankcdc-stack env)\"")
    sub.add_parser(
        "rotate-token-key", help="replace BANK_TOKEN_KEY and re-tokenise every PAN and national id",
        description="Draw a new BANK_TOKEN_KEY (or take $BANK_TOKEN_KEY_NEW), re-tokenise every card and "
                    "customer in PostgreSQL with it in one transaction, and store it in secrets.env. "
                    "PostgreSQL must be running. The UPDATEs flow through CDC like any change; card_id, "
                    "customer_id and pan_last4 stay as they are.")
    airflow = sub.add_parser("airflow", help="run the airflow CLI with the stack's Airflow environment "
                                             "(e.g. airflow dags list, airflow dags test cdc_monitoring)")
    airflow.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the airflow CLI")
    return parser


def _format_bytes(count: int) -> str:
    return f"{count / 1024**2:.0f} MB" if count else "-"


def cmd_status(stack: Stack) -> int:
    rows = stack.status()
    print(f"{'SERVICE':<11} {'PID':<24} {'PORT':<12} {'HEALTH':<7} {'MEMORY':>8}  {'NEEDS':<16} DETAIL")
    for row in rows:
        pids = ",".join(str(p) if p else "-" for p in row.pids)
        ports = ",".join(map(str, row.ports)) or "-"
        needs = ",".join(DEPENDS_ON.get(row.name, ())) or "-"
        print(f"{row.name:<11} {pids:<24} {ports:<12} {'ok' if row.health.ok else 'DOWN':<7} "
              f"{_format_bytes(row.memory_bytes):>8}  {needs:<16} {row.health.detail}")
    total = sum(row.memory_bytes for row in rows)
    print(f"{'total':<11} {'':<24} {'':<12} {'':<7} {_format_bytes(total):>8}")
    print("(`down SERVICE` stops only that service; `--with-dependents` also what NEEDS it)")
    running = [row for row in rows if any(row.pids)]
    if any(not row.health.ok for row in running):
        return 1  # something runs but does not answer
    return 0 if len(running) == len(rows) else 3  # 3, as LSB status: (some) services stopped


def cmd_logs(stack: Stack, service: str | None, lines: int, follow: bool) -> int:
    logs_dir = stack.settings.logs_dir
    available = sorted(p.stem for p in logs_dir.glob("*.log"))
    if not service:
        print("logs:", ", ".join(available) or "(none yet)", f"in {logs_dir}")
        return 0
    matches = [logs_dir / f"{name}.log" for name in available if name == service or name.startswith(f"{service}-")]
    if not matches:
        print(f"no log for {service!r}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    argv = ["tail", "-n", str(lines), *(["-F"] if follow else []), *map(str, matches)]
    return subprocess.call(argv)


def cmd_airflow(stack: Stack, args: list[str]) -> int:
    """The airflow CLI against this stack's metadata DB, connections and DAGs folder."""
    env = stack.services["airflow"].env()
    return subprocess.call([sys.executable, "-m", "airflow", *args], env=env)


def cmd_rotate_token_key(stack: Stack) -> int:
    new_key = os.environ.get("BANK_TOKEN_KEY_NEW") or new_secret("BANK_TOKEN_KEY")
    rows = stack.services["postgres"].rotate_token_key(new_key)
    store_secret(stack.settings.state_dir, "BANK_TOKEN_KEY", new_key)
    print(f"re-tokenised {rows} cards and customers; the new key is in {stack.settings.state_dir}/secrets.env")
    if os.environ.get("BANK_TOKEN_KEY"):
        print("BANK_TOKEN_KEY is set in your environment: set it to the new key (BANK_TOKEN_KEY_NEW) "
              "before the next ./stack up", file=sys.stderr)
    return 0


def print_welcome(stack: Stack, seconds: float) -> None:
    env = stack.ctx.env
    print(f"""
bank-cdc local stack is up ({seconds:.0f}s). State and logs: {stack.settings.state_dir}

  Airflow UI     {env['AIRFLOW_URL']}   login: {ADMIN_USER}, password: ./stack env | grep AIRFLOW_ADMIN_PASSWORD
  ClickHouse     curl -s -u default:$CLICKHOUSE_PASSWORD '{'http://' + env['CLICKHOUSE_HOST'] + ':' + env['CLICKHOUSE_PORT']}/' --data-binary 'SELECT version()'
  PostgreSQL     psql "host={env['DB_HOST']} port={env['DB_PORT']} dbname=bank user=postgres"  (password: $POSTGRES_PASSWORD)
  Kafka          {env['KAFKA_BOOTSTRAP_SERVERS']}  SASL/SCRAM-SHA-512, e.g. user admin, password $KAFKA_ADMIN_PASSWORD
  Kafka Connect  curl -s -u {env['CONNECT_REST_USER']}:$CONNECT_REST_PASSWORD {env['CONNECT_URL']}/connectors

  Credentials:   eval "$(./stack env)"   (all generated passwords, from {stack.settings.state_dir}/secrets.env)
  Status / logs: ./stack status   ./stack logs <service> -f      Stop: ./stack down
""")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        stack = Stack()
        if args.command == "up":
            seconds = stack.up(args.services or None)
            print_welcome(stack, seconds)
            return 0
        if args.command == "down":
            left = stack.down(args.services or None, with_dependents=args.with_dependents)
            if left:
                print(f"still listening after down: ports {left}", file=sys.stderr)
                return 1
            running = [row.name for row in stack.status() if any(row.pids)]
            print(f"stopped; still running: {', '.join(running)}" if running
                  else "stack stopped; no service port is listening")
            return 0
        if args.command == "status":
            return cmd_status(stack)
        if args.command == "logs":
            return cmd_logs(stack, args.service, args.lines, args.follow)
        if args.command == "airflow":
            return cmd_airflow(stack, args.args)
        if args.command == "rotate-token-key":
            return cmd_rotate_token_key(stack)
        if args.command == "env":
            for key, value in sorted(client_environment(stack.settings, stack.ctx.secrets).items()):
                print(f"export {key}={shlex.quote(value)}")
            return 0
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
