"""The link under faults, on both emulated boards: a seeded FaultProxy sits between the host's
LinkClient and the board's UART socket and drops bytes, flips bits, truncates a frame, or pulls
the cable.

The proxy records the bytes of each direction before and after the damage, so the tests decode
both and account for every frame: what the board sent, what reached the host, what the host
sent, what reached the board. Nothing corrupted is accepted, every loss is counted, losses show
as delivery_dropped taints, and the link recovers by itself."""

from __future__ import annotations

import time

import oracle_v11
import pytest
from unframe import unframe

import manyfold.sim as sim
from manyfold.devices import greenhouse as gh
from manyfold.devices import protocol as m
from manyfold.devices.link import FRAME_REFUSALS, LinkClient, NackError, Timers
from manyfold.framing import FrameDecoder, FrameErrorKind
from manyfold.links import FaultConfig, FaultProxy

SPEC = gh.greenhouse_spec()
IMAGE = SPEC.encode()
MAX_MESSAGE = 256
SEED = 2024
TO_BOARD = FaultConfig(drop_rate=0.004, flip_rate=0.006)
TO_HOST = FaultConfig(drop_rate=0.0005, flip_rate=0.0015)
FAN_WRITES = {2_000_000: 40.0, 3_000_000: 80.0, 7_500_000: 20.0}
END_US = 12_000_000
STEP_US = 250_000


def outcomes(stream: bytes) -> list:
    """The frame layer's outcome for each frame of a byte stream: message bytes or a FrameError."""
    return FrameDecoder(MAX_MESSAGE).feed_outcomes(bytes(stream))


def drive(client) -> list[m.Event]:
    """The workload: lockstep steps over 12 s, fan writes, queries; returns the events received."""
    events: list[m.Event] = []
    for t in range(STEP_US, END_US + 1, STEP_US):
        events += client.step(t)
        if t in FAN_WRITES:
            client.send_event(gh.FAN_DESIRED, FAN_WRITES[t], time_us=t)
    client.routes(), client.nodes(), client.flow(), client.taints()
    return events + client.events()


def is_subsequence(part: list, whole: list) -> bool:
    it = iter(whole)
    return all(any(x == y for y in it) for x in part)


def key(e) -> tuple:
    return (e.route, e.seq, e.time_us, e.epoch, e.taints, (e.lineage.route, e.lineage.first_seq, e.lineage.count), e.value)


