"""The CBOR subset of partition images (docs/wire.md 3.2), written deterministically: shortest
integers, floats always in 64 bits, definite lengths, no maps. The devices decode images with
``manyfold-core``; this is the one encoder (the host builds images, devices never do).

>>> cbor([1, -2, 1.5, b"ab", "c", None, True]).hex()
'870121fb3ff80000000000004261626163f6f5'
"""

from __future__ import annotations

import struct


def _head(out: bytearray, major: int, n: int) -> None:
    m = major << 5
    if n < 24:
        out.append(m | n)
    elif n <= 0xFF:
        out += bytes((m | 24, n))
    elif n <= 0xFFFF:
        out.append(m | 25)
        out += n.to_bytes(2, "big")
    elif n <= 0xFFFF_FFFF:
        out.append(m | 26)
        out += n.to_bytes(4, "big")
    else:
        out.append(m | 27)
        out += n.to_bytes(8, "big")


def cbor(value: object) -> bytes:
    """The deterministic encoding of ``value`` in the subset (lists, ints, floats, bytes, str,
    None, bools)."""
    out = bytearray()
    _write(out, value)
    return bytes(out)


def _write(out: bytearray, v: object) -> None:
    if v is None:
        out.append(0xF6)
    elif v is True:
        out.append(0xF5)
    elif v is False:
        out.append(0xF4)
    elif isinstance(v, int):
        if not -(2**64) <= v < 2**64:
            raise ValueError(f"integer {v} does not fit CBOR's 64-bit arguments")
        if v >= 0:
            _head(out, 0, v)
        else:
            _head(out, 1, -1 - v)
    elif isinstance(v, float):
        out.append(0xFB)
        out += struct.pack(">d", v)
    elif isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        _head(out, 2, len(b))
        out += b
    elif isinstance(v, str):
        b = v.encode("utf-8")
        _head(out, 3, len(b))
        out += b
    elif isinstance(v, (list, tuple)):
        _head(out, 4, len(v))
        for item in v:
            _write(out, item)
    else:
        raise TypeError(f"cannot encode {type(v).__name__} in the image's CBOR subset")
