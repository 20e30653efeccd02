"""The rules of link v1.1 that a board must keep, on both emulated boards, spoken byte by byte
with the independent oracle (runtime_nostd/vectors/oracle_v11.py): the reset token (a resent
reset hello does not reset again), a hello never moves the board's time but with a reset, and
leaving lockstep lets time go on from the last step (no jump, no catch-up burst)."""

from __future__ import annotations

import time

import oracle_v11 as o

from manyfold.devices import greenhouse as gh
from manyfold.framing import FrameDecoder, encode_frame

SPEC = gh.greenhouse_spec()
IMAGE = SPEC.encode()
LOCKSTEP, RESET = 1, 2


class Raw:
    """A host speaking v1.1 by hand over the board's UART socket: each request waits for its
    answer and returns every message that came, decoded by the oracle (events expanded with
    the references the oracle keeps, as a host does)."""

    def __init__(self, port) -> None:
        self.port = port
        self.decoder = FrameDecoder(256)
        self.refs = o.Refs()

    def send(self, msg_id: int, body, timeout_s: float = 10.0) -> list:
        self.port.write(encode_frame(o.encode_host(msg_id, body), 256))
        got: list = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in self.decoder.feed(self.port.read(4096) or b""):
                for m in o.decode_device(message, self.refs):
                    got.append(m)
                    if isinstance(m, o.Message) and m.kind in (o.Kind.DESCRIBE, o.Kind.ACK, o.Kind.NACK, o.Kind.REPLY):
                        return got
        raise AssertionError(f"no answer to {body} within {timeout_s} s")

    def answer(self, msg_id: int, body):
        return self.send(msg_id, body)[-1].body

    def counters(self, msg_id: int) -> dict:
        return self.answer(msg_id, o.Query(3, 0)).body

    def board_time(self, msg_id: int) -> int:
        return self.answer(msg_id, o.Query(7, 0)).body.time_us


def test_a_resent_reset_hello_does_not_reset_again(run_board):
    """The session id is the reset token: the same reset hello again (its describe was lost, say)
    describes again without resetting (time, seqs and counters go on); a reset in a new session
    resets."""
    with run_board(IMAGE) as b:
        raw = Raw(b.client().port)
        first = raw.answer(0, o.Hello(2, 256, 9, LOCKSTEP | RESET, 0))
        assert (first.session, first.flags, first.time_us) == (9, LOCKSTEP | RESET, 0)
        events = [m.body for m in raw.send(1, o.Step(1_000_000, 0, 0)) if m.kind == o.Kind.EVENT]
        assert events
        again = raw.answer(0, o.Hello(2, 256, 9, LOCKSTEP | RESET, 0))
        assert (again.session, again.flags, again.time_us) == (9, LOCKSTEP | RESET, 1_000_000), "not reset: time went on"
        later = [m.body for m in raw.send(2, o.Step(2_000_000, 0, 1_000_000)) if m.kind == o.Kind.EVENT]
        last_seq = {e.route: e.seq for e in events}
        assert all(e.seq > last_seq.get(e.route, 0) for e in later), "seqs go on: no (route, seq) twice"
        assert raw.counters(3)["sessions"] == 1
        fresh = raw.answer(4, o.Hello(2, 256, 10, LOCKSTEP | RESET, 0))
        assert (fresh.session, fresh.time_us) == (10, 0), "a reset in a new session resets"
        assert raw.counters(5)["sessions"] == 1, "counted from the reset on"


def test_hellos_do_not_move_time_and_resume_goes_on_from_the_last_step(run_board):
    """A hello without reset leaves the board's time alone whatever its time_us (the describe says
    the time); after resume, time goes on from the last step at the pace of the board's clock:
    each route's next events follow its last stepped one (none repeated or skipped), with no
    burst of catch-up events."""
    with run_board(IMAGE) as b:
        raw = Raw(b.client().port)
        raw.answer(0, o.Hello(2, 256, 4, LOCKSTEP | RESET, 0))
        stepped = [m.body for m in raw.send(1, o.Step(5_000_000, 0, 0)) if m.kind == o.Kind.EVENT]
        last_seq = {e.route: e.seq for e in stepped}
        ahead = raw.answer(2, o.Hello(2, 256, 4, LOCKSTEP, 100_000_000))
        assert ahead.time_us == 5_000_000, "a hello's time_us does not move the board's clock"
        assert raw.board_time(3) == 5_000_000
        started = time.monotonic()
        assert raw.answer(4, o.Resume()).info == 5_000_000
        got: list = []
        while time.monotonic() - started < 1.5:
            for message in raw.decoder.feed(raw.port.read(4096) or b""):
                got += [m.body for m in o.decode_device(message, raw.refs) if isinstance(m, o.Message) and m.kind == o.Kind.EVENT]
        elapsed_us = (time.monotonic() - started) * 1e6
        avg = [e for e in got if e.route == SPEC.route_index(gh.Z1_TEMP_AVG)]
        assert avg, "free-running again"
        first_seq: dict[int, int] = {}
        for e in got:
            first_seq.setdefault(e.route, e.seq)
        assert first_seq == {r: last_seq.get(r, 0) + 1 for r in first_seq}, "each route goes on from its last stepped event"
        # A window is stamped with its last microsecond: one closing at 5 s says 4_999_999.
        assert min(e.time_us for e in got) >= 5_000_000 - 1, "no event from before the last step"
        assert max(e.time_us for e in got) <= 5_000_000 + elapsed_us + 100_000, "no jump ahead to the board's uptime"
        assert len(avg) <= elapsed_us / 250_000 + 2, "one reading per period: no catch-up burst"
        assert raw.board_time(5) < 5_000_000 + (time.monotonic() - started) * 1e6 + 100_000
