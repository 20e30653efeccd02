"""Network addresses as objects: ``HOST:PORT`` for listen and admin endpoints, and a peer's
``udp://HOST:PORT`` or ``tcp://HOST:PORT``. Text only at the boundaries (flags, plan files).
A link on ``zenoh`` has no peer address: both ends meet at the Zenoh router (the plan's
``[zenoh]`` table, :mod:`manyfold.zenoh`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from manyfold.cluster.errors import ClusterError


@dataclass(frozen=True, order=True)
class Address:
    """A host and a port (0: the system chooses)."""

    host: str
    port: int

    def __post_init__(self) -> None:
        if not self.host:
            raise ClusterError("an address needs a host (HOST:PORT)")
        if not 0 <= self.port <= 65535:
            raise ClusterError(f"port {self.port} of {self.host} is not between 0 and 65535")

    @staticmethod
    def parse(text: str, what: str = "address") -> "Address":
        """``HOST:PORT`` (``[::1]:PORT`` for IPv6)."""
        host, sep, port = text.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not host or not port.isdigit():
            raise ClusterError(f"{what} {text!r} is not HOST:PORT")
        return Address(host, int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class Transport(str, enum.Enum):
    """The mesh transports a node link runs on."""

    UDP = "udp"
    TCP = "tcp"
    ZENOH = "zenoh"
    """Through a Zenoh router: nobody dials, both ends publish and subscribe under keys."""

    @property
    def dialed(self) -> bool:
        """Whether one end dials the other's address (udp, tcp), as opposed to meeting at a router."""
        return self is not Transport.ZENOH


@dataclass(frozen=True)
class PeerUrl:
    """Where a node dials a link's peer: ``udp://HOST:PORT`` or ``tcp://HOST:PORT``."""

    transport: Transport
    address: Address

    @staticmethod
    def parse(text: str) -> "PeerUrl":
        scheme, sep, rest = text.partition("://")
        if not sep or scheme not in {t.value for t in Transport if t.dialed}:
            raise ClusterError(f"peer {text!r} is not udp://HOST:PORT or tcp://HOST:PORT")
        return PeerUrl(Transport(scheme), Address.parse(rest, "peer"))

    def __str__(self) -> str:
        return f"{self.transport.value}://{self.address}"


__all__ = ["Address", "PeerUrl", "Transport"]
