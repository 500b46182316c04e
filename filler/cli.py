"""`filler` command line: run (continuous), backfill, status.

Exit codes: 0 done (also after SIGINT/SIGTERM), 1 runtime failure (database unavailable,
schema missing), 2 bad configuration (the message names the flag and the allowed range).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from filler import __version__, config
from filler.errors import ConfigError, FillerError
from filler.signals import StopFlag

log = logging.getLogger("filler")

EPILOG = """environment: DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD (no default; may be empty for
trust auth), DB_SSLMODE; every other flag also reads FILLER_<FLAG> (e.g. FILLER_RATE); flags win.
exit codes: 0 done (also on SIGINT/SIGTERM), 1 runtime failure, 2 bad configuration."""


def _add(parser: argparse.ArgumentParser, options: tuple[config.Option, ...]) -> None:
    for opt in options:
        bits = [opt.help]
        if opt.choices:
            bits.append(f"one of {', '.join(opt.choices)}")
        elif opt.lo is not None:
            bits.append(f"{config._num(opt.lo)}..{config._num(opt.hi)}")
        bits.append(f"env {opt.env}")
        if opt.default is not None:
            bits.append(f"default {opt.default}")
        parser.add_argument(opt.flag, dest=opt.dest, default=None, metavar=opt.dest.upper(),
                            help="; ".join(bits))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="filler", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Writes a bank's customers, accounts, cards, terminals and card transactions, "
                    "with fraud scenarios recorded as ground truth, into PostgreSQL.")
    parser.add_argument("--version", action="version", version=f"filler {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    subparsers = {}
    run = subparsers["run"] = sub.add_parser("run", help="continuous mode: real-time traffic at --rate until stopped",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add(run, config.RUN_OPTIONS + config.SIM_OPTIONS + config.DB_OPTIONS)

    backfill = subparsers["backfill"] = sub.add_parser("backfill", help="write --backfill-days of history at --txns-per-day (COPY)",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    backfill.add_argument("--if-empty", action="store_true",
                          help="do nothing if bank.transaction already has rows (for stack start-up scripts)")
    _add(backfill, config.BACKFILL_OPTIONS + config.SIM_OPTIONS + config.DB_OPTIONS)

    check = subparsers["check-config"] = sub.add_parser(
        "check-config", help="validate the settings `run` would use, print them (never a password) and exit",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add(check, config.RUN_OPTIONS + config.SIM_OPTIONS + config.DB_OPTIONS)

    status = subparsers["status"] = sub.add_parser("status", help="row counts per table and fraud scenario counts",
                            epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add(status, config.DB_OPTIONS)
    parser.set_defaults(subparsers=subparsers)
    return parser


def _configure_logging() -> None:
    level = os.environ.get("FILLER_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    flags = vars(args)
    _configure_logging()
    try:
        if args.command == "status":
            info = _status(flags)
            print(json.dumps(info, indent=2, default=str) if args.json else _render(info))
            return 0
        if args.command == "check-config":
            print(config.run_settings(flags))
            return 0
        stop = StopFlag()
        if args.command == "run":
            settings = config.run_settings(flags)
            stop.install()
            from filler import continuous

            return continuous.run(settings, stop)
        settings = config.backfill_settings(flags)
        stop.install()
        from filler import backfill

        return backfill.run(settings, stop, if_empty=args.if_empty)
    except ConfigError as exc:
        flags["subparsers"][args.command].print_usage(sys.stderr)
        print(f"filler {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FillerError as exc:
        log.error("%s", exc)
        return 1


def _status(flags: dict) -> dict:
    from filler import status

    return status.collect(config.db_settings(flags))


def _render(info: dict) -> str:
    from filler import status

    return status.render(info)


if __name__ == "__main__":
    sys.exit(main())
