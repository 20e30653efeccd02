"""The multicast beacon as the nodes send it (``--beacon``): a JSON object of at most
:data:`BEACON_BYTES_MAX` bytes on Manyfold's own group (:data:`BEACON_GROUP`, port :data:`BEACON_PORT`),

``{"magic": "manyfold-beacon", "v": 1, "node", "id", "incarnation", "manifest_id", "admin",
"listen"}``

(docs/node.md, "Discovery"). :func:`listen` hears beacons for a bounded time; anything that is
not a valid beacon is ignored, never raised."""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from dataclasses import dataclass

from manyfold.cluster.address import Address
from manyfold.cluster.errors import ClusterError

BEACON_GROUP = "239.255.109.102"
"""Manyfold's group: administratively scoped, ``m`` ``f`` in the last two bytes (not Zenoh's)."""
BEACON_PORT = 7477
"""Manyfold's beacon port (not Zenoh's 7446/7447)."""
BEACON_BYTES_MAX = 512
BEACON_MAGIC = "manyfold-beacon"
BEACON_VERSION = 1
BEACONS_MAX = 1024
"""Distinct senders kept from one listen at most."""


@dataclass(frozen=True)
class BeaconOptions:
    """Where to listen: the group and port, and the interface (its IPv4 address; ``0.0.0.0``:
    the system's choice)."""

    group: str = BEACON_GROUP
    port: int = BEACON_PORT
    interface: str = "0.0.0.0"

    @staticmethod
    def parse(group: str | None, interface: str | None) -> "BeaconOptions":
        """From ``--beacon-group IPV4:PORT`` and ``--beacon-interface IPV4`` (either may be None)."""
        out = BeaconOptions()
        if group:
            address = Address.parse(group, "--beacon-group")
            if not _ipv4(address.host) or not ipaddress.IPv4Address(address.host).is_multicast:
                raise ClusterError(f"--beacon-group {group} is not an IPv4 multicast GROUP:PORT (224.0.0.0/4)")
            out = BeaconOptions(address.host, address.port, out.interface)
        if interface:
            if not _ipv4(interface):
                raise ClusterError(f"--beacon-interface {interface} is not an IPv4 address")
            out = BeaconOptions(out.group, out.port, interface)
        return out


def _ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class Beacon:
    """One node's beacon."""

    node: str
    id: int
    incarnation: int
    manifest_id: str
    admin: Address
    listen: Address | None

    @staticmethod
    def parse(data: bytes) -> "Beacon | None":
        """The beacon in ``data``, or None for anything else. The node's own parser (Rust,
        through the extension) decides, so the nodes and this listener agree on what a
        beacon is."""
        from manyfold import _native

        parsed = _native.parse_beacon(bytes(data))
        if parsed is None:
            return None
        node, node_id, incarnation, manifest_id, admin, listen = parsed
        return Beacon(node, node_id, incarnation, manifest_id, Address.parse(admin), Address.parse(listen) if listen else None)


def open_socket(options: BeaconOptions) -> socket.socket:
    """A socket joined to the group on the interface (shared with the nodes of this host)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((options.group, options.port))
        membership = struct.pack("4s4s", socket.inet_aton(options.group), socket.inet_aton(options.interface))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    except OSError as error:
        s.close()
        raise ClusterError(
            f"cannot hear the beacon group {options.group}:{options.port} on interface {options.interface}: {error.strerror or error}; "
            "give --beacon-interface ADDR (an IPv4 address of the interface)"
        ) from None
    return s


def listen(options: BeaconOptions, seconds: float) -> tuple[Beacon, ...]:
    """The beacons heard within ``seconds``, one per admin address (the last heard), in the
    order first heard."""
    heard: dict[Address, Beacon] = {}
    deadline = time.monotonic() + max(0.0, seconds)
    with open_socket(options) as s:
        # Bounded by the deadline: each wait is at most what is left of it.
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                data, _ = s.recvfrom(BEACON_BYTES_MAX + 1)
            except (TimeoutError, socket.timeout):
                break
            beacon = Beacon.parse(data)
            if beacon is not None and (beacon.admin in heard or len(heard) < BEACONS_MAX):
                heard[beacon.admin] = beacon
    return tuple(heard.values())


__all__ = ["BEACON_BYTES_MAX", "BEACON_GROUP", "BEACON_MAGIC", "BEACON_PORT", "BEACON_VERSION", "Beacon", "BeaconOptions", "listen", "open_socket"]
