"""The host end of the link protocol v1: talk to a board, or to the simulation, over any port.

A :class:`LinkClient` runs over anything with pyserial's ``read(n)`` / ``write(bytes)`` /
``close()``: a serial port, a ``socket://`` URL (an emulated board's UART), or
``manyfold.sim``'s in-memory port. It frames messages (v1 frame layer), opens a session (hello
-> describe), sends events and lockstep steps, asks queries, and keeps the link alive:

- every request gets exactly one answer (describe, ack, nack or reply); a nack raises
  :class:`NackError` with the device's reason;
- free-running, it sends a heartbeat when it has been quiet for ``heartbeat_s``;
- when the device is silent for ``down_s``, or the port fails, it reopens the port (with the
  ``reopen`` callable, which :meth:`LinkClient.open` provides) and resumes the same session,
  with no user code; the gap shows in :attr:`LinkClient.counters` (``reconnects``, ``resumes``,
  ``rx_gaps``) and as ``delivery_dropped`` on the next events;
- gaps in the device's message ids (frames lost on the way) are counted and mark the next
  event ``delivery_dropped`` too;
- on a lossy link, a query, step or event whose frame the device refused (a nack without a
  ``ref``: bad CRC, bad COBS, short, oversize) or whose answer never came is sent again, up to
  ``Timers.retries`` times, before the client reconnects (counted in ``retries``). Sending
  again is safe: queries change nothing, a step to the time already reached does nothing, and
  an event the device already took is refused as ``seq_not_increasing``, which the client then
  takes as its ack.

With ``record=True`` it keeps every message the device sent, as the frames they came in, in
:attr:`LinkClient.transcript`: two runs of the same trace can be compared byte for byte.
"""

from __future__ import annotations

import collections
import hashlib
import random
import select
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from manyfold.devices import messages as m
from manyfold.framing import FrameDecoder, encode_frame


class LinkError(Exception):
    """The link could not do what was asked."""


class LinkTimeout(LinkError):
    """No answer in time, even after reconnecting."""


class NackError(LinkError):
    """The device refused a request; ``reason`` says why (a :class:`~manyfold.devices.messages.NackReason`)."""

    def __init__(self, request: str, nack: m.Nack) -> None:
        detail = f" (detail {nack.detail})" if nack.detail else ""
        super().__init__(f"the device refused {request}: {nack.reason.name.lower()}{detail}")
        self.reason = nack.reason
        self.detail = nack.detail
        self.nack = nack


@dataclass
class Timers:
    """Keepalive timing on the host, in seconds of its clock (docs/wire.md 2.7)."""

    heartbeat_s: float = 1.0
    stale_s: float = 3.0
    down_s: float = 10.0
    hello_retry_s: float = 0.5
    reply_timeout_s: float = 5.0
    reconnect_timeout_s: float = 15.0
    retries: int = 2
    """Times a query, step or event is sent again when its frame was refused or its answer lost."""


@dataclass
class HostCounters:
    """What the host end saw."""

    frames: int = 0
    frame_errors: int = 0
    decode_errors: int = 0
    messages_rx: int = 0
    messages_tx: int = 0
    rx_gaps: int = 0
    reconnects: int = 0
    resumes: int = 0
    stale: int = 0
    nacks: int = 0
    """Nacks received (refused requests, and frames the device could not read)."""
    retries: int = 0
    """Requests sent again because their frame was refused or their answer was lost."""


FRAME_REFUSALS = frozenset(
    {m.NackReason.FRAME_BAD_CRC, m.NackReason.FRAME_BAD_COBS, m.NackReason.FRAME_SHORT, m.NackReason.FRAME_OVERSIZE}
)
"""Nack reasons of frames the device could not read (their nack has no ``ref``)."""

_RESENDABLE = (m.Query, m.Step, m.Event)


def _lost_in_transit(nack: m.Nack) -> bool:
    """True for the nack of a frame that arrived damaged (possibly the request just sent)."""
    return nack.ref is None and nack.reason in FRAME_REFUSALS


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


