"""Benchmark: chdb-http against chDB in-process, in one run: inserts, point queries and big reads.

    ./stack bench clickhouse_endpoint --rows 1000000

Starts a fresh endpoint on a free port with a temporary data directory and loads a
transaction-shaped table through clickhouse-connect as the CDC consumer's user (`loader`, whose
grants the endpoint checks), then does the same work with chDB in this process on a separate data
directory. Point queries are timed three ways: a plain keep-alive HTTP client (what the endpoint
itself costs), clickhouse-connect (what a Python user sees) and in-process; the HTTP overhead is
HTTP minus in-process. Big reads fetch every row in RowBinaryWithNamesAndTypes and JSONEachRow over
HTTP and in-process, and check that both return the same bytes. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import decimal
import http.client
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
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

DDL = """CREATE TABLE raw.bench_txn (
    id UInt64, card_id UInt64, amount Decimal(18, 2), currency LowCardinality(String),
    txn_type LowCardinality(String), status LowCardinality(String),
    created_at DateTime64(6, 'UTC'), merchant String
) ENGINE = MergeTree ORDER BY id"""
COLUMNS = ["id", "card_id", "amount", "currency", "txn_type", "status", "created_at", "merchant"]
BATCH = 100_000
POINT_QUERY = "SELECT * FROM raw.bench_txn WHERE id = {id:UInt64}"
READ_QUERY = "SELECT * FROM raw.bench_txn ORDER BY id"
READ_FORMATS = ("RowBinaryWithNamesAndTypes", "JSONEachRow")


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


def point_ids(rows: int, queries: int) -> list[str]:
    return [str((i * 7919) % rows) for i in range(queries)]


def start_endpoint(work: Path, password: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, CLICKHOUSE_PASSWORD=password, CLICKHOUSE_LOADER_PASSWORD=password,
               CLICKHOUSE_TRANSFORMER_PASSWORD=password, CLICKHOUSE_ANALYST_PASSWORD=password,
               CHDB_HTTP_LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "-m", "chdb_http", "--port", str(port), "--data-dir", str(work / "http")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1).read()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("chdb-http did not answer /ping within 60 s")


class PlainHttp:
    """A keep-alive HTTP/1.1 client with nothing on top: what the endpoint's HTTP handling costs."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def query(self, sql: str, fmt: str, **params: str) -> bytes:
        url = "/?" + urllib.parse.urlencode({"default_format": fmt, **{f"param_{k}": v for k, v in params.items()}})
        self.conn.request("POST", url, body=sql.encode(), headers={"Authorization": self.auth})
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise SystemExit(f"endpoint answered {response.status}: {data[:300]!r}")
        return data


def seconds(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_http(rows: int, work: Path, queries: int) -> dict:
    import clickhouse_connect

    password = secrets.token_urlsafe(12)
    proc, port = start_endpoint(work, password)
    try:
        admin = clickhouse_connect.get_client(host="127.0.0.1", port=port, username="default", password=password)
        admin.command("CREATE DATABASE IF NOT EXISTS raw")
        admin.command(DDL)
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port, username="loader", password=password)
        batches = [make_columns(s, min(BATCH, rows - s)) for s in range(0, rows, BATCH)]
        t0 = time.perf_counter()
        for cols in batches:
            client.insert("raw.bench_txn", cols, column_names=COLUMNS, column_oriented=True)
        elapsed = time.perf_counter() - t0
        assert client.command("SELECT count() FROM raw.bench_txn") == rows
        # The Native payloads the client sent, reused for the in-process run.
        native = [client.raw_query("SELECT * FROM raw.bench_txn WHERE id >= {a:UInt64} AND id < {b:UInt64} ORDER BY id",
                                   parameters={"a": s, "b": s + BATCH}, fmt="Native") for s in range(0, rows, BATCH)]
        # The HTTP layer alone: the same Native bytes posted as they are (no Python-side row encoding).
        admin.command("CREATE TABLE raw.bench_txn_raw AS raw.bench_txn")
        t0 = time.perf_counter()
        for payload in native:
            client.raw_insert("raw.bench_txn_raw", COLUMNS, insert_block=payload, fmt="Native")
        raw_elapsed = time.perf_counter() - t0
        assert client.command("SELECT count() FROM raw.bench_txn_raw") == rows
        local = load_in_process(work, native, rows)
        try:
            ids = point_ids(rows, queries)
            plain = PlainHttp(port, "loader", password)
            for i in range(20):  # warm up: connection, grant check, caches
                plain.query(POINT_QUERY, "Native", id=ids[i])
                local["conn"].query(POINT_QUERY, "Native", params={"id": ids[i]})
            # alternate the three clients query by query, so a busy moment costs each the same
            plain_lat, connect_lat, local_lat = [], [], []
            for i in range(queries):
                plain_lat.append(seconds(lambda: plain.query(POINT_QUERY, "Native", id=ids[i])))
                connect_lat.append(seconds(lambda: client.query(POINT_QUERY, parameters={"id": int(ids[i])})))
                local_lat.append(seconds(lambda: local["conn"].query(POINT_QUERY, "Native", params={"id": ids[i]})))
            reads = {}
            for fmt in READ_FORMATS:
                t0 = time.perf_counter()
                over_http = plain.query(READ_QUERY, fmt)
                t1 = time.perf_counter()
                in_process = local["conn"].query(READ_QUERY, fmt).bytes()
                t2 = time.perf_counter()
                reads[fmt] = {"http_s": t1 - t0, "in_process_s": t2 - t1, "same": over_http == in_process,
                              "bytes": len(over_http)}
        finally:
            local["conn"].close()
        return {"insert_s": elapsed, "raw_insert_s": raw_elapsed, "inproc_insert_s": local["insert_s"],
                "plain": plain_lat, "clickhouse_connect": connect_lat, "in_process": local_lat, "reads": reads}
    finally:
        proc.terminate()
        proc.wait(60)


