"""The nodes file ``manyfold plan --nodes nodes.toml`` reads: the nodes you have, and what you
want of them. Everything in it is optional::

    base_port = 47300                   # ports are picked from here up (default 47300)
    host = "127.0.0.1"                  # the default host of nodes

    [[node]]
    name = "edge-a"
    id = 2                              # default: the next free id
    host = "10.0.0.5"                   # default: the file's host
    listen = "10.0.0.5:47301"           # default: host and a free port
    admin = "127.0.0.1:47401"           # default: host and a free port
    partitions = ["ingest"]             # explicit assignments
    tags = { site = "north" }           # placement tags: a partition whose placement they all match lands here
    runtime = "python"                  # default: native unless a partition needs Python
    app = "module:func"                 # run by manyfold node --app once ready (makes it python)

    [devices]                           # a device partition's port (default sim:BOARD)
    greenhouse-sensors = "/dev/ttyUSB0"

    [[link]]
    name = "ab"
    key_file = "keys/ab.key"            # relative to this file

    [zenoh]                             # how every node joins Zenoh (links on zenoh; default:
    mode = "client"                     #   a client of tcp/127.0.0.1:7447)
    connect = ["tcp/10.0.0.1:7447"]
    prefix = "manyfold"
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from manyfold.cluster import toml_text
from manyfold.cluster.address import Address
from manyfold.cluster.errors import ClusterError
from manyfold.cluster.plan import NODE_ID_MAX, Runtime, named_table
from manyfold.cluster.toml_text import Table
from manyfold.zenoh.options import ZenohOptions

DEFAULT_HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 47300


@dataclass(frozen=True)
class NodeRequest:
    """One ``[[node]]`` of a nodes file."""

    name: str
    id: int | None = None
    host: str = DEFAULT_HOST
    listen: Address | None = None
    admin: Address | None = None
    partitions: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    runtime: Runtime | None = None
    app: str | None = None

    def matches(self, placement: dict[str, str]) -> bool:
        """True when the node's tags hold every placement constraint (and there is one)."""
        tags = dict(self.tags)
        return bool(placement) and all(tags.get(k) == str(v) for k, v in placement.items())


@dataclass(frozen=True)
class LinkRequest:
    """One ``[[link]]`` of a nodes file: what the manifest cannot say about a link."""

    name: str
    key_file: Path | None = None
    """Absolute, or relative to the working directory (resolved against the nodes file)."""


@dataclass(frozen=True)
class NodesFile:
    """A whole nodes file (``NodesFile()`` is the empty one: every default)."""

    nodes: tuple[NodeRequest, ...] = ()
    links: tuple[LinkRequest, ...] = ()
    devices: tuple[tuple[str, str], ...] = ()
    """(device partition, port) pairs."""
    base_port: int = DEFAULT_BASE_PORT
    host: str = DEFAULT_HOST
    zenoh: ZenohOptions | None = None
    """The ``[zenoh]`` table: copied into the plan."""

    def link(self, name: str) -> LinkRequest | None:
        return next((link for link in self.links if link.name == name), None)

    def device_port(self, partition: str) -> str | None:
        return dict(self.devices).get(partition)

    @staticmethod
    def read(path: Path) -> "NodesFile":
        path = Path(path)
        return NodesFile.from_data(toml_text.read(path, "nodes file"), str(path), path.parent)

    @staticmethod
    def from_data(data: dict, where: str, base_dir: Path) -> "NodesFile":
        top = Table(data, where)
        known = {"base_port", "host", "node", "link", "devices", "zenoh"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ClusterError(f"{where}: unknown key {unknown[0]!r} (a nodes file has {', '.join(sorted(known))})")
        host = top.text("host", DEFAULT_HOST)
        base_port = top.integer("base_port", DEFAULT_BASE_PORT)
        if not 1024 <= base_port <= 65000:
            raise ClusterError(f"{where}: base_port must be between 1024 and 65000, got {base_port}")
        nodes = tuple(_node(item, f"{where}: node {i + 1}", where, host) for i, item in enumerate(top.tables("node")))
        links = tuple(_link(item, f"{where}: link {i + 1}", where, base_dir) for i, item in enumerate(top.tables("link")))
        devices = tuple(sorted(top.mapping("devices").items()))
        names = [n.name for n in nodes]
        for name in names:
            if names.count(name) > 1:
                raise ClusterError(f"{where}: two nodes are named {name!r}")
        ids: dict[int, str] = {}
        for n in nodes:
            if n.id is not None and n.id in ids:
                raise ClusterError(f"{where}: nodes {ids[n.id]} and {n.name} have the same id {n.id}")
            if n.id is not None:
                ids[n.id] = n.name
        link_names = [link.name for link in links]
        for name in link_names:
            if link_names.count(name) > 1:
                raise ClusterError(f"{where}: two links are named {name!r}")
        zenoh = ZenohOptions.from_table(Table(data["zenoh"], f"{where}: [zenoh]"), where) if "zenoh" in data else None
        return NodesFile(nodes, links, devices, base_port, host, zenoh)


_NODE_KEYS = {"name", "id", "host", "listen", "admin", "partitions", "tags", "runtime", "app"}


def _node(item: object, where: str, file: str, default_host: str) -> NodeRequest:
    f = named_table(item, where, file, "node")
    name = f.text("name")
    unknown = sorted(set(f.data) - _NODE_KEYS)
    if unknown:
        raise ClusterError(f"{f.where}: unknown key {unknown[0]!r} (a node has {', '.join(sorted(_NODE_KEYS))})")
    node_id = f.integer("id", None)
    if node_id is not None and not 1 <= node_id <= NODE_ID_MAX:
        raise ClusterError(f"{f.where}: id {node_id} is not between 1 and {NODE_ID_MAX}")
    host = f.text("host", default_host)
    listen = f.text("listen", None)
    admin = f.text("admin", None)
    runtime = f.choice("runtime", Runtime, None)
    return NodeRequest(
        name, node_id, host,
        Address.parse(listen, f"{f.where}: listen") if listen is not None else None,
        Address.parse(admin, f"{f.where}: admin") if admin is not None else None,
        f.texts("partitions", ()), tuple(sorted(f.mapping("tags").items())), runtime, f.text("app", None),  # type: ignore[arg-type]
    )  # fmt: skip


def _link(item: object, where: str, file: str, base_dir: Path) -> LinkRequest:
    f = named_table(item, where, file, "link")
    name = f.text("name")
    key_file = f.text("key_file", None)
    return LinkRequest(name, base_dir / key_file if key_file is not None else None)


__all__ = ["DEFAULT_BASE_PORT", "DEFAULT_HOST", "LinkRequest", "NodeRequest", "NodesFile"]
