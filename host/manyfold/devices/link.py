"""The host end of the link protocol: talk to a board, or to the simulation, over any port.

A :class:`LinkClient` runs over anything with pyserial's ``read(n)`` / ``write(bytes)`` /
``close()``: a serial port, a ``socket://`` URL (an emulated board's UART), or
``manyfold.sim``'s in-memory port. The protocol itself (handshake and version choice, request
ids, answers, resends, keepalive, resume, lockstep, paging, upload, compact events and the
references that expand them, gaps turned into taints) runs in Rust, in ``manyfold-core``'s host
role, through ``manyfold._native.HostClient``; this module keeps the port I/O and the typed API:

- every request gets exactly one answer; a refusal raises :class:`NackError` with the device's
  reason, and no answer in time raises :class:`LinkTimeout`;
- a request whose frame the device refused, or whose answer did not come, is sent again (with
  the same id) up to ``Timers.retries`` times before the client reconnects;
- when the device is silent for ``down_s``, or the port fails, the client reopens the port
  (with the ``reopen`` callable, which :meth:`LinkClient.open` provides) and resumes the
  session, with no user code; the gap shows in :attr:`LinkClient.counters` and as
  ``delivery_dropped`` on the next event of each route that lost events;
- it speaks link protocol v1.1 and falls back to v1 for a board that only speaks v1.

With ``record=True`` it keeps every message the device sent, as the frames they came in, in
:attr:`LinkClient.transcript`: two runs of the same trace can be compared byte for byte.
"""

from __future__ import annotations

import random
import select
import time
from dataclasses import astuple, dataclass
from typing import Callable, Iterable

from manyfold import _native
from manyfold.devices import protocol as p
from manyfold.devices.image import route_id


class LinkError(Exception):
    """The link could not do what was asked."""


class LinkTimeout(LinkError):
    """No answer in time, even after resending and reconnecting."""


class NackError(LinkError):
    """The device refused a request; ``reason`` says why (a :class:`~manyfold.devices.protocol.NackReason`)."""

    def __init__(self, request: str, nack: p.Nack) -> None:
        self.reason = p.NackReason(nack.reason)
        self.detail = nack.detail
        self.nack = nack
        detail = f" (detail {nack.detail})" if nack.detail else ""
        super().__init__(f"the device refused {request}: {self.reason.name.lower()}{detail}")


@dataclass
class Timers:
    """Keepalive and request timing on the host, in seconds of its clock (docs/wire.md 2.10)."""

    heartbeat_s: float = 1.0
    stale_s: float = 3.0
    down_s: float = 10.0
    hello_retry_s: float = 0.5
    reply_timeout_s: float = 5.0
    reconnect_timeout_s: float = 15.0
    retries: int = 2
    """Times a request is sent again when its frame was refused or its answer lost."""


FRAME_REFUSALS = p.FRAME_REFUSALS

EVENTS_MAX: int = _native.EVENTS_MAX
"""Events received and not taken yet, at most (``manyfold-runtime``'s ``EVENTS_MAX``): past it
the oldest is dropped, counted in ``counters.events_overflowed``, and its route's next event
says ``delivery_dropped``."""


class SerialPort:
    """A pyserial port (opened with ``timeout=0``) read without pyserial's polling delay.

    pyserial's ``read(n)`` with a timeout returns only when ``n`` bytes came or the timeout
    passed, so every read of a short answer would take the whole timeout. This waits with
    ``select`` for the first byte (up to ``timeout`` seconds) and then takes what is there.
    Everything else is the pyserial port's (``port.serial``).
    """

    def __init__(self, serial_port, timeout: float = 0.02) -> None:
        self.serial = serial_port
        self.timeout = timeout
        self._fd = serial_port.fileno()

    def read(self, n: int = 1) -> bytes:
        ready, _, _ = select.select([self._fd], [], [], self.timeout)
        if not ready:
            return b""
        return self.serial.read(n)  # raises when the peer closed the connection

    def write(self, data: bytes) -> int | None:
        return self.serial.write(data)

    def flush(self) -> None:
        self.serial.flush()

    def close(self) -> None:
        self.serial.close()

    @property
    def is_open(self) -> bool:
        return self.serial.is_open

    @property
    def in_waiting(self) -> int:
        return self.serial.in_waiting


UDP_SCHEME = "udp://"
"""A board linked over UDP (``udp://HOST:PORT``): datagram frames, docs/embedded.md "UDP boards"."""


