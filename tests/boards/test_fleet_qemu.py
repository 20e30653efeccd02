"""A sampled board of a simulated fleet is bit-exact with the emulated board: the bytes the fleet
gave board k (after its seeded drops and corruption) are replayed, piece by piece, into QEMU
running the same image, and QEMU answers each piece with exactly the bytes the simulated board
sent (before the faults on the way back)."""

from __future__ import annotations

import random
import socket
import time

from manyfold import sim
from manyfold.devices import greenhouse as gh

BOARDS_IN_FLEET = 8
SECONDS = 10
STEP_US = 250_000
FLEET_SEED = 17
PIECE_TIMEOUT_S = 10.0
"""How long one piece's answer may take on an emulated CPU (far below the 30 s lockstep lease)."""
QUIET_S = 0.5
"""After the last piece, how long QEMU must stay silent (it sent nothing the fleet's board did not)."""


def read_exactly(sock: socket.socket, n: int, timeout_s: float) -> bytes:
    """``n`` bytes from the board's UART, or fewer if the deadline passes first."""
    out = bytearray()
    deadline = time.monotonic() + timeout_s
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(n - len(out))
        except socket.timeout:
            break
        if not chunk:
            break
        out += chunk
    return bytes(out)


def test_sampled_fleet_board_is_bit_exact_with_qemu(board, run_board):
    """Board k of an 8-board fleet with seeded drops, corruption and clock skew (no resets: QEMU
    runs without a monitor) gets, on QEMU, the same input pieces and answers each with the same
    bytes; the faults did hit its link."""
    k = random.Random(FLEET_SEED).randrange(BOARDS_IN_FLEET)
    faults = sim.FleetFaults(seed=FLEET_SEED, drop=0.002, corrupt=0.002, skew_ppm=200)
    fleet = sim.fleet(gh.greenhouse_spec(), BOARDS_IN_FLEET, seeds=FLEET_SEED, board=board, faults=faults, step_us=STEP_US, record=[k])
    fleet.run(SECONDS)
    report = fleet.boards[k]
    to_device, from_device = fleet.pieces(k)
    assert report.resets == 0 and report.skew_ppm != 0
    assert report.bytes_dropped + report.bytes_corrupted > 0 and report.host.frame_errors + report.host.rx_gaps > 0, "the faults hit the link"
    pieces = list(zip(to_device, from_device))
    assert sum(1 for piece, _ in pieces if piece) > SECONDS * 1_000_000 // STEP_US, "a piece per step at least"

    with run_board(fleet.image(k)) as b, socket.create_connection(("127.0.0.1", b.port), timeout=PIECE_TIMEOUT_S) as uart:
        uart.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        booted = False  # QEMU's boot 0x00 was taken by start_board; the simulated board's is in its first answer
        for i, (piece, answer) in enumerate(pieces):
            if not booted and answer[:1] == b"\x00":
                answer = answer[1:]
            booted = True
            if piece:
                uart.sendall(piece)
            got = read_exactly(uart, len(answer), PIECE_TIMEOUT_S)
            assert got == answer, f"piece {i} of {len(pieces)}: QEMU answered {got.hex()} where the fleet's board sent {answer.hex()}"
        assert read_exactly(uart, 1, QUIET_S) == b"", "QEMU sent more than the fleet's board"
