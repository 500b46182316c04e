"""CityHash128 v1.0.2, the checksum of ClickHouse's compressed block format.

Pure Python so the endpoint needs no extra native dependency; it is only used
for ``compress=1`` / ``decompress=1`` bodies, which our clients rarely send.
"""

from __future__ import annotations

import struct

_M = 0xFFFFFFFFFFFFFFFF
K0 = 0xC3A5C85C97CB3127
K1 = 0xB492B66FBE98F273
K2 = 0x9AE16A3B2F90404F
K3 = 0xC949D7C7509E6557
_KMUL = 0x9DDFEA08EB382D69

_u64 = struct.Struct("<Q").unpack_from
_u32 = struct.Struct("<I").unpack_from


def _f64(s: bytes, i: int) -> int:
    return _u64(s, i)[0]


def _rot(v: int, shift: int) -> int:
    return v if shift == 0 else ((v >> shift) | (v << (64 - shift))) & _M


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def _hash16(u: int, v: int) -> int:
    a = ((u ^ v) * _KMUL) & _M
    a ^= a >> 47
    b = ((v ^ a) * _KMUL) & _M
    b ^= b >> 47
    return (b * _KMUL) & _M


def _hash_len_0_to_16(s: bytes, off: int, n: int) -> int:
    if n > 8:
        a = _f64(s, off)
        b = _f64(s, off + n - 8)
        return _hash16(a, _rot((b + n) & _M, n)) ^ b
    if n >= 4:
        a = _u32(s, off)[0]
        return _hash16((n + (a << 3)) & _M, _u32(s, off + n - 4)[0])
    if n > 0:
        a, b, c = s[off], s[off + (n >> 1)], s[off + n - 1]
        y = (a + (b << 8)) & 0xFFFFFFFF
        z = (n + (c << 2)) & 0xFFFFFFFF
        return (_shift_mix(((y * K2) ^ (z * K3)) & _M) * K2) & _M
    return K2


def _weak32(s: bytes, off: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = _u64(s, off)[0], _u64(s, off + 8)[0], _u64(s, off + 16)[0], _u64(s, off + 24)[0]
    a = (a + w) & _M
    b = _rot((b + a + z) & _M, 21)
    c = a
    a = (a + x + y) & _M
    b = (b + _rot(a, 44)) & _M
    return (a + z) & _M, (b + c) & _M


def _city_murmur(s: bytes, off: int, n: int, lo: int, hi: int) -> tuple[int, int]:
    a, b = lo, hi
    left = n - 16
    if left <= 0:
        a = (_shift_mix((a * K1) & _M) * K1) & _M
        c = (b * K1 + _hash_len_0_to_16(s, off, n)) & _M
        d = _shift_mix((a + (_f64(s, off) if n >= 8 else c)) & _M)
    else:
        c = _hash16((_f64(s, off + n - 8) + K1) & _M, a)
        d = _hash16((b + n) & _M, (c + _f64(s, off + n - 16)) & _M)
        a = (a + d) & _M
        while True:
            a ^= (_shift_mix((_f64(s, off) * K1) & _M) * K1) & _M
            a = (a * K1) & _M
            b ^= a
            c ^= (_shift_mix((_f64(s, off + 8) * K1) & _M) * K1) & _M
            c = (c * K1) & _M
            d ^= c
            off += 16
            left -= 16
            if left <= 0:
                break
    a = _hash16(a, c)
    b = _hash16(d, b)
    return a ^ b, _hash16(b, a)


def _city128_seed(s: bytes, off: int, n: int, lo: int, hi: int) -> tuple[int, int]:
    if n < 128:
        return _city_murmur(s, off, n, lo, hi)
    x, y = lo, hi
    z = (n * K1) & _M
    v0 = (_rot(y ^ K1, 49) * K1 + _f64(s, off)) & _M
    v1 = (_rot(v0, 42) * K1 + _f64(s, off + 8)) & _M
    w0 = (_rot((y + z) & _M, 35) * K1 + x) & _M
    w1 = (_rot((x + _f64(s, off + 88)) & _M, 53) * K1) & _M
    while True:
        for _ in range(2):
            x = (_rot((x + y + v0 + _f64(s, off + 16)) & _M, 37) * K1) & _M
            y = (_rot((y + v1 + _f64(s, off + 48)) & _M, 42) * K1) & _M
            x ^= w1
            y ^= v0
            z = _rot(z ^ w0, 33)
            v0, v1 = _weak32(s, off, (v1 * K1) & _M, (x + w0) & _M)
            w0, w1 = _weak32(s, off + 32, (z + w1) & _M, y)
            z, x = x, z
            off += 64
        n -= 128
        if n < 128:
            break
    y = (y + _rot(w0, 37) * K0 + z) & _M
    x = (x + _rot((v0 + z) & _M, 49) * K0) & _M
    tail_done = 0
    while tail_done < n:
        tail_done += 32
        y = (_rot((y - x) & _M, 42) * K0 + v1) & _M
        w0 = (w0 + _f64(s, off + n - tail_done + 16)) & _M
        x = (_rot(x, 49) * K0 + w0) & _M
        w0 = (w0 + v0) & _M
        v0, v1 = _weak32(s, off + n - tail_done, v0, v1)
    x = _hash16(x, v0)
    y = _hash16(y, w0)
    return (_hash16((x + v1) & _M, w1) + y) & _M, _hash16((x + w1) & _M, (y + v1) & _M)


def cityhash128(data: bytes) -> tuple[int, int]:
    """Return CityHash128 (v1.0.2) of ``data`` as (low64, high64)."""
    n = len(data)
    if n >= 16:
        return _city128_seed(data, 16, n - 16, _f64(data, 0) ^ K3, _f64(data, 8))
    if n >= 8:
        return _city128_seed(b"", 0, 0, _f64(data, 0) ^ ((n * K0) & _M), _f64(data, n - 8) ^ K1)
    return _city128_seed(data, 0, n, K0, K1)
