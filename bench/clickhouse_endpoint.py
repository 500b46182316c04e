"""Benchmark: chdb-http vs chDB in-process for transaction-shaped inserts and point queries.

    .venv/bin/python bench/clickhouse_endpoint.py --rows 1000000

Starts a fresh endpoint on a free port with a temporary data directory,
inserts the rows through clickhouse-connect (default compression), then does
the same work with chDB in this process on a separate data directory (the
same Native bytes the client would send, fed through a streaming INSERT),
and times point queries both ways. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DDL = """CREATE TABLE bench.txn (
    id UInt64, card_id UInt64, amount Decimal(18, 2), currency LowCardinality(String),
    txn_type LowCardinality(String), status LowCardinality(String),
    created_at DateTime64(6, 'UTC'), merchant String
) ENGINE = MergeTree ORDER BY id"""
COLUMNS = ["id", "card_id", "amount", "currency", "txn_type", "status", "created_at", "merchant"]
BATCH = 100_000


def make_columns(start: int, n: int) -> list[list]:
    base = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    ids = list(range(start, start + n))
    return [
        ids,
        [i % 50_000 for i in ids],
        [decimal.Decimal(i % 100_000) / 100 for i in ids],
        [("EUR", "USD", "GBP")[i % 3] for i in ids],
        [("purchase", "withdrawal", "refund", "transfer")[i % 4] for i in ids],
        [("approved", "declined", "pending")[i % 3] for i in ids],
        [base + dt.timedelta(microseconds=i * 997) for i in ids],
        [f"merchant-{i % 5000}" for i in ids],
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentiles(samples: list[float]) -> dict[str, float]:
    q = statistics.quantiles(samples, n=100)
    return {"p50_ms": round(q[49] * 1000, 3), "p95_ms": round(q[94] * 1000, 3)}


def bench_http(rows: int, work: Path, queries: int) -> dict:
    import clickhouse_connect

    password = secrets.token_urlsafe(12)
    port = free_port()
    env = dict(os.environ, CLICKHOUSE_PASSWORD=password, CLICKHOUSE_LOADER_PASSWORD=password,
               CLICKHOUSE_TRANSFORMER_PASSWORD=password, CLICKHOUSE_ANALYST_PASSWORD=password, CHDB_HTTP_LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "-m", "chdb_http", "--port", str(port), "--data-dir", str(work / "http")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port, username="loader", password=password)
        client.command("CREATE DATABASE bench")
        client.command(DDL)
        batches = [make_columns(s, min(BATCH, rows - s)) for s in range(0, rows, BATCH)]
        t0 = time.perf_counter()
        for cols in batches:
            client.insert("bench.txn", cols, column_names=COLUMNS, column_oriented=True)
        elapsed = time.perf_counter() - t0
        assert client.command("SELECT count() FROM bench.txn") == rows
        lat = []
        for i in range(queries):
            t = time.perf_counter()
            client.query("SELECT * FROM bench.txn WHERE id = {id:UInt64}", parameters={"id": (i * 7919) % rows})
            lat.append(time.perf_counter() - t)
        # The Native payloads the client sent, reused for the in-process run.
        native = [client.raw_query("SELECT * FROM bench.txn WHERE id >= {a:UInt64} AND id < {b:UInt64} ORDER BY id",
                                   parameters={"a": s, "b": s + BATCH}, fmt="Native") for s in range(0, rows, BATCH)]
        # The HTTP layer alone: the same Native bytes posted as they are (no Python-side row encoding).
        client.command("CREATE TABLE bench.txn_raw AS bench.txn")
        t0 = time.perf_counter()
        for payload in native:
            client.raw_insert("bench.txn_raw", COLUMNS, insert_block=payload, fmt="Native")
        raw_elapsed = time.perf_counter() - t0
        assert client.command("SELECT count() FROM bench.txn_raw") == rows
        return {"insert_s": elapsed, "raw_insert_s": raw_elapsed, "latencies": lat, "native": native}
    finally:
        proc.terminate()
        proc.wait(60)


def bench_inprocess(rows: int, work: Path, native: list[bytes], queries: int) -> dict:
    from chdb import _chdb

    conn = _chdb.connect(str(work / "inproc"))
    try:
        conn.query("CREATE DATABASE bench", "CSV")
        conn.query(DDL, "CSV")
        t0 = time.perf_counter()
        for payload in native:
            ins = conn.send_insert(f"INSERT INTO bench.txn ({', '.join(COLUMNS)})", "Native")
            conn.insert_append(ins, payload)
            conn.insert_done(ins)
        elapsed = time.perf_counter() - t0
        assert conn.query("SELECT count() FROM bench.txn", "CSV").bytes().strip() == str(rows).encode()
        lat = []
        for i in range(queries):
            t = time.perf_counter()
            conn.query("SELECT * FROM bench.txn WHERE id = {id:UInt64}", "Native", params={"id": str((i * 7919) % rows)})
            lat.append(time.perf_counter() - t)
        return {"insert_s": elapsed, "latencies": lat}
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="chdb_http_bench_"))
    try:
        http = bench_http(args.rows, work, args.queries)
        inproc = bench_inprocess(args.rows, work, http["native"], args.queries)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    http_rps = args.rows / http["insert_s"]
    inproc_rps = args.rows / inproc["insert_s"]
    hp, ip = percentiles(http["latencies"]), percentiles(inproc["latencies"])
    print(json.dumps({
        "rows": args.rows,
        "batch_rows": BATCH,
        "insert_rows_per_s": {
            "http_clickhouse_connect_insert": round(http_rps),
            "http_native_bytes_raw_insert": round(args.rows / http["raw_insert_s"]),
            "chdb_in_process_native_bytes": round(inproc_rps),
        },
        "insert_ratio_in_process_over_http_insert": round(inproc_rps / http_rps, 2),
        "insert_ratio_in_process_over_http_raw_native": round(inproc_rps / (args.rows / http["raw_insert_s"]), 2),
        "point_query": {"http_clickhouse_connect": hp, "chdb_in_process": ip,
                        "p50_ratio_http_over_in_process": round(hp["p50_ms"] / ip["p50_ms"], 2)},
        "note": "client.insert time includes clickhouse-connect encoding Python rows to Native; raw_insert and in-process feed the same Native bytes",
    }, indent=2))


if __name__ == "__main__":
    main()
