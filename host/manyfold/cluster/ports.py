"""Free ports picked deterministically: from a base port upward, skipping the ports the plan
already uses and those something on this machine holds. A node's mesh port must be free for
both TCP and UDP (it binds both); an admin port for TCP.

A host that is not an address of this machine cannot be checked from here: its ports are
taken in order from the base, and ``manyfold up`` reports a port in use when the node starts.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field

from manyfold.cluster.address import Address
from manyfold.cluster.errors import ClusterError

PORT_MAX = 65535


def is_free(host: str, port: int, kinds: tuple[int, ...]) -> bool:
    """True when ``port`` on ``host`` can be bound for each socket kind in ``kinds``
    (``socket.SOCK_STREAM``, ``socket.SOCK_DGRAM``), or when ``host`` is not this machine's."""
    try:
        infos = socket.getaddrinfo(host, port, type=kinds[0])
    except socket.gaierror:
        return True  # a name this machine cannot resolve: not this machine's
    family, _, _, _, sockaddr = infos[0]
    for kind in kinds:
        with socket.socket(family, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the nodes' listeners do
            try:
                s.bind(sockaddr)
            except OSError as error:
                if error.errno == errno.EADDRNOTAVAIL:
                    return True
                return False
    return True


@dataclass
class PortPicker:
    """Hands out ports from ``first`` upward, never the same twice, only free ones."""

    first: int
    taken: set[Address] = field(default_factory=set)

    def reserve(self, address: Address) -> None:
        self.taken.add(address)

    def pick(self, host: str, kinds: tuple[int, ...]) -> Address:
        port = self.first
        while port <= PORT_MAX:
            candidate = Address(host, port)
            if candidate not in self.taken and is_free(host, port, kinds):
                self.taken.add(candidate)
                return candidate
            port += 1
        raise ClusterError(f"no free port on {host} from {self.first} up")


MESH = (socket.SOCK_STREAM, socket.SOCK_DGRAM)
"""A node's listen port: TCP and UDP."""
ADMIN = (socket.SOCK_STREAM,)


__all__ = ["ADMIN", "MESH", "PortPicker", "is_free"]
