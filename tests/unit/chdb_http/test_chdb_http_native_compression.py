"""The compressed block codec, checked against blocks chDB itself wrote to MergeTree parts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chdb_http._cityhash import cityhash128
from chdb_http.errors import ClickHouseError
from chdb_http.native_compression import (
    METHOD_LZ4,
    METHOD_NONE,
    METHOD_ZSTD,
    BlockDecoder,
    compress_block,
    compress_stream,
    decompress_all,
)


def test_checksums_match_blocks_written_by_clickhouse(tmp_path: Path) -> None:
    from chdb import _chdb

    conn = _chdb.connect(str(tmp_path / "db"))
    try:
        conn.query(
            "CREATE TABLE w (a UInt64, s String, z UInt64 CODEC(ZSTD(1)), n UInt8 CODEC(NONE)) ENGINE = MergeTree "
            "ORDER BY a SETTINGS min_bytes_for_wide_part = 0",
            "CSV",
        )
        conn.query("INSERT INTO w SELECT number, repeat('x', number % 40), number, 1 FROM numbers(200000)", "CSV")
        conn.query("INSERT INTO w SELECT 1, 'a', 1, 1", "CSV")
    finally:
        conn.close()
    files = list(tmp_path.glob("db/**/*.bin"))
    assert len(files) >= 8
    for path in files:
        decompress_all(path.read_bytes())  # raises CHECKSUM_DOESNT_MATCH on any wrong hash


@pytest.mark.parametrize("method", [METHOD_LZ4, METHOD_ZSTD, METHOD_NONE])
@pytest.mark.parametrize("size", [0, 1, 7, 8, 15, 16, 17, 100, 127, 128, 129, 1000, 70000])
def test_round_trip(method: int, size: int) -> None:
    data = os.urandom(size)
    assert decompress_all(compress_block(data, method)) == data


def test_stream_splits_into_one_mib_blocks_and_decodes_incrementally() -> None:
    data = os.urandom(3 << 20)
    blocks = list(compress_stream([data[: 1 << 19], data[1 << 19 :]]))
    assert len(blocks) == 3
    decoder, out = BlockDecoder(), bytearray()
    wire = b"".join(blocks)
    for i in range(0, len(wire), 77777):
        out += decoder.feed(wire[i : i + 77777])
    decoder.finish()
    assert bytes(out) == data


def test_corruption_is_detected() -> None:
    block = bytearray(compress_block(b"hello world" * 100))
    block[-1] ^= 0xFF
    with pytest.raises(ClickHouseError) as err:
        decompress_all(bytes(block))
    assert err.value.code == 40 and err.value.name == "CHECKSUM_DOESNT_MATCH"
    with pytest.raises(ClickHouseError):
        decompress_all(compress_block(b"abc")[:-1])


def test_cityhash_known_short_inputs_differ() -> None:
    assert cityhash128(b"") != cityhash128(b"\x00")
    assert cityhash128(b"a" * 200) != cityhash128(b"a" * 201)