def open_serial(url: str, *, baudrate: int = 115_200, timeout: float = 0.02):
    """Opens a pyserial URL or device (``/dev/ttyACM0``, ``socket://host:port``, ``loop://``)
    at ``baudrate`` (the boards' UART: 8N1 at 115200), or a UDP board (``udp://host:port``,
    ``manyfold._native.UdpPort``), as a port whose reads wait at most ``timeout`` seconds.
    Raises ``serial.SerialException`` when it cannot be opened."""
    import serial

    if url.startswith(UDP_SCHEME):
        try:
            return _native.UdpPort(url, timeout)
        except (OSError, ValueError) as error:
            raise serial.SerialException(str(error)) from None

    port = serial.serial_for_url(url, baudrate=baudrate, timeout=0)
    try:
        return SerialPort(port, timeout)
    except (AttributeError, OSError, ValueError, serial.SerialException):
        port.timeout = timeout  # no file descriptor to wait on (Windows, loop://): pyserial waits
        return port


class LinkClient:
    """The host end of one link. See the module docs.

    ``version_max`` is the newest protocol version offered: 2 (link v1.1, the default) or 1 (a
    v1-only host, refused by v1.1 boards)."""

    def __init__(
        self,
        port,
        *,
        reopen: Callable[[], object] | None = None,
        max_message: int = 256,
        session: int | None = None,
        timers: Timers | None = None,
        clock: Callable[[], float] = time.monotonic,
        record: bool = False,
        version_max: int = p.VERSION_V1_1,
    ) -> None:
        self.max_message = max_message
        self.timers = timers or Timers()
        self.clock = clock
        self.record = record
        self._native = _native.HostClient(
            port, reopen, clock, max_message, random.getrandbits(32) if session is None else session,
            self._timers(), version_max, record,
        )  # fmt: skip

    def _timers(self) -> tuple:
        return astuple(self.timers)

    def _sync(self) -> None:
        """Hands the (mutable) timers to the native client before a call."""
        self._native.set_timers(self._timers())

    # --- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, baudrate: int = 115_200, **kwargs) -> LinkClient:
        """A client over the pyserial URL ``url`` (``/dev/ttyACM0``, ``socket://host:port``, ...)
        or a UDP board's ``udp://host:port``, which it reopens by itself when the link breaks. ``baudrate`` matters for serial
        devices only (the boards' UART runs 8N1 at 115200). Raises ``serial.SerialException``
        when the port cannot be opened."""

        def reopen():
            return open_serial(url, baudrate=baudrate)

        return cls(reopen(), reopen=reopen, **kwargs)

    @property
    def port(self):
        """The port in use (reconnecting replaces it)."""
        return self._native.port

    @property
    def session(self) -> int:
        """The session id in force (every reset moves to a new one: it is the reset token)."""
        return self._native.session

    @property
    def describe(self) -> p.Describe | None:
        """The device's last describe."""
        return self._native.describe

    @property
    def counters(self) -> p.HostCounters:
        """What the host end counted (a snapshot)."""
        return self._native.counters

    @property
    def state(self) -> str:
        """``disconnected``, ``handshaking``, ``up`` or ``stale``."""
        return self._native.state

    @property
    def version(self) -> int:
        """The protocol version of the session: 1 (v1) or 2 (v1.1)."""
        return self._native.version

    @property
    def transcript(self) -> list[bytes]:
        """Frames of every message received (with ``record=True``)."""
        return self._native.transcript

    def clear_transcript(self) -> None:
        self._native.clear_transcript()

    @property
    def port_error(self) -> str | None:
        """The last error the port raised (the link was then reconnected)."""
        return self._native.port_error

    def wait_for_boot(self, timeout_s: float = 15.0) -> None:
        """Waits for the 0x00 a board sends once its UART is up (boards/README.md)."""
        self._native.wait_for_boot(timeout_s)

    def connect(
        self, *, lockstep: bool = False, reset: bool = False, time_us: int = 0, timeout_s: float | None = None, fetch_routes: bool = True
    ) -> p.Describe:
        """Opens the session: hello until the describe comes, then (``fetch_routes``) the route
        table. ``lockstep`` hands the device's clock to :meth:`step`; ``reset`` restarts its
        partition (at ``time_us`` in lockstep), its counters and the link ids, in a new
        session."""
        self._sync()
        return self._native.connect(lockstep, reset, time_us, timeout_s or self.timers.reply_timeout_s, fetch_routes)

    def reconnect(self) -> p.Describe:
        """Reopens the port and resumes the session (same session id, no reset)."""
        self._sync()
        return self._native.reconnect()

    # --- events and requests ---------------------------------------------------------------------

    def poll(self, timeout_s: float = 0.0) -> list[p.Event]:
        """Reads what arrives (for up to ``timeout_s``), keeps the link alive, and returns the
        events received so far."""
        self._sync()
        return self._native.poll(timeout_s)

    def events(self) -> list[p.Event]:
        """The events received and not yet returned, oldest first."""
        return self._native.events()

    def route_index(self, route: int | str) -> int:
        """A route index from an index, or from a printed route name (by the id in the
        device's route table: the one the host role read while connecting, or, when the
        session was opened without it, asked for now)."""
        if isinstance(route, int):
            return route
        wanted = route_id(route)
        for index, info in enumerate(self._native.routes_known or self.routes()):
            if info.id == wanted:
                return index
        raise LinkError(f"the device has no route {route}")

    def send_event(self, route: int | str, value: bool | int | float, *, time_us: int | None = None, seq: int | None = None, taints: int = 0) -> p.Ack:
        """Publishes ``value`` on a route from the host; returns the device's ack (``info``: the
        device's time), sent after everything the event caused. Unless given, ``seq`` is one
        after the host's last event on the route since :meth:`connect` or :meth:`upload`, else
        one after the device's last (the host role keeps the count); ``time_us`` defaults to the
        device's time as the host knows it (a time ahead of the device is taken at the device's,
        ``time_repaired``)."""
        index = self.route_index(route)
        self._sync()
        return self._native.send_event(index, seq, value, time_us, taints)

    def step(self, to_us: int, epoch: int = 0) -> list[p.Event]:
        """Advances a lockstep device to ``to_us`` (control epoch ``epoch`` from then on);
        returns the events it emitted on the way (and any not yet returned)."""
        self._sync()
        return self._native.step(to_us, epoch)

    def resume(self) -> None:
        """Hands the clock back: the device runs on its own timer again, its time going on from
        where the steps left it."""
        self._sync()
        self._native.resume()

    def heartbeat(self) -> None:
        self._native.heartbeat()

    def query(self, what: p.QueryKind, arg: int = 0):
        """One query; returns its typed answer (a page is a list of items)."""
        self._sync()
        return self._native.query(int(what), arg)

    def routes(self) -> list[p.RouteInfo]:
        return self._pages(p.QueryKind.ROUTES)

    def nodes(self) -> list[p.NodeInfo]:
        return self._pages(p.QueryKind.NODES)

    def sources(self) -> list[p.SourceInfo]:
        return self._pages(p.QueryKind.SOURCES)

    def flow(self) -> list[p.FlowInfo]:
        return self._pages(p.QueryKind.FLOW)

    def taints(self) -> list[p.TaintInfo]:
        return self._pages(p.QueryKind.TAINTS)

    def _pages(self, what: p.QueryKind) -> list:
        self._sync()
        return self._native.pages(int(what))

    def counters_device(self) -> p.DeviceCounters:
        """The device's counters (docs/wire.md 2.8)."""
        return self.query(p.QueryKind.COUNTERS)

    def latest(self, route: int | str) -> p.Event | None:
        return self.query(p.QueryKind.LATEST, self.route_index(route))

    def board(self) -> p.BoardInfo:
        return self.query(p.QueryKind.BOARD)

    def upload(self, image: bytes, chunk_len: int | None = None) -> None:
        """Uploads and activates a partition image (the device checks its SHA-256 and decodes
        it before switching); raises :class:`NackError` when it refuses."""
        self._sync()
        self._native.upload(bytes(image), chunk_len or max(16, self.max_message - 16))

    def run_trace(self, trace: Iterable[p.Step | p.Query | p.Heartbeat | p.Resume | p.Event]) -> None:
        """Sends each request of ``trace`` and waits for its answer (nacks are answers too,
        not errors): a deterministic way to drive a lockstep device."""
        self._sync()
        self._native.run_trace(list(trace))

    def close(self) -> None:
        self._native.close()

    def __enter__(self) -> LinkClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = [
    "EVENTS_MAX",
    "FRAME_REFUSALS",
    "LinkClient",
    "LinkError",
    "LinkTimeout",
    "NackError",
    "SerialPort",
    "Timers",
    "UDP_SCHEME",
    "open_serial",
]
