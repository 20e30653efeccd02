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

Time: in lockstep the device's time is the host's steps. Free-running, it is the port's clock:
a virtual clock that starts at 0 and moves with :meth:`SimPort.advance` and with every read that
finds nothing (the default; the client's timers run on it too), or real time with
``realtime=True``.
"""

from __future__ import annotations

import time as _time

from manyfold._native import SimDevice
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


__all__ = ["BOARDS", "SimPort", "open"]
