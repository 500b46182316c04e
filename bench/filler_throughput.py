"""Filler throughput: backfill tx/s and maximum sustained continuous tx/s, as JSON.

Runs against a scratch database (created, schema.sql applied, dropped afterwards) on the
PostgreSQL given by --admin-dsn (default: DB_HOST/DB_PORT and POSTGRES_PASSWORD of the stack,
user postgres), as a throwaway login role that is a member of bank_filler, with every
constraint, index and trigger of schema.sql in place and a throwaway token key installed.

    eval "$(./stack env)"; .venv/bin/python bench/filler_throughput.py
    python bench/filler_throughput.py --admin-dsn "host=127.0.0.1 port=55432 user=postgres"

Backfill: `filler backfill` of --days x --txns-per-day; tx/s = transactions / seconds of the
history phase (the one-off population of customers and cards before it is reported apart).
Continuous: `filler run --rate 100000` for --duration seconds right after the backfill (a
realistic, populated database); tx/s = transactions committed / seconds between its first
and last batch.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import parse_dsn

REPO = Path(__file__).resolve().parents[1]


def default_dsn() -> str:
    return (f"host={os.environ.get('DB_HOST', '127.0.0.1')} port={os.environ.get('DB_PORT', '5432')} "
            f"user=postgres dbname=postgres password={os.environ.get('POSTGRES_PASSWORD', '')}")


def connect(dsn: str, dbname: str | None = None):
    params = parse_dsn(dsn)
    params["dbname"] = dbname or params.get("dbname", "postgres")
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    return conn


def apply_schema(dsn: str, dbname: str) -> None:
    params = parse_dsn(dsn)
    psql = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
    binary = str(psql[-1]) if psql else shutil.which("psql")
    env = dict(os.environ, PGPASSWORD=params.get("password", ""))
    subprocess.run([binary, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", params.get("host", "127.0.0.1"),
                    "-p", str(params.get("port", 5432)), "-U", params.get("user", "postgres"), "-d", dbname,
                    "-f", str(REPO / "schema.sql")], check=True, env=env, capture_output=True, text=True)


def filler(env: dict[str, str], *args: str) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "filler", *args], env=env, capture_output=True, text=True,
                            cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"filler {args[0]} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return time.monotonic() - started, result.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-dsn", default=os.environ.get("FILLER_BENCH_DSN") or default_dsn())
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--txns-per-day", type=int, default=300_000)
    parser.add_argument("--duration", type=float, default=30.0, help="continuous run, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    name = f"filler_bench_{uuid.uuid4().hex[:8]}"
    role, password = f"{name}_login", secrets.token_hex(12)
    admin = connect(args.admin_dsn)
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        apply_schema(args.admin_dsn, name)
        db = connect(args.admin_dsn, name)
        with db.cursor() as cur:
            # a throwaway key: the triggers tokenise card numbers and national ids, as on the stack
            cur.execute("SELECT bank_vault.install_token_key(%s)", (secrets.token_urlsafe(32),))
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s IN ROLE bank_filler").format(sql.Identifier(role)),
                        (password,))
            cur.execute("SELECT version(), current_setting('max_wal_size'), current_setting('shared_buffers')")
            version, max_wal, shared_buffers = cur.fetchone()
        params = parse_dsn(args.admin_dsn)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "FILLER_"))}
        env.update(DB_HOST=params.get("host", "127.0.0.1"), DB_PORT=str(params.get("port", 5432)), DB_NAME=name,
                   DB_USER=role, DB_PASSWORD=password, FILLER_LOG_INTERVAL="10", PYTHONPATH=str(REPO))

        wall, log = filler(env, "backfill", "--backfill-days", str(args.days), "--txns-per-day",
                           str(args.txns_per_day), "--seed", "1")
        m = re.search(r"backfill finished: ([\d,]+) transactions in ([\d.]+)s", log)
        txns, history_s = int(m.group(1).replace(",", "")), float(m.group(2))

        run_wall, run_log = filler(env, "run", "--rate", "100000", "--duration", str(args.duration), "--seed", "2")
        with db.cursor() as cur:
            cur.execute("""SELECT sum(transactions), sum(status_updates), sum(closes), count(*),
                                  extract(epoch FROM max(committed_at) - min(committed_at))
                           FROM fraud_truth.filler_batch WHERE mode = 'continuous' AND transactions > 50""")
            c_txns, c_updates, c_closes, c_batches, c_span = cur.fetchone()
            cur.execute("SELECT count(*) FROM bank.\"transaction\"")
            total_rows = cur.fetchone()[0]
        db.close()
        report = {
            "benchmark": "filler_throughput",
            "machine": {"cpus": os.cpu_count(), "postgres": version.split(" on ")[0],
                        "max_wal_size": max_wal, "shared_buffers": shared_buffers},
            "backfill": {"days": args.days, "txns_per_day": args.txns_per_day, "transactions": txns,
                         "history_seconds": round(history_s, 2), "tx_per_s": round(txns / history_s),
                         "wall_seconds_incl_population": round(wall, 2),
                         "goal_tx_per_s": 50_000, "meets_goal": txns / history_s >= 50_000},
            "continuous": {"target_rate": 100_000, "duration_s": args.duration, "transactions": int(c_txns),
                           "batches": int(c_batches), "status_updates": int(c_updates), "closes": int(c_closes),
                           "tx_per_s": round(float(c_txns) / float(c_span)),
                           "goal_tx_per_s": 5_000, "meets_goal": float(c_txns) / float(c_span) >= 5_000},
            "transactions_in_db": total_rows,
        }
        print(json.dumps(report, indent=2))
    finally:
        if not args.keep:
            with admin.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
                cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
