"""The link client's keepalive and recovery, over a simulated board behind a cable the test
can cut: the link comes back with no user code, and the gap shows in counters and taints."""

from __future__ import annotations

import manyfold.sim as sim
from manyfold.devices import greenhouse as gh
from manyfold.devices import messages as m
from manyfold.devices.link import LinkClient, Timers

IMAGE = gh.greenhouse_spec().encode()


class Cable:
    """A port between the client and a simulated board that can be cut (bytes in both
    directions are lost) and can lose single frames from the board."""

    def __init__(self, port: sim.SimPort) -> None:
        self.port = port
        self.cut = False
        self.drop_frames: set[int] = set()
        self._frames_seen = 0
        self._partial = bytearray()

    def write(self, data: bytes) -> int:
        if not self.cut:
            self.port.write(data)
        return len(data)

    def read(self, n: int = 1) -> bytes:
        data = self.port.read(n)
        if self.cut:
            return b""
        if not self.drop_frames:
            return data
        out = bytearray()
        for byte in data:
            self._partial.append(byte)
            if byte == 0:
                if self._frames_seen not in self.drop_frames:
                    out += self._partial
                self._frames_seen += 1 if len(self._partial) > 1 else 0
                self._partial.clear()
        return bytes(out)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def client_over(cable: Cable, **kw) -> LinkClient:
    def reopen():
        cable.cut = False  # the cable is plugged back in
        return cable

    timers = Timers(heartbeat_s=1.0, stale_s=2.0, down_s=4.0, hello_retry_s=0.5, reply_timeout_s=2.0)
    client = LinkClient(cable, reopen=reopen, clock=cable.port.clock, session=99, timers=timers, **kw)
    client.wait_for_boot(timeout_s=1.0)
    return client


def test_link_recovers_after_the_cable_comes_back():
    """Free-running: the cable is cut for 5 s; the client notices the silence, reopens and
    resumes the session by itself; the board counted the stale link and the events it could
    not send, and the first events after the gap say delivery_dropped."""
    cable = Cable(sim.SimPort(IMAGE, "lm3s6965evb"))
    c = client_over(cable)
    c.connect()
    before = c.poll(1.5)
    assert before and all("delivery_dropped" not in e.taint_names for e in before)
    cut_us = cable.port.now_us()
    cable.cut = True
    later = c.poll(5.5)
    assert (c.counters.reconnects, c.counters.resumes) == (1, 1)
    assert c.state == "up"
    later += c.poll(2.0)
    after = [e for e in later if e.time_us > cut_us]
    assert after, "events flow again"
    first_per_route = {}
    for e in after:
        first_per_route.setdefault(e.route, e)
    assert all("delivery_dropped" in e.taint_names for e in first_per_route.values())
    assert any("delivery_dropped" not in e.taint_names for e in after), "a taint marks the gap, not all that follows"
    counters = c.counters_device()
    assert counters["stale"] == 1 and counters["resumes"] == 1 and counters["sessions"] == 1
    assert counters["events_unsent"] > 0


def test_lost_device_frames_are_detected():
    """A frame lost between the board and the host shows as a gap in the board's ids: counted,
    and the next event says delivery_dropped."""
    cable = Cable(sim.SimPort(IMAGE, "mps2-an386"))
    c = client_over(cable, record=True)
    c.connect(lockstep=True, reset=True)
    cable.drop_frames = {4}  # the fifth frame from now: an event of the step
    events = c.step(2_000_000)
    assert c.counters.rx_gaps == 1
    marked = [e for e in events if "delivery_dropped" in e.taint_names]
    assert len(marked) == 1
    assert events.index(marked[0]) == 4, "the event after the lost one"


def test_trace_runs_take_nacks_as_answers():
    """run_trace sends each message and waits for its answer, nacks included; the answers are in
    the transcript."""
    c = sim.open(IMAGE, board="lm3s6965evb", session=3, record=True)
    c.connect(lockstep=True, reset=True)
    c.run_trace([m.Step(500_000), m.Query(m.QueryKind.LATEST, 99), m.Heartbeat(0), m.Step(1_000_000)])
    kinds = [m.decode(bytes(_unframe(f))).kind for f in c.transcript]
    assert kinds[0] == m.Kind.DESCRIBE
    assert m.Kind.NACK in kinds and kinds.count(m.Kind.ACK) == 2


def _unframe(frame: bytes) -> bytes:
    from manyfold.framing import FrameDecoder

    return FrameDecoder(256).feed(frame)[0]