def test_faults_never_pass_and_every_loss_is_counted(board, run_board):
    """Seeded drops and bit flips both ways: every message the host accepted is byte-identical to
    one the board sent; every event the host got is one the board sent (as manyfold.sim sends
    it for the same trace), expanded exactly from its short form; each event the host could not
    get is counted, and the next event of its route says delivery_dropped (that route only);
    each frame the board refused is counted and nacked, and each lost host message is a gap in
    the host's ids."""
    with run_board(IMAGE) as b, FaultProxy(("127.0.0.1", b.port), to_target=TO_BOARD, to_host=TO_HOST, seed=SEED, record=True) as proxy:
        c = LinkClient.open(proxy.url, session=21, record=True, timers=Timers(reply_timeout_s=1.0, retries=8))
        describe = c.connect(lockstep=True, reset=True, timeout_s=15)
        assert describe.manifest_id == SPEC.image_id() and describe.board == board
        events = drive(c)
        latest = c.latest(gh.Z1_TEMP_AVG)
        facts = c.board()
        device = c.counters_device()  # the last request: its counts cover everything before it
        recording = proxy.recording()
        c.close()
    host = c.counters
    assert host.reconnects == 0, "losses are repaired by resending, not by reconnecting"
    assert facts.rx_dropped == 0 and facts.time_us == END_US
    damage_to_board = proxy.inject_to_target.counts
    damage_to_host = proxy.inject_to_host.counts
    assert damage_to_board.dropped + damage_to_board.flipped > 0 and damage_to_host.dropped + damage_to_host.flipped > 0

    # --- board -> host: nothing corrupted is accepted ---------------------------------------------
    sent = outcomes(recording.to_host_in)
    assert all(isinstance(x, bytes) for x in sent), "the board sends only whole frames"
    arrived = outcomes(recording.to_host_out)
    accepted = [x for x in arrived if isinstance(x, bytes)]
    assert (host.frames, host.frame_errors, host.decode_errors) == (len(accepted), len(arrived) - len(accepted), 0)
    assert [unframe(f, MAX_MESSAGE) for f in c.transcript] == accepted
    assert is_subsequence(accepted, sent), "every accepted message is one the board sent, in order"
    assert len(accepted) < len(sent), "the seeded faults lost some of the board's frames"

    # --- what the board sent, read as a host without losses reads it ----------------------------
    start = max(i for i, x in enumerate(sent) if oracle_v11.kind_of(x) == m.Kind.DESCRIBE)
    refs = oracle_v11.Refs()
    board_messages = []  # (message bytes, decoded messages)
    for x in sent[start:]:
        board_messages.append((x, oracle_v11.decode_device(x, refs)))
    board_events = [d.body for _, ds in board_messages for d in ds if isinstance(d, oracle_v11.Message) and d.kind == m.Kind.EVENT]
    assert not any(isinstance(d, tuple) for _, ds in board_messages for d in ds), "the board only shortens what it announced"

    # --- the board did exactly what the simulation does with the same trace ----------------------
    s = sim.open(IMAGE, board=board, session=21)
    s.connect(lockstep=True, reset=True)
    reference = drive(s)
    assert [key(e) for e in board_events] == [key(e) for e in reference], "resent steps and events were not applied twice"
    assert latest == s.latest(gh.Z1_TEMP_AVG)

    # --- every event the host got is one the board sent; every loss is counted and tainted ------
    got_through = []  # board events in messages that reached the host, in order
    lost_routes_before: dict[int, bool] = {}
    rest = iter(accepted[accepted.index(sent[start]) :])
    position = next(rest, None)
    for x, ds in board_messages:
        if x == position:
            position = next(rest, None)
            got_through += [d.body for d in ds if isinstance(d, oracle_v11.Message) and d.kind == m.Kind.EVENT]
    received = {(e.route, e.seq) for e in events}
    assert received <= {(e.route, e.seq) for e in got_through}
    undecodable = [e for e in got_through if (e.route, e.seq) not in received]
    assert host.events_undecodable == len(undecodable)
    assert len(events) == len(received), "no event twice"
    last: dict[int, int] = {}
    marked = 0
    by_seq = {(e.route, e.seq): e for e in board_events}
    for e in events:
        expected = by_seq[(e.route, e.seq)]
        prior = last.get(e.route)
        gap = prior is not None and e.seq != prior + 1 or prior is None and any(
            (x.route, x.seq) not in received and x.route == e.route and x.seq < e.seq for x in board_events
        )
        want = expected.taints | (m.DELIVERY_DROPPED if gap else 0)
        assert key(e) == key(expected)[:4] + (want,) + key(expected)[5:], (e, expected, gap)
        marked += gap
        last[e.route] = e.seq
    assert marked > 0, "some loss was followed by an event of its route"
    assert host.rx_gaps > 0

    # --- host -> board: every damaged frame the board got was refused, counted and nacked -------
    host_sent = outcomes(recording.to_target_in)
    assert all(isinstance(x, bytes) for x in host_sent)
    assert host.retries > 0 and host.nacks > 0
    got = outcomes(recording.to_target_out)
    decoded = [oracle_v11.decode_host(x) if isinstance(x, bytes) else x for x in got]
    is_msg = lambda x: isinstance(x, oracle_v11.Message)  # noqa: E731
    # The first reset hello that reached the board reset it; a resend of it (the session is the
    # reset token) did not.
    reset = min(i for i, x in enumerate(decoded) if is_msg(x) and x.kind == m.Kind.HELLO and x.body.flags & 2)
    messages = [ds[0] for _, ds in board_messages if len(ds) == 1 and isinstance(ds[0], oracle_v11.Message)]
    reply = next(msg for msg in reversed(messages) if msg.kind == m.Kind.REPLY and msg.body.what == m.QueryKind.COUNTERS)
    query = max(i for i, x in enumerate(decoded) if is_msg(x) and x.kind == m.Kind.QUERY and x.id == reply.body.ref)
    window = decoded[reset : query + 1]  # what the board's counters cover: from the reset hello to the counters query
    kinds = [x.kind for x in window if not is_msg(x)]
    expected = {
        "frames": sum(is_msg(x) for x in window),
        "frame_crc_errors": kinds.count(FrameErrorKind.BAD_CRC),
        "frame_short": kinds.count(FrameErrorKind.SHORT_BODY),
        "frame_oversize": kinds.count(FrameErrorKind.OVERSIZE),
        "frame_cobs_errors": len(kinds) - sum(kinds.count(k) for k in (FrameErrorKind.BAD_CRC, FrameErrorKind.SHORT_BODY, FrameErrorKind.OVERSIZE)),
    }
    assert {k: getattr(device, k) for k in expected} == expected
    assert kinds, "the seeded faults damaged some of the host's frames"
    ids = [x.id for x in window if is_msg(x)]
    gaps = sum(1 for a, b in zip(ids, ids[1:]) if b not in ((a + 1) % 256, a))
    assert device.rx_gaps == gaps, "each lost host message is a gap in its ids (a resend repeats its id)"
    nacks = [msg for msg in messages[: messages.index(reply)] if msg.kind == m.Kind.NACK]
    assert device.nacks_tx == len(nacks) >= len(kinds), "each refused frame was nacked"
    refusals = [n for n in nacks if n.body.reason in FRAME_REFUSALS]
    assert len(refusals) == len(kinds) and all(n.body.ref is None for n in refusals)
    print(
        f"{board}: board->host {len(sent) - start} frames, {len(sent) - len(accepted)} lost ({host.frame_errors} refused), "
        f"{marked} events marked, {len(undecodable)} undecodable; host->board {len(kinds)} refused frames, {device.rx_gaps} id gaps, "
        f"{host.retries} resends, {len(events)} events checked against the simulation"
    )


