"""HTTP Content-Encoding for request bodies and compressed responses."""

from __future__ import annotations

import bz2
import lzma
import zlib
from typing import Protocol

import brotli
import lz4.frame
import zstandard

from chdb_http.errors import ClickHouseError

SUPPORTED = ("gzip", "deflate", "br", "zstd", "lz4", "xz", "bz2")
# clickhouse-server's chooseCompressionMethod aliases
_ALIASES = {"gz": "gzip", "brotli": "br", "zst": "zstd", "LZMA": "xz"}


class Decoder(Protocol):
    def decompress(self, data: bytes) -> bytes: ...


class Encoder(Protocol):
    def compress(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


def _unknown(method: str) -> ClickHouseError:
    return ClickHouseError(
        48,
        "NOT_IMPLEMENTED",
        f"Unknown compression method '{method}'. Only 'auto', 'none', 'gzip', 'deflate', 'br', 'xz', 'zstd', 'lz4', "
        "'bz2', 'snappy' are supported as compression methods",
    )


def normalize(method: str) -> str | None:
    """Canonical name of an encoding; None for identity."""
    method = method.strip()
    method = _ALIASES.get(method, method)
    if method in ("", "none", "auto", "identity"):
        return None
    return method


class _ZstdStream:
    def __init__(self) -> None:
        self._obj = zstandard.ZstdDecompressor().decompressobj()

    def decompress(self, data: bytes) -> bytes:
        return self._obj.decompress(data)


class _BrotliStream:
    def __init__(self) -> None:
        self._obj = brotli.Decompressor()

    def decompress(self, data: bytes) -> bytes:
        return self._obj.process(data)


class _Lz4Stream:
    def __init__(self) -> None:
        self._obj = lz4.frame.LZ4FrameDecompressor()

    def decompress(self, data: bytes) -> bytes:
        out = self._obj.decompress(data)
        if self._obj.eof and self._obj.unused_data:  # concatenated frames
            rest = self._obj.unused_data
            self._obj = lz4.frame.LZ4FrameDecompressor()
            out += self.decompress(rest)
        return out


def request_decoder(content_encoding: str) -> Decoder | None:
    """A streaming decoder for a request's Content-Encoding; raises NOT_IMPLEMENTED for unknown ones."""
    method = normalize(content_encoding)
    if method is None:
        return None
    if method == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if method == "deflate":
        return zlib.decompressobj()
    if method == "br":
        return _BrotliStream()
    if method == "zstd":
        return _ZstdStream()
    if method == "lz4":
        return _Lz4Stream()
    if method == "xz":
        return lzma.LZMADecompressor()
    if method == "bz2":
        return bz2.BZ2Decompressor()
    raise _unknown(content_encoding)


class _Brotli:
    def __init__(self, level: int) -> None:
        self._obj = brotli.Compressor(quality=min(level, 11))

    def compress(self, data: bytes) -> bytes:
        return self._obj.process(data)

    def flush(self) -> bytes:
        return self._obj.finish()


class _Lz4:
    def __init__(self, level: int) -> None:
        self._obj = lz4.frame.LZ4FrameCompressor(compression_level=level)
        self._started = False

    def compress(self, data: bytes) -> bytes:
        head = b""
        if not self._started:
            head, self._started = self._obj.begin(), True
        return head + self._obj.compress(data)

    def flush(self) -> bytes:
        head = b"" if self._started else self._obj.begin()
        self._started = True
        return head + self._obj.flush()


class _Zstd:
    def __init__(self, level: int) -> None:
        self._obj = zstandard.ZstdCompressor(level=level).compressobj()

    def compress(self, data: bytes) -> bytes:
        return self._obj.compress(data)

    def flush(self) -> bytes:
        return self._obj.flush()


def choose_response_encoding(accept_encoding: str) -> str | None:
    """First encoding in Accept-Encoding that we can produce (clickhouse-server takes them in order)."""
    for item in accept_encoding.split(","):
        name = normalize(item.split(";")[0])
        if name in SUPPORTED and name not in ("xz", "bz2"):
            return name
    return None


def response_encoder(method: str, level: int = 3) -> Encoder:
    """A streaming encoder for a response Content-Encoding."""
    if method == "gzip":
        return zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    if method == "deflate":
        return zlib.compressobj(level)
    if method == "br":
        return _Brotli(level)
    if method == "zstd":
        return _Zstd(level)
    if method == "lz4":
        return _Lz4(level)
    raise _unknown(method)