def open_serial(url: str, *, baudrate: int = 115_200, timeout: float = 0.02):
    """Opens a pyserial URL or device (``/dev/ttyACM0``, ``socket://host:port``, ``loop://``)
    at ``baudrate`` (the boards' UART: 8N1 at 115200), as a port whose reads wait at most
    ``timeout`` seconds. Raises ``serial.SerialException`` when it cannot be opened."""
    import serial

    port = serial.serial_for_url(url, baudrate=baudrate, timeout=0)
    try:
        return SerialPort(port, timeout)
    except (AttributeError, OSError, ValueError, serial.SerialException):
        port.timeout = timeout  # no file descriptor to wait on (Windows, loop://): pyserial waits
        return port


class LinkState:
    DISCONNECTED = "disconnected"
    HANDSHAKING = "handshaking"
    UP = "up"
    STALE = "stale"


class LinkClient:
    """The host end of one link. See the module docs."""

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
    ) -> None:
        self.port = port
        self._reopen = reopen
        self.max_message = max_message
        self.session = random.getrandbits(32) if session is None else session
        self.timers = timers or Timers()
        self.clock = clock
        self.record = record
        self.transcript: list[bytes] = []
        """Frames of every message received (with ``record=True``)."""
        self.counters = HostCounters()
        self.state = LinkState.DISCONNECTED
        self.describe: m.Describe | None = None
        self._decoder = FrameDecoder(max_message=max_message)
        self._next_id = 0
        self._expected_id: int | None = None
        self._gap_pending = False
        self._events: collections.deque[m.Event] = collections.deque()
        self._answers: collections.deque[m.Message] = collections.deque()
        self._route_seq: dict[int, int] = {}
        self._route_index: dict[int, int] | None = None
        self._flags = 0
        self.port_error: Exception | None = None
        """The last error the port raised (the link was then marked disconnected)."""
        self._port_dead = False
        now = clock()
        self._last_rx = now
        self._last_tx = now

    # --- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, baudrate: int = 115_200, **kwargs) -> "LinkClient":
        """A client over the pyserial URL ``url`` (``/dev/ttyACM0``, ``socket://host:port``, ...),
        which it reopens by itself when the link breaks. ``baudrate`` matters for serial
        devices only (the boards' UART runs 8N1 at 115200). Raises ``serial.SerialException``
        when the port cannot be opened."""

        def reopen():
            return open_serial(url, baudrate=baudrate)

        return cls(reopen(), reopen=reopen, **kwargs)

    def wait_for_boot(self, timeout_s: float = 15.0) -> None:
        """Waits for the 0x00 a board sends once its UART is up (boards/README.md)."""
        deadline = self.clock() + timeout_s
        while self.clock() < deadline:
            data = self._read_port(4096)
            if data:
                self._feed(data)
                if 0 in data:
                    return
        raise LinkTimeout(f"no boot byte from the device within {timeout_s} s")

    def connect(self, *, lockstep: bool = False, reset: bool = False, time_us: int = 0, timeout_s: float | None = None) -> m.Describe:
        """Opens the session: hello until the describe comes. ``lockstep`` hands the device's
        clock to :meth:`step` from ``time_us`` on; ``reset`` restarts its partition, its
        counters and the link ids."""
        self._flags = (m.HELLO_LOCKSTEP if lockstep else 0) | (m.HELLO_RESET if reset else 0)
        self.state = LinkState.HANDSHAKING
        describe = self._handshake(time_us, timeout_s or self.timers.reply_timeout_s)
        self._route_index = None
        if reset:
            self._route_seq.clear()
        self._flags &= ~m.HELLO_RESET  # a resume never resets
        return describe

    def _handshake(self, time_us: int, timeout_s: float) -> m.Describe:
        deadline = self.clock() + timeout_s
        while True:
            self._answers.clear()
            hello = m.Hello(m.VERSION, self.max_message, self.session, self._flags, time_us)
            hello_id = self._send(hello)
            retry_at = min(deadline, self.clock() + self.timers.hello_retry_s)
            while self.clock() < retry_at:
                answer = self._take_answer(hello_id, timeout_s=max(0.0, retry_at - self.clock()), describe_ok=True)
                if answer is None:
                    continue
                if isinstance(answer.body, m.Nack):
                    if _lost_in_transit(answer.body):
                        break  # a damaged frame (perhaps the hello): say hello again
                    raise NackError("the hello", answer.body)
                if isinstance(answer.body, m.Describe):
                    self.describe = answer.body
                    self.state = LinkState.UP
                    self._expected_id = (answer.id + 1) % 2**32
                    return answer.body
            if self.clock() >= deadline:
                raise LinkTimeout(f"no describe within {timeout_s} s")
            if self._port_dead:
                raise LinkTimeout("the port closed during the handshake")

    # --- the wire --------------------------------------------------------------------------------

    def _read_port(self, n: int) -> bytes:
        try:
            return self.port.read(n) or b""
        except Exception as error:  # a serial or socket error: the cable is gone
            self._broken(error)
            time.sleep(0.01)  # as long as a read of a live port may wait: no busy loop on a dead one
            return b""

    def _write_port(self, data: bytes) -> None:
        try:
            self.port.write(data)
            flush = getattr(self.port, "flush", None)
            if flush is not None:
                flush()
        except Exception as error:
            self._broken(error)

    def _broken(self, error: Exception) -> None:
        if self.state in (LinkState.UP, LinkState.STALE):
            self.state = LinkState.DISCONNECTED
        self.port_error = error
        self._port_dead = True

    def _send(self, body: m.Body) -> int:
        msg_id = self._next_id
        self._next_id = (self._next_id + 1) % 2**32
        frame = encode_frame(m.encode(m.Message(msg_id, body)), self.max_message)
        self._write_port(frame)
        self.counters.messages_tx += 1
        self._last_tx = self.clock()
        return msg_id

    def _feed(self, data: bytes) -> None:
        for outcome in self._decoder.feed_outcomes(data):
            if not isinstance(outcome, (bytes, bytearray)):
                self.counters.frame_errors += 1
                continue
            self.counters.frames += 1
            self._on_message_bytes(bytes(outcome))

    def _on_message_bytes(self, data: bytes) -> None:
        try:
            message = m.decode(data)
        except m.LinkDecodeError:
            self.counters.decode_errors += 1
            return
        if self.record:
            self.transcript.append(encode_frame(data, self.max_message))
        self.counters.messages_rx += 1
        if isinstance(message.body, m.Nack):
            self.counters.nacks += 1
        self._last_rx = self.clock()
        if self.state == LinkState.STALE:
            self.state = LinkState.UP
        if self._expected_id is not None and message.id != self._expected_id and not isinstance(message.body, m.Describe):
            self.counters.rx_gaps += 1
            self._gap_pending = True
        self._expected_id = (message.id + 1) % 2**32
        body = message.body
        if isinstance(body, m.Event):
            if self._gap_pending:
                # Messages from the device were lost just before this one.
                body = replace(body, taints=body.taints | m.DELIVERY_DROPPED)
                self._gap_pending = False
            self._events.append(body)
        elif isinstance(body, m.Heartbeat):
            pass
        else:
            self._answers.append(message)

    def _take_answer(self, ref: int, timeout_s: float, describe_ok: bool = False) -> m.Message | None:
        """The answer to request ``ref`` (or a nack without a ref), reading for up to
        ``timeout_s``; None on timeout."""
        deadline = self.clock() + timeout_s
        while True:
            while self._answers:
                answer = self._answers.popleft()
                body = answer.body
                if describe_ok and isinstance(body, m.Describe):
                    return answer
                if isinstance(body, (m.Ack, m.Reply)) and body.ref == ref:
                    return answer
                if isinstance(body, m.Nack) and body.ref in (ref, None):
                    return answer
                # An answer to an earlier request that timed out: dropped.
            data = self._read_port(4096)
            if data:
                self._feed(data)
            elif self.clock() >= deadline or self._port_dead:
                return None

    def _request(self, body: m.Body, what: str) -> m.Message:
        """Sends a request and returns its answer. A query, step or event whose frame was
        refused or whose answer did not come is sent again (``Timers.retries`` times); then,
        with no answer, the client reconnects and tries once more."""
        resends = 0
        reconnected = False
        while True:
            if self.state not in (LinkState.UP, LinkState.STALE):
                self.reconnect()
            # Answers still queued belong to earlier requests (or are nacks of frames that were
            # never ours); only what comes after this request can answer it.
            self._answers.clear()
            ref = self._send(body)
            answer = self._take_answer(ref, self.timers.reply_timeout_s)
            resendable = isinstance(body, _RESENDABLE) and resends < self.timers.retries
            if answer is not None:
                nack = answer.body
                if not isinstance(nack, m.Nack):
                    return answer
                if resends and isinstance(body, m.Event) and nack.reason == m.NackReason.SEQ_NOT_INCREASING and nack.detail >= body.seq:
                    # An earlier copy of this event was taken; its ack was lost on the way.
                    return m.Message(answer.id, m.Ack(ref, 0))
                if not (resendable and _lost_in_transit(nack)):
                    raise NackError(what, nack)
            elif not resendable:
                if self._reopen is None or reconnected:
                    raise LinkTimeout(f"no answer to {what} within {self.timers.reply_timeout_s} s")
                reconnected = True
                self.reconnect()
                continue
            # The request or its answer was damaged on the way: send it again.
            resends += 1
            self.counters.retries += 1

    # --- keepalive and reconnection --------------------------------------------------------------

    def poll(self, timeout_s: float = 0.0) -> list[m.Event]:
        """Reads what arrived (for up to ``timeout_s``), keeps the link alive, and returns the
        events received so far."""
        deadline = self.clock() + timeout_s
        while True:
            data = self._read_port(4096)
            if data:
                self._feed(data)
            now = self.clock()
            lockstep = bool(self._flags & m.HELLO_LOCKSTEP)
            if self.state in (LinkState.UP, LinkState.STALE) and not lockstep:
                if now - self._last_tx >= self.timers.heartbeat_s:
                    self._send(m.Heartbeat(0))
                silent = now - self._last_rx
                if self.state == LinkState.UP and silent >= self.timers.stale_s:
                    self.state = LinkState.STALE
                    self.counters.stale += 1
                if silent >= self.timers.down_s and self._reopen is not None:
                    self.reconnect()
            elif self.state == LinkState.DISCONNECTED and self._reopen is not None and self.describe is not None:
                self.reconnect()
            if not data and now >= deadline:
                return self.events()

    def reconnect(self) -> m.Describe:
        """Reopens the port and resumes the session (same session id, no reset)."""
        self.counters.reconnects += 1
        self.state = LinkState.HANDSHAKING
        deadline = self.clock() + self.timers.reconnect_timeout_s
        while True:
            if self._reopen is not None:
                try:
                    self.port.close()
                except Exception:
                    pass
                try:
                    self.port = self._reopen()
                except Exception:
                    if self.clock() >= deadline:
                        raise LinkTimeout(f"could not reopen the port within {self.timers.reconnect_timeout_s} s") from None
                    time.sleep(0.1)  # the port is not back yet: try again shortly
                    continue
                self._port_dead = False
            self._decoder = FrameDecoder(max_message=self.max_message)
            self._write_port(b"\x00")  # drop any half-sent frame at the device (docs/wire.md 1.3)
            try:
                describe = self._handshake(0, max(0.5, min(self.timers.hello_retry_s * 4, deadline - self.clock())))
            except LinkTimeout:
                if self.clock() >= deadline:
                    raise
                if self._port_dead:
                    time.sleep(0.1)  # the port closed again at once: the cable is still out
                continue
            self.counters.resumes += 1
            self._gap_pending = True
            return describe

    # --- requests --------------------------------------------------------------------------------

    def events(self) -> list[m.Event]:
        """The events received and not yet returned, oldest first."""
        out = list(self._events)
        self._events.clear()
        return out

    def route_index(self, route: int | str) -> int:
        """A route index from an index, or from a printed route name (using the device's
        route table and the ids in it)."""
        if isinstance(route, int):
            return route
        wanted = int.from_bytes(hashlib.sha256(route.encode()).digest()[:4], "big")
        if self._route_index is None:
            # Asked once per session: the route table changes only with the image.
            self._route_index = {info.id: i for i, info in enumerate(self.routes())}
        if wanted not in self._route_index:
            raise LinkError(f"the device has no route {route}")
        return self._route_index[wanted]

    def send_event(
        self,
        route: int | str,
        value: m.Value,
        *,
        time_us: int = 0,
        seq: int | None = None,
        epoch: int = 0,
        taints: int = 0,
        lineage: m.Lineage = m.Lineage(),
    ) -> m.Ack:
        """Publishes ``value`` on a route from the host; returns the device's ack, sent after
        everything the event caused. ``seq`` counts per route from 1 unless given."""
        index = self.route_index(route)
        if seq is None:
            seq = self._route_seq.get(index, 0) + 1
        self._route_seq[index] = seq
        event = m.Event(index, seq, time_us, epoch, taints, lineage, value)
        return self._request(event, f"the event on route {route}").body

    def step(self, to_us: int, epoch: int = 0) -> list[m.Event]:
        """Advances a lockstep device to ``to_us``; returns the events it emitted on the way
        (and any not yet returned)."""
        self._request(m.Step(to_us, epoch), f"the step to {to_us} us")
        return self.events()

    def resume(self) -> None:
        """Hands the clock back: the device runs on its own timer again."""
        self._request(m.Resume(), "resume")
        self._flags &= ~m.HELLO_LOCKSTEP

    def heartbeat(self) -> None:
        self._send(m.Heartbeat(0))

    def query(self, what: m.QueryKind, arg: int = 0) -> object:
        """One query; returns the reply body."""
        return self._request(m.Query(int(what), arg), f"the {m.QueryKind(what).name.lower()} query").body.body

    def _pages(self, what: m.QueryKind) -> list:
        items: list = []
        while True:
            page = self.query(what, len(items))
            items.extend(page.items)
            if len(items) >= page.total or not page.items:
                return items

    def routes(self) -> list[m.RouteInfo]:
        return self._pages(m.QueryKind.ROUTES)

    def nodes(self) -> list[m.NodeInfo]:
        return self._pages(m.QueryKind.NODES)

    def sources(self) -> list[m.SourceInfo]:
        return self._pages(m.QueryKind.SOURCES)

    def flow(self) -> list[m.FlowInfo]:
        return self._pages(m.QueryKind.FLOW)

    def taints(self) -> list[m.TaintInfo]:
        return self._pages(m.QueryKind.TAINTS)

    def counters_device(self) -> dict[str, int]:
        """The device's counters (docs/wire.md 2.5)."""
        return self.query(m.QueryKind.COUNTERS)

    def latest(self, route: int | str) -> m.Event | None:
        return self.query(m.QueryKind.LATEST, self.route_index(route))

    def board(self) -> m.BoardInfo:
        return self.query(m.QueryKind.BOARD)

    def upload(self, image: bytes, chunk_len: int | None = None) -> None:
        """Uploads and activates a partition image (the device checks its SHA-256 and decodes
        it before switching); raises :class:`NackError` when it refuses."""
        chunk_len = chunk_len or max(16, self.max_message - 16)
        self._request(m.UploadBegin(len(image), hashlib.sha256(image).digest()), "the upload")
        for offset in range(0, len(image), chunk_len):
            self._request(m.UploadChunk(offset, image[offset : offset + chunk_len]), f"the chunk at {offset}")
        self._request(m.UploadCommit(), "the upload commit")
        self._route_index = None
        self._route_seq.clear()  # the new partition starts its routes' sequences again

    def run_trace(self, trace: Iterable[m.Body]) -> None:
        """Sends each message of ``trace`` and waits for its answer (nacks are answers too,
        not errors): a deterministic way to drive a lockstep device."""
        for body in trace:
            self._answers.clear()
            ref = self._send(body)
            if isinstance(body, m.Heartbeat):
                continue
            if self._take_answer(ref, self.timers.reply_timeout_s) is None:
                raise LinkTimeout(f"no answer to {type(body).__name__} within {self.timers.reply_timeout_s} s")

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:
            pass
        self.state = LinkState.DISCONNECTED

    def __enter__(self) -> "LinkClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = [
    "FRAME_REFUSALS",
    "HostCounters",
    "LinkClient",
    "LinkError",
    "LinkState",
    "LinkTimeout",
    "NackError",
    "SerialPort",
    "Timers",
    "open_serial",
]
