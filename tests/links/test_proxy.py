"""The fault proxy over real sockets: a TCP echo server stands in for a board's UART."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from manyfold.framing import FrameDecoder, encode_frame
from manyfold.links import FaultConfig, FaultProxy


@pytest.fixture
def echo_server():
    """A TCP server echoing every byte back, one client at a time (like a UART socket)."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.settimeout(0.1)
            with conn:
                while not stop.is_set():
                    try:
                        data = conn.recv(4096)
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not data:
                        break
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()
    stop.set()
    thread.join(timeout=2)
    server.close()


def exchange(port: int, messages: list[bytes], decoder: FrameDecoder, deadline_s: float = 3.0) -> list[bytes]:
    """Send framed messages through the proxy and collect what comes back until quiet."""
    got: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.settimeout(0.2)
        s.sendall(b"".join(encode_frame(m) for m in messages))
        end = time.monotonic() + deadline_s
        while time.monotonic() < end and decoder.stats.frames + decoder.stats.rejected < len(messages):
            try:
                data = s.recv(4096)
            except TimeoutError:
                continue
            if not data:
                break
            got.extend(decoder.feed(data))
    return got


def test_clean_relay(echo_server):
    """Without faults the proxy relays frames intact both ways."""
    with FaultProxy(echo_server) as proxy:
        decoder = FrameDecoder()
        messages = [bytes([i]) * (i + 1) for i in range(50)]
        assert exchange(proxy.port, messages, decoder) == messages
        assert proxy.counts.connections == 1 and proxy.counts.to_host_bytes == proxy.counts.to_target_bytes


def test_bit_flips_are_caught_not_accepted(echo_server):
    """Seeded bit flips corrupt frames; the decoder rejects them and accepts only intact ones."""
    with FaultProxy(echo_server, to_target=FaultConfig(flip_rate=0.01), seed=3) as proxy:
        decoder = FrameDecoder()
        messages = [f"reading {i:04d}".encode() for i in range(200)]
        got = exchange(proxy.port, messages, decoder)
        assert set(got) <= set(messages)
        assert proxy.inject_to_target.counts.flipped > 0
        assert decoder.stats.rejected > 0 and len(got) < len(messages)


def test_truncated_frame_is_rejected(echo_server):
    """truncate_next_frame cuts one frame short: it is refused, the others pass."""
    with FaultProxy(echo_server) as proxy:
        proxy.truncate_next_frame()
        decoder = FrameDecoder()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s:
            # Both frames may reach the proxy in one read: it cuts the first inside that read.
            s.sendall(encode_frame(b"first frame is cut") + encode_frame(b"second is whole"))
            s.settimeout(0.2)
            got, end = [], time.monotonic() + 3
            while time.monotonic() < end and not got:
                try:
                    got.extend(decoder.feed(s.recv(4096)))
                except TimeoutError:
                    pass
        assert got == [b"second is whole"]
        assert proxy.counts.truncations == 1 and decoder.stats.rejected == 1


def test_cut_and_reconnect(echo_server):
    """cut() drops the connection like a pulled cable; a new connection works again."""
    with FaultProxy(echo_server) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s:
            s.sendall(encode_frame(b"before"))
            s.settimeout(2)
            assert FrameDecoder().feed(s.recv(4096)) == [b"before"]
            proxy.cut()
            s.settimeout(2)
            assert s.recv(4096) == b""  # the host side sees the cable go
        assert exchange(proxy.port, [b"after"], FrameDecoder()) == [b"after"]
        assert proxy.counts.cuts == 1 and proxy.counts.connections == 2


def test_recording_keeps_both_sides_of_the_damage(echo_server):
    """record=True keeps each direction's bytes before and after the faults: the clean side
    decodes whole, and the damaged side is what the receiver got."""
    with FaultProxy(echo_server, to_target=FaultConfig(flip_rate=0.02), seed=5, record=True) as proxy:
        messages = [f"reading {i:04d}".encode() for i in range(100)]
        decoder = FrameDecoder()
        got = exchange(proxy.port, messages, decoder)
        r = proxy.recording()
    assert FrameDecoder().feed(bytes(r.to_target_in)) == messages
    assert r.to_target_out != r.to_target_in and len(r.to_target_out) == len(r.to_target_in)
    assert FrameDecoder().feed(bytes(r.to_target_out)) == got
    assert r.to_host_in == r.to_host_out  # no faults configured on the way back
    with FaultProxy(echo_server) as plain, pytest.raises(RuntimeError, match="record=True"):
        plain.recording()


def test_cut_can_keep_the_cable_out(echo_server):
    """cut(hold_s) keeps the cable out: connections meanwhile are closed at once (and counted);
    after the hold a connection relays again."""
    with FaultProxy(echo_server) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s:
            s.sendall(encode_frame(b"before"))
            s.settimeout(2)
            assert FrameDecoder().feed(s.recv(4096)) == [b"before"]
            proxy.cut(hold_s=1.0)
            assert s.recv(4096) == b""
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s:
            s.settimeout(2)
            assert s.recv(4096) == b"", "refused while the cable is out"
        deadline = time.monotonic() + 10
        got: list[bytes] = []
        while not got and time.monotonic() < deadline:
            try:
                got = exchange(proxy.port, [b"after"], FrameDecoder(), deadline_s=0.5)
            except OSError:  # reset: the cable is still out
                pass
        assert got == [b"after"]
        assert proxy.counts.cuts == 1 and proxy.counts.refused >= 1
