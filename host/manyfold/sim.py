"""Host-side simulation of a board: a partition image run by the same ``manyfold-core`` code
as the firmware, inside the extension, behind an in-memory link.

:func:`open` returns the :class:`~manyfold.devices.link.LinkClient` you would use with a real
board, over a :class:`SimPort` instead of a serial port. The simulated board has the firmware's
capacities, ``max_message`` and link behaviour, so the same input trace (events and lockstep
steps) gives byte-identical output frames on an emulated board and here.

>>> from manyfold.devices.greenhouse import greenhouse_spec
>>> board = open(greenhouse_spec().encode(), board="lm3s6965evb", session=1)
>>> board.connect(lockstep=True, reset=True).partition
'greenhouse-sensors'
>>> len(board.step(1_000_000)) > 0
True

:func:`fleet` runs N boards of one partition in lockstep on one virtual clock, each behind its
own link (its own seeds, counters, taints and seeded faults), all in Rust; with ``graph=`` their
events go into a host graph, board ``i`` as producer ``"{owner}#{i}"``:

>>> boards = fleet(greenhouse_spec(), 10, seeds=[1 + i for i in range(10)], board="lm3s6965evb")
>>> report = boards.run(5.0)
>>> (report.boards, report.sim_s, report.events > 0, report.frame_errors)
(10, 5.0, True, 0)
>>> boards.boards[3].device_time_us
5000000

Time: in lockstep the device's time is the host's steps. Free-running, it is the port's clock:
a virtual clock that starts at 0 and moves with :meth:`SimPort.advance` and with every read that
finds nothing (the default; the client's timers run on it too), or real time with
``realtime=True``.
"""

from __future__ import annotations

import random as _random
import time as _time
from dataclasses import dataclass, field
from typing import Sequence

from manyfold import _native
from manyfold._native import SimDevice
from manyfold.devices import protocol as _p
from manyfold.devices.link import LinkClient

BOARDS = ("lm3s6965evb", "mps2-an386", "sim")


class SimPort:
    """A pyserial-like port whose far end is a simulated board.

    ``write`` hands bytes to the device, which handles them at once; ``read`` returns what it
    sent. The first byte read is the board's boot 0x00. A read that finds nothing "waits"
    ``timeout`` seconds, like a serial port: on the virtual clock, it moves the clock on by
    that much (so a free-running board keeps running while a host waits for it).
    """

    def __init__(
        self, image: bytes, board: str = "sim", *, realtime: bool = False, upload: bool | None = None, timeout: float = 0.02
    ) -> None:
        self.timeout = timeout
        self._realtime = realtime
        self._t0 = _time.monotonic()
        self._virtual_us = 0
        # The firmware cannot store uploads yet, so a simulated real board does not either
        # (its describe then matches the board's byte for byte); the generic "sim" board can.
        upload = (board == "sim") if upload is None else upload
        self.device = SimDevice(board, bytes(image), self.now_us(), upload)
        self._out = bytearray(self.device.poll(self.now_us()))
        self.is_open = True

    def clock(self) -> float:
        """The port's clock in seconds (give it to a LinkClient as ``clock``)."""
        return self.now_us() / 1e6

    def now_us(self) -> int:
        """The port's clock: virtual (moved by :meth:`advance`) or real time since creation."""
        if self._realtime:
            return int((_time.monotonic() - self._t0) * 1e6)
        return self._virtual_us

    def advance(self, us: int) -> None:
        """Moves the virtual clock forward and lets the device run (free-running mode)."""
        if us < 0:
            raise ValueError("time only moves forward")
        self._virtual_us += us
        self._out += self.device.poll(self.now_us())

    def write(self, data: bytes) -> int:
        if not self.is_open:
            raise OSError("the simulated port is closed")
        self._out += self.device.write(self.now_us(), bytes(data))
        return len(data)

    def read(self, n: int = 1) -> bytes:
        if not self.is_open:
            raise OSError("the simulated port is closed")
        if not self._out:
            self._out += self.device.poll(self.now_us())
        if not self._out and self.timeout:
            if self._realtime:
                _time.sleep(self.timeout)
            else:
                self._virtual_us += int(self.timeout * 1e6)
            self._out += self.device.poll(self.now_us())
            return b""
        chunk = bytes(self._out[:n])
        del self._out[:n]
        return chunk

    @property
    def in_waiting(self) -> int:
        return len(self._out)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.is_open = False


def open(image: bytes, board: str = "sim", *, realtime: bool = False, upload: bool | None = None, **client_args) -> LinkClient:
    """A link client connected (at the port level) to a simulated ``board`` running ``image``.
    Call ``connect()`` on it as on a real board. ``upload`` (default: only for the generic
    ``"sim"`` board) lets it accept partition uploads. ``client_args`` go to
    :class:`~manyfold.devices.link.LinkClient` (``session``, ``record``, ``timers``, ...)."""
    port = SimPort(image, board, realtime=realtime, upload=upload)
    client_args.setdefault("clock", port.clock)
    client = LinkClient(port, **client_args)
    client.wait_for_boot(timeout_s=1.0)
    return client


