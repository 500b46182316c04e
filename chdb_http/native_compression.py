"""ClickHouse's native compressed block format (``compress=1`` / ``decompress=1``).

A block is: 16-byte CityHash128 checksum (low64, high64, little-endian) of
the rest; method byte (0x82 LZ4, 0x90 ZSTD, 0x02 NONE); UInt32 size of the
compressed block including this 9-byte header; UInt32 decompressed size;
the payload.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

import lz4.block
import zstandard

from chdb_http._cityhash import cityhash128
from chdb_http.errors import ClickHouseError

METHOD_NONE = 0x02
METHOD_LZ4 = 0x82
METHOD_ZSTD = 0x90
HEADER_SIZE = 9
CHECKSUM_SIZE = 16
MAX_BLOCK = 1 << 20  # clickhouse-server compresses its output in 1 MiB blocks

_header = struct.Struct("<BII")
_checksum = struct.Struct("<QQ")


def compress_block(data: bytes, method: int = METHOD_LZ4) -> bytes:
    """Compress one block of at most a few MiB into the native format."""
    if method == METHOD_LZ4:
        payload = lz4.block.compress(data, store_size=False)
    elif method == METHOD_ZSTD:
        payload = zstandard.ZstdCompressor(level=1).compress(data)
    elif method == METHOD_NONE:
        payload = bytes(data)
    else:
        raise ValueError(f"unsupported method byte {method:#x}")
    head = _header.pack(method, HEADER_SIZE + len(payload), len(data))
    lo, hi = cityhash128(head + payload)
    return _checksum.pack(lo, hi) + head + payload


def compress_stream(chunks: Iterable[bytes], method: int = METHOD_LZ4) -> Iterator[bytes]:
    """Re-chunk ``chunks`` into blocks of at most 1 MiB and compress each."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while len(pending) >= MAX_BLOCK:
            yield compress_block(bytes(pending[:MAX_BLOCK]), method)
            del pending[:MAX_BLOCK]
    if pending:
        yield compress_block(bytes(pending), method)


class BlockDecoder:
    """Incrementally decodes a stream of compressed blocks, verifying checksums."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> bytes:
        """Add raw bytes; return the decompressed bytes of every complete block."""
        self._buf += data
        out = bytearray()
        while len(self._buf) >= CHECKSUM_SIZE + HEADER_SIZE:
            method, size, raw_size = _header.unpack_from(self._buf, CHECKSUM_SIZE)
            if size < HEADER_SIZE or size > (1 << 30):
                raise ClickHouseError(
                    271, "CANNOT_DECOMPRESS", f"Too large size_compressed_without_checksum: {size}. Most likely corrupted data."
                )
            end = CHECKSUM_SIZE + size
            if len(self._buf) < end:
                break
            block = bytes(self._buf[CHECKSUM_SIZE:end])
            expected = _checksum.unpack_from(self._buf, 0)
            if cityhash128(block) != expected:
                raise ClickHouseError(40, "CHECKSUM_DOESNT_MATCH", "Checksum doesn't match: corrupted data.")
            out += _decompress(method, block[HEADER_SIZE:], raw_size)
            del self._buf[:end]
        return bytes(out)

    def finish(self) -> None:
        """Raise if the stream ended inside a block."""
        if self._buf:
            raise ClickHouseError(
                32, "ATTEMPT_TO_READ_AFTER_EOF", "Cannot read all data. Bytes read: 0. Bytes expected: 16.: (while reading header)"
            )


def _decompress(method: int, payload: bytes, raw_size: int) -> bytes:
    if method == METHOD_LZ4:
        return lz4.block.decompress(payload, uncompressed_size=raw_size)
    if method == METHOD_ZSTD:
        return zstandard.ZstdDecompressor().decompress(payload, max_output_size=raw_size)
    if method == METHOD_NONE:
        return payload
    raise ClickHouseError(89, "UNKNOWN_COMPRESSION_METHOD", f"Unknown compression method: {method}")


def decompress_all(data: bytes) -> bytes:
    """Decode a complete buffer of compressed blocks."""
    decoder = BlockDecoder()
    out = decoder.feed(data)
    decoder.finish()
    return out