def load_in_process(work: Path, native: list[bytes], rows: int) -> dict:
    """chDB in this process on its own data directory, loaded with the Native bytes the client sent."""
    from chdb import _chdb

    conn = _chdb.connect(str(work / "inproc"))
    conn.query("CREATE DATABASE raw", "CSV")
    conn.query(DDL, "CSV")
    t0 = time.perf_counter()
    for payload in native:
        ins = conn.send_insert(f"INSERT INTO raw.bench_txn ({', '.join(COLUMNS)})", "Native")
        conn.insert_append(ins, payload)
        conn.insert_done(ins)
    elapsed = time.perf_counter() - t0
    assert conn.query("SELECT count() FROM raw.bench_txn", "CSV").bytes().strip() == str(rows).encode()
    return {"conn": conn, "insert_s": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="chdb_http_bench_"))
    try:
        run = bench_http(args.rows, work, args.queries)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    http_rps = args.rows / run["insert_s"]
    inproc_rps = args.rows / run["inproc_insert_s"]
    plain, connect, ip = (percentiles(run["plain"]), percentiles(run["clickhouse_connect"]),
                          percentiles(run["in_process"]))
    reads = {fmt: {"http_s": round(r["http_s"], 3), "in_process_s": round(r["in_process_s"], 3),
                   "http_rows_per_s": round(args.rows / r["http_s"]), "bytes": r["bytes"],
                   "same_bytes_as_in_process": r["same"]} for fmt, r in run["reads"].items()}
    print(json.dumps({
        "rows": args.rows,
        "batch_rows": BATCH,
        "insert_rows_per_s": {
            "http_clickhouse_connect_insert": round(http_rps),
            "http_native_bytes_raw_insert": round(args.rows / run["raw_insert_s"]),
            "chdb_in_process_native_bytes": round(inproc_rps),
        },
        "point_query": {
            "queries": args.queries, "user": "loader",
            "http_plain_client": plain, "http_clickhouse_connect": connect, "chdb_in_process": ip,
            "http_overhead_ms": {"p50": round(plain["p50_ms"] - ip["p50_ms"], 3),
                                 "p95": round(plain["p95_ms"] - ip["p95_ms"], 3)},
            "clickhouse_connect_overhead_ms": {"p50": round(connect["p50_ms"] - ip["p50_ms"], 3),
                                               "p95": round(connect["p95_ms"] - ip["p95_ms"], 3)},
        },
        "read_all_rows": reads,
        "note": "http_overhead = plain keep-alive HTTP client minus in-process, same query, Native result; "
                "clickhouse-connect adds its own Python-side request building and result decoding",
    }, indent=2))


if __name__ == "__main__":
    main()
