"""The Zenoh keys of a Manyfold deployment (docs/edge.md "Scaling out with Zenoh"), as pure
functions, and a node's presence parsed from its liveliness key::

    P/<mid16>/node/<name>/<id>/<incarnation>    liveliness token of each node
    P/<mid16>/admin/<name>                      each node's admin queryable (the query plane)

``P`` is the prefix (default ``manyfold``, one or more chunks) and ``mid16`` the first 16 hex
digits of the manifest id."""

from __future__ import annotations

import re
from dataclasses import dataclass

from manyfold.zenoh.options import DEFAULT_PREFIX

_MID16 = re.compile(r"^[0-9a-f]{16}$")


class PresenceKeyError(ValueError):
    """A liveliness key that is not a Manyfold node's presence."""


def mid16(manifest_id: str) -> str:
    """The key chunk of a manifest id: its first 16 hex digits."""
    return manifest_id[:16].lower()


def presence_selector(prefix: str = DEFAULT_PREFIX) -> str:
    """Every node's presence token, of every manifest, under ``prefix``."""
    return f"{prefix}/*/node/**"


def admin_key(prefix: str, manifest16: str, node: str) -> str:
    """The admin queryable of ``node``."""
    return f"{prefix}/{manifest16}/admin/{node}"


@dataclass(frozen=True, order=True)
class NodePresence:
    """A node as its liveliness token names it."""

    manifest16: str
    node: str
    id: int
    incarnation: int
    prefix: str = DEFAULT_PREFIX

    @property
    def key(self) -> str:
        return f"{self.prefix}/{self.manifest16}/node/{self.node}/{self.id}/{self.incarnation}"

    @property
    def admin_key(self) -> str:
        return admin_key(self.prefix, self.manifest16, self.node)

    @staticmethod
    def parse(key: str) -> "NodePresence":
        """``P/<mid16>/node/<name>/<id>/<incarnation>``; the prefix is every chunk before."""
        chunks = key.split("/")
        if len(chunks) < 6 or chunks[-4] != "node" or not all(chunks[:-5]):
            raise PresenceKeyError(f"liveliness key {key!r} is not PREFIX/<manifest16>/node/<name>/<id>/<incarnation>")
        prefix, manifest16, node, node_id, incarnation = "/".join(chunks[:-5]), chunks[-5], chunks[-3], chunks[-2], chunks[-1]
        if not _MID16.match(manifest16):
            raise PresenceKeyError(f"liveliness key {key!r}: {manifest16!r} is not 16 hex digits of a manifest id")
        if not node or not node_id.isdigit() or not incarnation.isdigit():
            raise PresenceKeyError(f"liveliness key {key!r}: the node name, id and incarnation must be a name and two integers")
        return NodePresence(manifest16, node, int(node_id), int(incarnation), prefix)


__all__ = ["NodePresence", "PresenceKeyError", "admin_key", "mid16", "presence_selector"]
