"""Generate framing/vectors/vectors.json from third-party codecs only.

The vectors are the contract between every implementation of the v1 frame layer (the Rust crate,
the Python API, and clients written from docs/wire.md). They are produced here with the `cobs`
package and crcmod's predefined "crc-32c", never with Manyfold's own codec, so that our codec is
checked against an independent reading of the spec. `tests/framing/test_vectors.py` re-runs this
generator and fails if the committed file differs.

Run: python framing/vectors/generate.py  (needs: pip install cobs crcmod)
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import crcmod.predefined
from cobs import cobs

OUT = Path(__file__).with_name("vectors.json")
MAX_MESSAGE = 4096
_crc32c = crcmod.predefined.mkPredefinedCrcFun("crc-32c")


def body(message: bytes) -> bytes:
    return message + struct.pack("<I", _crc32c(message))


def frame(message: bytes) -> bytes:
    return cobs.encode(body(message)) + b"\x00"


def cobs_len_max(n: int) -> int:
    return n + n // 254 + 1


def reference_decode(stream: bytes, max_message: int) -> tuple[list[bytes], dict[str, int]]:
    """The frame-outcome rules of docs/wire.md, written independently of the Rust decoder.

    Bytes after the last 0x00 are an unfinished frame and produce no outcome.
    """
    stats = {"frames": 0, "cobs_errors": 0, "crc_errors": 0, "short_frames": 0, "oversize_frames": 0}
    messages: list[bytes] = []
    *complete, _unfinished = stream.split(b"\x00")
    for text in complete:
        if not text:
            continue  # idle 0x00
        if len(text) > cobs_len_max(max_message + 4):
            stats["oversize_frames"] += 1
            continue
        try:
            decoded = cobs.decode(text)
        except cobs.DecodeError:
            stats["cobs_errors"] += 1
            continue
        if len(decoded) < 5:
            stats["short_frames"] += 1
        elif len(decoded) - 4 > max_message:
            stats["oversize_frames"] += 1
        elif struct.unpack("<I", decoded[-4:])[0] != _crc32c(decoded[:-4]):
            stats["crc_errors"] += 1
        else:
            stats["frames"] += 1
            messages.append(decoded[:-4])
    return messages, stats


def nonzero_run(n: int) -> bytes:
    return bytes((i % 255) + 1 for i in range(n))


def valid_messages(rng: random.Random) -> list[tuple[str, bytes]]:
    cases: list[tuple[str, bytes]] = [
        ("one_byte", b"\x01"),
        ("hello", b"hello"),
        ("zero_1", b"\x00"),
        ("zeros_16", bytes(16)),
        ("zeros_300", bytes(300)),
        ("zeros_max", bytes(MAX_MESSAGE)),
        ("ff_bytes_8", b"\xff" * 8),
        # COBS code bytes top out at 0xFF (254 data bytes); runs around that length and the
        # body lengths that land on a block edge are where encoders disagree.
        *[(f"nonzero_run_{n}", nonzero_run(n)) for n in (249, 250, 251, 252, 253, 254, 255, 256, 508, 509, 510)],
        ("sensor_like_cbor", bytes.fromhex("a3617401617419ea606176fb4036800000000000")),
        ("random_1024", rng.randbytes(1024)),
        ("random_max", rng.randbytes(MAX_MESSAGE)),
        ("nonzero_max", nonzero_run(MAX_MESSAGE)),
    ]
    return cases


def flip_without_zero(data: bytearray, index: int) -> None:
    """Flip one bit of data[index] such that the byte does not become 0x00."""
    for bit in range(8):
        flipped = data[index] ^ (1 << bit)
        if flipped != 0:
            data[index] = flipped
            return


def stream_cases(rng: random.Random) -> list[dict]:
    ok_a, ok_b = frame(b"temp=21.5"), frame(b"hum=40")
    crc_flip = bytearray(frame(b"temperature reading"))
    flip_without_zero(crc_flip, 4)
    garbage = bytes(rng.randrange(1, 256) for _ in range(37))
    half = frame(b"a message cut in half by a reconnect")
    half = half[: len(half) // 2]
    cases = [
        ("two_frames", ok_a + ok_b, MAX_MESSAGE),
        ("zero_runs_between_frames", b"\x00\x00\x00" + ok_a + b"\x00\x00" + ok_b + b"\x00", MAX_MESSAGE),
        ("bad_crc_bit_flip", bytes(crc_flip) + ok_b, MAX_MESSAGE),
        ("bad_cobs_block_overrun", b"\x09abc\x00" + ok_a, MAX_MESSAGE),
        ("short_body_3_bytes", cobs.encode(b"\x01\x02\x03") + b"\x00" + ok_a, MAX_MESSAGE),
        ("short_body_empty", b"\x01\x00" + ok_a, MAX_MESSAGE),
        ("oversize_by_one", frame(bytes(MAX_MESSAGE + 1)) + ok_a, MAX_MESSAGE),
        ("oversize_small_link", frame(b"0123456789abcdefX") + frame(b"fits"), 16),
        ("oversize_streamed_garbage", bytes(rng.randrange(1, 256) for _ in range(9000)) + b"\x00" + ok_b, MAX_MESSAGE),
        ("garbage_then_resync", garbage + b"\x00" + ok_a, MAX_MESSAGE),
        ("cut_frame_runs_into_next", half + ok_a + ok_b, MAX_MESSAGE),
        ("cut_frame_then_flush_zero", half + b"\x00" + ok_a, MAX_MESSAGE),
        ("unfinished_tail_is_pending", ok_a + ok_b[:-1], MAX_MESSAGE),
    ]
    out = []
    for name, stream, max_message in cases:
        messages, stats = reference_decode(stream, max_message)
        out.append(
            {
                "name": name,
                "max_message": max_message,
                "stream": stream.hex(),
                "messages": [m.hex() for m in messages],
                "stats": stats,
            }
        )
    return out


def datagram_cases() -> list[dict]:
    good = body(b"datagram")
    flipped = bytearray(good)
    flipped[0] ^= 0x40
    return [
        {"name": "empty", "datagram": "", "max_message": MAX_MESSAGE, "error": "short_body"},
        {"name": "crc_only", "datagram": good[-4:].hex(), "max_message": MAX_MESSAGE, "error": "short_body"},
        {"name": "bit_flip", "datagram": bytes(flipped).hex(), "max_message": MAX_MESSAGE, "error": "bad_crc"},
        {"name": "oversize", "datagram": good.hex(), "max_message": 7, "error": "oversize"},
        {"name": "exactly_max", "datagram": good.hex(), "max_message": 8, "error": None},
    ]


def build() -> dict:
    rng = random.Random(20261128)
    return {
        "description": "Manyfold frame layer v1 test vectors; see docs/wire.md. Generated by generate.py from third-party codecs.",
        "crc32c_check": {"input": b"123456789".hex(), "crc": f"{_crc32c(b'123456789'):08x}"},
        "max_message_default": MAX_MESSAGE,
        "frames": [
            {
                "name": name,
                "message": message.hex(),
                "crc32c": f"{_crc32c(message):08x}",
                "frame": frame(message).hex(),
                "datagram": body(message).hex(),
            }
            for name, message in valid_messages(rng)
        ],
        "streams": stream_cases(rng),
        "datagrams": datagram_cases(),
    }


def render() -> str:
    return json.dumps(build(), indent=1) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
