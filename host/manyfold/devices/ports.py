"""Ports and what answers on them: open a link to a device on any pyserial URL, handshake, probe.

- :func:`open_port`: a :class:`~manyfold.devices.link.LinkClient` on a URL, not yet connected;
- :func:`open_board`: one that has done the describe handshake (``client.describe``);
- :func:`serial_ports` lists this machine's serial ports; :func:`probe` tries the handshake on
  one URL and says what answered (a :class:`Probe`), never raising for what is on the port.

Problems the user can fix (no such port, nothing answering, a refusal) raise :class:`PortError`,
one sentence naming the port. A handshake opens a new session on the device: a board in lockstep
goes back to free-running (its clock is its own again).
"""

from __future__ import annotations

from dataclasses import dataclass

from manyfold.devices import protocol as p
from manyfold.devices.link import LinkClient, LinkError, LinkTimeout, NackError, Timers

BAUD = 115_200
"""The boards' UART: 8N1 at 115200 baud."""
PROBE_TIMEOUT_S = 1.0


class PortError(LinkError):
    """A port did not open, or what is on it did not do the handshake; the message is one
    sentence naming the port."""


def port_reason(error: BaseException) -> str:
    """Why a port (or a file) did not open, without pyserial's repetition of the port name."""
    for e in (error.__context__, error):
        strerror = getattr(e, "strerror", None)
        if isinstance(e, OSError) and isinstance(strerror, str) and strerror and not strerror.lower().startswith("could not open"):
            return strerror[0].lower() + strerror[1:]
    text = str(error).strip() or type(error).__name__
    if text.lower().startswith("could not open port ") and ": " in text:
        text = text.split(": ", 1)[1]
    return text


def _timers(timeout_s: float) -> Timers:
    return Timers(reply_timeout_s=timeout_s, reconnect_timeout_s=timeout_s, retries=1)


def open_port(url: str, timeout_s: float, **client_args) -> LinkClient:
    """A client on ``url`` (not yet connected), waiting ``timeout_s`` for each answer; raises
    :class:`PortError` when the port does not open."""
    import serial

    if url.startswith("socket://"):
        from urllib.parse import urlsplit

        try:
            port = urlsplit(url).port
        except ValueError:
            port = None
        if port is None:
            raise PortError(f"cannot open {url}: a socket URL needs a host and a port (socket://HOST:PORT)")
    try:
        return LinkClient.open(url, baudrate=BAUD, timers=_timers(timeout_s), **client_args)
    except (serial.SerialException, OSError, ValueError) as error:
        raise PortError(f"cannot open {url}: {port_reason(error)}") from None


def open_board(url: str, timeout_s: float) -> LinkClient:
    """A client on ``url`` that has done the describe handshake; raises :class:`PortError` when
    the port does not open, nothing answers within ``timeout_s``, or the device refuses."""
    client = open_port(url, timeout_s)
    try:
        client.connect(timeout_s=timeout_s)
    except LinkTimeout:
        client.close()
        where = "listening on that UDP port" if url.startswith("udp://") else f"on it (UART 8N1 at {BAUD} baud)"
        raise PortError(f"no answer from {url} within {timeout_s:g} s: is a Manyfold board {where}?") from None
    except NackError as error:
        client.close()
        raise PortError(f"{url}: {error}") from None
    return client


@dataclass(frozen=True)
class PortInfo:
    """A serial port of this machine (from ``serial.tools.list_ports``)."""

    device: str
    description: str
    hwid: str


def serial_ports() -> list[PortInfo]:
    """The machine's serial ports, by device name."""
    from serial.tools import list_ports

    ports = [PortInfo(port.device, port.description or "", port.hwid or "") for port in list_ports.comports()]
    return sorted(ports, key=lambda port: port.device)


@dataclass(frozen=True)
class Probe:
    """What answered on a port: ``describe`` when a Manyfold device did, else ``error`` says
    why not (``"no answer"``, or why the port did not open)."""

    port: str
    description: str = ""
    describe: p.Describe | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        return "answered" if self.describe is not None else self.error or "no answer"

    def to_dict(self) -> dict:
        """JSON-ready: the port, its description, the status and the describe's facts."""
        d = self.describe
        answer = None
        if d is not None:
            answer = {
                "board": d.board, "partition": d.partition, "manifest_id": d.manifest_id.hex() if d.manifest_id else None,
                "protocol": d.protocol, "image_status": d.image_status_name, "max_message": d.max_message,
                "capabilities": list(d.capability_names), "lockstep": d.lockstep,
            }  # fmt: skip
        return {"port": self.port, "description": self.description, "status": self.status, "answer": answer}


def probe(url: str, *, timeout_s: float = PROBE_TIMEOUT_S, description: str = "") -> Probe:
    """Opens ``url`` and tries the describe handshake for ``timeout_s``; never raises for what
    is on the port (the result says what answered, or why nothing did)."""
    try:
        client = open_port(url, timeout_s)
    except PortError as error:
        return Probe(url, description, error=str(error).replace(f"cannot open {url}: ", "cannot open: "))
    try:
        return Probe(url, description, describe=client.connect(timeout_s=timeout_s))
    except LinkTimeout:
        return Probe(url, description, error="no answer")
    except LinkError as error:
        return Probe(url, description, error=f"refused the handshake: {error}")
    finally:
        client.close()


__all__ = ["BAUD", "PROBE_TIMEOUT_S", "PortError", "PortInfo", "Probe", "open_board", "open_port", "port_reason", "probe", "serial_ports"]