# --- fleets ------------------------------------------------------------------------------------

SEED_STRIDE = 1 << 16
"""With ``seeds=s`` (an int), board ``i`` is seeded ``s + i * SEED_STRIDE`` (its sources ``+ j``)."""

FLEET_BOARDS = ("lm3s6965evb", "mps2-an386", "nucleo-f401re", "sim")


class FleetError(ValueError):
    """A fleet cannot be made or run as asked."""


@dataclass(frozen=True)
class FleetFaults:
    """Seeded faults for every board of a fleet (each board draws its own streams from ``seed``
    and its index): per-byte ``drop`` and ``corrupt`` probabilities on both directions of its
    link, ``resets_per_hour`` reboots on average (Poisson, on fleet time), and a clock skew drawn
    uniformly within ``±skew_ppm`` parts per million."""

    seed: int = 0
    drop: float = 0.0
    corrupt: float = 0.0
    resets_per_hour: float = 0.0
    skew_ppm: int = 0

    def skew_of(self, board: int) -> int:
        """Board ``board``'s skew in ppm."""
        if not self.skew_ppm:
            return 0
        return _random.Random(f"skew:{self.seed}:{board}").randint(-self.skew_ppm, self.skew_ppm)


def skewed_us(t_us: int, ppm: int) -> int:
    """Fleet time ``t_us`` on a board whose clock runs ``ppm`` parts per million fast: the step
    target the fleet sends it (rounded toward zero, as the fleet does)."""
    extra = abs(t_us * ppm) // 1_000_000
    return t_us + (extra if t_us * ppm >= 0 else -extra)


@dataclass(frozen=True)
class BoardReport:
    """One board of a fleet: its clock, its link's counters (``host``, as
    :attr:`LinkClient.counters`), what its events carried, and the faults it met."""

    board: int
    session: int
    skew_ppm: int
    device_time_us: int
    target_us: int
    ready: bool
    host: _p.HostCounters
    events: int
    events_tainted: int
    taint_bits: int
    route_taint_bits: tuple[int, ...]
    steps: int
    steps_failed: int
    resets: int
    rehellos: int
    bytes_dropped: int
    bytes_corrupted: int
    tx_lost: int

    @property
    def taints(self) -> list[str]:
        """The taints seen on this board's events, by name."""
        return _taint_names(self.taint_bits)


def _taint_names(bits: int) -> list[str]:
    from manyfold.graph import Taint

    # The enum lists the taints in bit order (manyfold_core::taint::Taint).
    return [t.value for bit, t in enumerate(Taint) if bits & (1 << bit)]


@dataclass(frozen=True)
class FleetReport:
    """What a fleet did so far (counts are totals since it started), and how fast the last
    :meth:`Fleet.run` went."""

    boards: int
    sim_s: float
    wall_s: float
    events: int
    events_published: int
    events_unrouted: int
    events_refused: int
    publish_error: str | None
    events_tainted: int
    boards_tainted: int
    taints: dict[str, int]
    """Taint name -> boards whose events carried it."""
    resets: int
    bytes_dropped: int
    bytes_corrupted: int
    frame_errors: int
    rx_gaps: int
    steps_failed: int
    run_sim_s: float
    """Simulated seconds of the last run."""

    @property
    def sim_s_per_wall_s(self) -> float:
        """Simulated seconds per wall second of the last run."""
        return self.run_sim_s / self.wall_s if self.wall_s > 0 else float("inf")


class _Boards(Sequence):
    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    def __len__(self) -> int:
        return self._fleet.count

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if isinstance(i, int) and not isinstance(i, bool) and not -len(self) <= i < len(self):
            raise IndexError(f"no board {i}: the fleet has boards 0 to {len(self) - 1}")
        return self._fleet._report(i % len(self) if isinstance(i, int) and not isinstance(i, bool) else i)

    def __iter__(self):
        return (self._fleet._report(i) for i in range(len(self)))


@dataclass
class _Source:
    image: bytes
    route_names: list[str] | None = None
    to_host: list[str] = field(default_factory=list)