def test_truncated_frame_is_refused_and_counted(run_board):
    """A host frame cut short on the way is refused with a nack (no ref), counted by the board,
    and not acted on; a client that resends gets the step done anyway."""
    with run_board(IMAGE) as b, FaultProxy(("127.0.0.1", b.port)) as proxy:
        c = LinkClient.open(proxy.url, session=41, timers=Timers(reply_timeout_s=5.0, retries=0))
        c.connect(lockstep=True, reset=True)
        c.step(1_000_000)
        before = c.counters_device()
        proxy.truncate_next_frame()
        with pytest.raises(NackError) as refused:
            c.step(1_250_000)
        assert refused.value.reason in FRAME_REFUSALS and refused.value.nack.ref is None
        after = c.counters_device()
        errors = ("frame_crc_errors", "frame_cobs_errors", "frame_short", "frame_oversize")
        assert sum(getattr(after, k) - getattr(before, k) for k in errors) == 1
        assert (after.frames - before.frames, after.nacks_tx - before.nacks_tx, after.rx_gaps - before.rx_gaps) == (1, 1, 1)
        assert proxy.counts.truncations == 1
        assert c.board().time_us == 1_000_000, "the truncated step was not carried out"

        c.timers.retries = 2
        proxy.truncate_next_frame()
        c.step(1_250_000)
        assert (c.counters.retries, c.counters.nacks) == (1, 2)
        assert c.board().time_us == 1_250_000 and proxy.counts.truncations == 2


def test_link_recovers_after_the_proxy_cuts_the_cable(run_board):
    """The proxy pulls the cable and keeps it out for 5 s: the client reconnects by itself through
    the proxy, the handshake shows the same manifest id and session, events flow again, and the
    gap shows in both ends' counters and as delivery_dropped on each event after a lost one."""
    watched = [SPEC.route_index(r) for r in (gh.Z1_TEMP_AVG, gh.Z2_TEMP_AVG)]  # 4 and 1 events/s
    with run_board(IMAGE) as b, FaultProxy(("127.0.0.1", b.port)) as proxy:
        c = LinkClient.open(proxy.url, session=31, timers=Timers(stale_s=2.0, down_s=3.0, reply_timeout_s=5.0, reconnect_timeout_s=30.0))
        first = c.connect()
        assert first.manifest_id == SPEC.image_id()
        events: list[m.Event] = []
        deadline = time.monotonic() + 10
        while not {e.route for e in events} >= set(watched) and time.monotonic() < deadline:
            events += c.poll(0.2)
        assert {e.route for e in events} >= set(watched)
        assert not _after_gaps(events), "nothing is lost while the cable is in"

        proxy.cut(hold_s=5.0)  # longer than the board's 3 s stale time
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not (c.counters.resumes and set(_after_gaps(events)) >= set(watched)):
            events += c.poll(0.2)
        assert (c.counters.reconnects, c.counters.resumes) == (1, 1)
        assert proxy.counts.cuts == 1 and proxy.counts.refused >= 1 and proxy.counts.connections == 2
        assert c.describe.manifest_id == first.manifest_id and c.describe.session == 31
        resumed = _after_gaps(events)
        assert set(resumed) >= set(watched), "events flow again, after a gap in each busy route's seqs"
        assert all("delivery_dropped" in e.taint_names for e in resumed.values()), resumed
        device = c.counters_device()
        assert device.resumes == 1 and device.stale >= 1 and device.events_unsent > 0 and device.sessions == 1
        seen = {t.route: t.seen for t in c.taints()}
        assert all(seen[r] & m.DELIVERY_DROPPED for r in resumed)


def _after_gaps(events: list[m.Event]) -> dict[int, m.Event]:
    """Per route, the first event received after a gap in its seqs (events lost on the way)."""
    last: dict[int, int] = {}
    first: dict[int, m.Event] = {}
    for e in events:
        if e.route in last and e.seq != last[e.route] + 1:
            first.setdefault(e.route, e)
        last[e.route] = e.seq
    return first