def _source_of(image_or_manifest, partition: str | None) -> _Source:
    from manyfold.devices.image import PartitionSpec
    from manyfold.manifest.model import Manifest

    if isinstance(image_or_manifest, (bytes, bytearray, memoryview)):
        return _Source(bytes(image_or_manifest))
    if isinstance(image_or_manifest, PartitionSpec):
        spec = image_or_manifest
    elif isinstance(image_or_manifest, Manifest):
        if partition is None:
            raise FleetError("a fleet from a manifest needs partition=: the name of the device partition to run")
        from manyfold.devices.lower import partition_spec
        from manyfold.graph.errors import ManifestError

        try:
            spec = partition_spec(image_or_manifest, partition)
        except ManifestError as error:
            raise FleetError(str(error)) from None
    else:
        raise FleetError(f"a fleet runs a partition image (bytes), a PartitionSpec or a Manifest, got {type(image_or_manifest).__name__}")
    return _Source(spec.encode(), [r.name for r in spec.routes], list(spec.to_host))


def _int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FleetError(f"{name} must be an integer of at least {minimum}, got {value!r}")
    return value


class Fleet:
    """N simulated boards running one partition in lockstep on one virtual clock (see
    :func:`fleet`). ``boards[i]`` is board ``i``'s :class:`BoardReport`."""

    def __init__(self, native, source: _Source, seeds: list[int], sessions: list[int], step_us: int, record: tuple[int, ...], graph) -> None:
        self._native = native
        self._source = source
        self.seeds = seeds
        self._sessions = sessions
        self.step_us = step_us
        self.record = record
        self.graph = graph
        self.boards = _Boards(self)
        self._last_run = (0.0, 0.0)

    @property
    def count(self) -> int:
        """The boards."""
        return len(self._sessions)

    def __len__(self) -> int:
        return self.count

    @property
    def now_us(self) -> int:
        """Fleet time, microseconds."""
        return self._native.now_us

    def _check(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self.count:
            raise FleetError(f"no board {i!r}: the fleet has boards 0 to {self.count - 1}")
        return i

    def image(self, i: int) -> bytes:
        """Board ``i``'s partition image (its seeds in it)."""
        return self._native.image(self._check(i))

    def session(self, i: int) -> int:
        """Board ``i``'s session id (give it to ``sim.open(..., session=)`` for the same board)."""
        return self._sessions[self._check(i)]

    def _recorded(self, i: int) -> int:
        if self._check(i) not in self.record:
            raise FleetError(f"board {i} is not recorded: pass record=({i},) to fleet()")
        return i

    def transcript(self, i: int) -> list[bytes]:
        """The frames of every message board ``i``'s link received (a recorded board)."""
        return self._native.transcript(self._recorded(i))

    def pieces(self, i: int) -> tuple[list[bytes], list[bytes]]:
        """Board ``i``'s link, piece by piece (a recorded board): what it was given (after the
        faults) and what it sent back for each (before the faults)."""
        return self._native.pieces(self._recorded(i))

    def events(self, i: int) -> list[_p.Event]:
        """Every event board ``i``'s link delivered, in order (a recorded board)."""
        return self._native.events(self._recorded(i))

    def run_to(self, t_us: int) -> None:
        """Runs every board to fleet time ``t_us`` (in ticks of ``step_us``), publishing into
        the graph as it goes."""
        t_us = _int("t_us", t_us, 0)
        if t_us < self.now_us:
            raise FleetError(f"the fleet is at {self.now_us} us; it cannot run back to {t_us} us")
        start_us, t0 = self.now_us, _time.perf_counter()
        self._native.run_to(t_us)
        self._last_run = ((self.now_us - start_us) / 1e6, _time.perf_counter() - t0)

    def run(self, seconds: float) -> FleetReport:
        """Runs ``seconds`` more of fleet time; returns the report."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise FleetError(f"seconds must be a number of at least 0, got {seconds!r}")
        self.run_to(self.now_us + int(round(seconds * 1e6)))
        return self.report()

    def _report(self, i: int) -> BoardReport:
        d = self._native.board(self._check(i))
        return BoardReport(
            board=d["board"], session=d["session"], skew_ppm=d["skew_ppm"], device_time_us=d["device_time_us"],
            target_us=d["target_us"], ready=d["ready"], host=_p.HostCounters(**d["host"]), events=d["events"],
            events_tainted=d["events_tainted"], taint_bits=d["taints"], route_taint_bits=tuple(d["route_taints"]),
            steps=d["steps"], steps_failed=d["steps_failed"], resets=d["resets"], rehellos=d["rehellos"],
            bytes_dropped=d["bytes_dropped"], bytes_corrupted=d["bytes_corrupted"], tx_lost=d["tx_lost"],
        )  # fmt: skip

    def report(self) -> FleetReport:
        """The fleet's totals so far, and the speed of the last run."""
        boards = [self._report(i) for i in range(self.count)]
        taints: dict[str, int] = {}
        for b in boards:
            for name in b.taints:
                taints[name] = taints.get(name, 0) + 1
        published, unrouted, refused, error = self._native.published()
        run_sim_s, wall_s = self._last_run
        return FleetReport(
            boards=self.count, sim_s=self.now_us / 1e6, wall_s=wall_s, events=sum(b.events for b in boards),
            events_published=published, events_unrouted=unrouted, events_refused=refused, publish_error=error,
            events_tainted=sum(b.events_tainted for b in boards), boards_tainted=sum(1 for b in boards if b.taint_bits),
            taints=taints, resets=sum(b.resets for b in boards), bytes_dropped=sum(b.bytes_dropped for b in boards),
            bytes_corrupted=sum(b.bytes_corrupted for b in boards), frame_errors=sum(b.host.frame_errors for b in boards),
            rx_gaps=sum(b.host.rx_gaps for b in boards), steps_failed=sum(b.steps_failed for b in boards), run_sim_s=run_sim_s,
        )  # fmt: skip


def fleet(
    image_or_manifest,
    count: int,
    *,
    seeds: int | Sequence[int] = 1,
    partition: str | None = None,
    board: str = "lm3s6965evb",
    graph=None,
    faults: FleetFaults | Sequence[FleetFaults] | None = None,
    step_us: int = 100_000,
    record: Sequence[int] = (),
) -> Fleet:
    """``count`` simulated boards running one partition (an image, a ``PartitionSpec``, or a
    ``Manifest`` with ``partition``), in lockstep on one virtual clock in ticks of ``step_us``.

    Board ``i``'s sources are seeded ``seeds[i] + j`` (``seeds`` an int ``s``: ``seeds[i] = s +
    i * SEED_STRIDE``), so ``seeds=[s]`` runs what ``greenhouse_spec(seed=s)`` describes; its
    session id is ``seeds[i] | 1`` (as 32 bits). With ``graph``, every tick's events (ordered by
    time, board, arrival) are published on the host routes of the partition's ``to_host``
    routes, board ``i`` as producer ``"{owner}#{i}"``, and a virtual graph clock follows the
    fleet. ``faults`` (one :class:`FleetFaults` for all, or one per board) are seeded, never
    timed by the wall clock. ``record`` lists the boards whose transcripts and events are kept.
    """
    count = _int("count", count, 1)
    step_us = _int("step_us", step_us, 1)
    if board not in FLEET_BOARDS:
        raise FleetError(f"unknown board {board!r}: the simulation emulates {', '.join(FLEET_BOARDS)}")
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seed_list = [seeds + i * SEED_STRIDE for i in range(count)]
    else:
        seed_list = list(seeds)
        if len(seed_list) != count:
            raise FleetError(f"seeds has {len(seed_list)} entries for {count} boards: give one per board, or one int")
    for s in seed_list:
        _int("each seed", s, 0)
    source = _source_of(image_or_manifest, partition)
    if faults is None:
        fault_list = [FleetFaults()] * count
    elif isinstance(faults, FleetFaults):
        fault_list = [faults] * count
    else:
        fault_list = list(faults)
        if len(fault_list) != count or not all(isinstance(f, FleetFaults) for f in fault_list):
            raise FleetError(f"faults must be one FleetFaults or a list of {count} (one per board)")
    record = tuple(record)
    for r in record:
        if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r < count:
            raise FleetError(f"cannot record board {r!r}: the fleet has boards 0 to {count - 1}")
    route_names = None
    if graph is not None:
        if source.route_names is None:
            raise FleetError("to publish into a graph, pass a PartitionSpec or a Manifest with partition=: an image alone does not name its host routes")
        route_names = [name if name in source.to_host else None for name in source.route_names]
        declared = {str(r) for r in graph.routes}
        missing = [n for n in route_names if n is not None and n not in declared]
        if missing:
            raise FleetError(f"the host graph has no route {missing[0]}: declare the partition's to_host routes before attaching a fleet")
    try:
        images = [_native.reseed_image(source.image, s) for s in seed_list]
        sessions = [(s & 0xFFFF_FFFF) | 1 for s in seed_list]
        tuples = [(f.seed, float(f.drop), float(f.corrupt), float(f.resets_per_hour), f.skew_of(i)) for i, f in enumerate(fault_list)]
        native = _native.SimFleet(board, images, sessions, step_us, tuples, list(record))
    except ValueError as error:
        raise FleetError(str(error)) from None
    if graph is not None:
        from manyfold.graph import Route

        owner = next(Route.parse(n).owner for n in route_names if n is not None) if any(route_names) else "fleet"
        producers = [graph._native.producer(f"{owner}#{i}") for i in range(count)]
        try:
            native.attach(graph._native, route_names, producers)
        except ValueError as error:
            raise FleetError(str(error)) from None
    return Fleet(native, source, seed_list, sessions, step_us, record, graph)


__all__ = ["BOARDS", "BoardReport", "Fleet", "FleetError", "FleetFaults", "FleetReport", "SimPort", "fleet", "open", "skewed_us"]
