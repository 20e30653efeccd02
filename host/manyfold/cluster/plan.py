"""The plan file: which node hosts which partitions, where each listens, and who dials each link.

``manyfold plan`` writes it (:mod:`manyfold.cluster.place` decides), people review and edit it,
``manyfold up`` starts what it says. Its format, ``manyfold.plan.v1``, is TOML::

    format = "manyfold.plan.v1"
    manifest = "greenhouse.json"      # relative to the plan file
    manifest_id = "<sha256 hex>"
    [[node]]
    name = "a"
    id = 1
    partitions = ["ingest"]
    listen = "127.0.0.1:47301"
    admin = "127.0.0.1:47401"
    runtime = "native"                # or "python"
    devices = { sensor = "sim:lm3s6965evb" }
    app = "module:func"               # optional: manyfold node --app
    [[link]]
    name = "ab"
    nodes = ["a", "b"]                # who holds each side of the manifest link's `between`
    dialer = "a"
    transport = "udp"
    key_file = "keys/ab.key"          # optional, relative to the plan file
    [[link]]
    name = "bh"
    nodes = ["b", "h"]
    transport = "zenoh"               # no dialer: both ends meet at the Zenoh router
    [zenoh]                           # required when a link runs on zenoh
    mode = "client"                   # or "peer"
    connect = ["tcp/127.0.0.1:7447"]  # the Zenoh router(s)
    prefix = "manyfold"               # every key starts with it

With a ``[zenoh]`` table, every node joins Zenoh (presence, the query plane), and the names that
become key chunks (nodes, links, the partitions they host) must not contain ``/ * $ ? #``.

The same plan is written as the same bytes. Reading checks every field and names what is wrong.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from manyfold.cluster import toml_text
from manyfold.cluster.toml_text import Table
from manyfold.cluster.address import Address, Transport
from manyfold.cluster.errors import ClusterError
from manyfold.zenoh.options import ZenohOptions, check_key_safe

FORMAT = "manyfold.plan.v1"
NODE_ID_MAX = 65535


class Runtime(str, enum.Enum):
    """How a node runs: the Rust ``manyfold-node`` binary, or ``manyfold node`` in Python."""

    NATIVE = "native"
    PYTHON = "python"


@dataclass(frozen=True)
class DeviceAssignment:
    """A device partition owned by a node, and the port its board answers on (a pyserial URL, or
    ``sim:BOARD`` for the host simulation)."""

    partition: str
    port: str


@dataclass(frozen=True)
class PlannedNode:
    """One runtime node: one OS process."""

    name: str
    id: int
    partitions: tuple[str, ...]
    listen: Address
    admin: Address
    runtime: Runtime
    devices: tuple[DeviceAssignment, ...] = ()
    app: str | None = None
    """``MODULE:FUNC`` run by ``manyfold node --app`` once the node is ready (python nodes)."""
    notes: tuple[str, ...] = field(default=(), compare=False)
    """Why the planner decided so: written as comments, not read back."""

    @property
    def hosted(self) -> tuple[str, ...]:
        """Every partition this node is responsible for: its own and its devices'."""
        return self.partitions + tuple(d.partition for d in self.devices)


@dataclass(frozen=True)
class PlannedLink:
    """A mesh link between two nodes, for the manifest link of the same name."""

    name: str
    nodes: tuple[str, str]
    dialer: str | None
    """The node that dials (udp, tcp); None on zenoh, where both ends meet at the router."""
    transport: Transport
    key_file: str | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def listener(self) -> str | None:
        """The node the dialer dials; None on zenoh."""
        if self.dialer is None:
            return None
        return self.nodes[1] if self.dialer == self.nodes[0] else self.nodes[0]


@dataclass(frozen=True)
class Plan:
    """A whole plan. ``manifest`` and key files are paths relative to the plan file."""

    manifest: str
    manifest_id: str
    nodes: tuple[PlannedNode, ...]
    links: tuple[PlannedLink, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)
    zenoh: ZenohOptions | None = None
    """How every node joins Zenoh (the ``[zenoh]`` table); required when a link runs on zenoh."""

    def node(self, name: str) -> PlannedNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ClusterError(f"the plan has no node {name!r}")

    def node_of(self, partition: str) -> PlannedNode | None:
        """The node hosting ``partition`` (itself or as a device)."""
        return next((n for n in self.nodes if partition in n.hosted), None)

    def links_of(self, node: str) -> tuple[PlannedLink, ...]:
        return tuple(link for link in self.links if node in link.nodes)

    # ---------------------------------------------------------------- text

    def to_toml(self) -> str:
        """The plan as TOML, with its notes as comments."""
        out = ["# written by manyfold plan; review and edit freely", *(f"# {n}" for n in self.notes)]
        out += [toml_text.line("format", FORMAT), toml_text.line("manifest", self.manifest, "relative to this file"),
                toml_text.line("manifest_id", self.manifest_id)]  # fmt: skip
        for n in self.nodes:
            out += ["", *(f"# {note}" for note in n.notes), "[[node]]", toml_text.line("name", n.name), toml_text.line("id", n.id),
                    toml_text.line("partitions", list(n.partitions)), toml_text.line("listen", str(n.listen)),
                    toml_text.line("admin", str(n.admin)), toml_text.line("runtime", n.runtime.value)]  # fmt: skip
            if n.devices:
                out.append(toml_text.line("devices", {d.partition: d.port for d in n.devices}))
            if n.app is not None:
                out.append(toml_text.line("app", n.app))
        for link in self.links:
            out += ["", *(f"# {note}" for note in link.notes), "[[link]]", toml_text.line("name", link.name),
                    toml_text.line("nodes", list(link.nodes))]  # fmt: skip
            if link.dialer is not None:
                out.append(toml_text.line("dialer", link.dialer))
            out.append(toml_text.line("transport", link.transport.value))
            if link.key_file is not None:
                out.append(toml_text.line("key_file", link.key_file, "relative to this file"))
        if self.zenoh is not None:
            out += ["", *self.zenoh.toml_lines()]
        return "\n".join(out) + "\n"

    def write(self, path: Path) -> None:
        try:
            Path(path).write_text(self.to_toml(), encoding="utf-8")
        except OSError as error:
            raise ClusterError(f"cannot write the plan {path}: {error.strerror}") from None

    @staticmethod
    def read(path: Path) -> "Plan":
        path = Path(path)
        return Plan.from_data(toml_text.read(path, "plan"), str(path))

    @staticmethod
    def from_data(data: dict, where: str) -> "Plan":
        """A plan from parsed TOML, every field checked; ``where`` names the file in errors."""
        fmt = data.get("format")
        if fmt != FORMAT:
            raise ClusterError(f"{where}: format must be {FORMAT!r}, got {fmt!r}")
        top = Table(data, where)
        nodes = tuple(_node(item, f"{where}: node {i + 1}", where) for i, item in enumerate(top.tables("node")))
        links = tuple(_link(item, f"{where}: link {i + 1}", where) for i, item in enumerate(top.tables("link")))
        zenoh = ZenohOptions.from_table(Table(data["zenoh"], f"{where}: [zenoh]"), where) if "zenoh" in data else None
        plan = Plan(top.text("manifest"), top.text("manifest_id"), nodes, links, zenoh=zenoh)
        _check(plan, where)
        return plan


def named_table(item: object, where: str, file: str, kind: str) -> Table:
    """The fields of a [[node]] or [[link]] table, named by its name in later errors."""
    name = Table(item, where).text("name")
    return Table(item, f"{file}: {kind} {name}")


def _node(item: object, where: str, file: str) -> PlannedNode:
    f = named_table(item, where, file, "node")
    name = f.text("name")
    devices = tuple(DeviceAssignment(p, url) for p, url in f.mapping("devices").items())
    return PlannedNode(name, f.integer("id"), f.texts("partitions", ()), _address(f, "listen"), _address(f, "admin"),
                       f.choice("runtime", Runtime), devices, f.text("app", None))  # type: ignore[arg-type]  # fmt: skip


def _address(f: Table, key: str) -> Address:
    return Address.parse(f.text(key), f"{f.where}: {key}")


def _link(item: object, where: str, file: str) -> PlannedLink:
    f = named_table(item, where, file, "link")
    name = f.text("name")
    nodes = f.texts("nodes")
    if len(nodes) != 2 or nodes[0] == nodes[1]:
        raise ClusterError(f"{f.where}: nodes must name two different nodes, got {list(nodes)}")
    key_file = f.text("key_file", None)
    transport: Transport = f.choice("transport", Transport)  # type: ignore[assignment]
    if transport.dialed:
        dialer: str | None = f.text("dialer")
    elif "dialer" in f.data:
        raise ClusterError(f"{f.where}: a link on zenoh has no dialer (both ends meet at the Zenoh router); remove dialer")
    else:
        dialer = None
    return PlannedLink(name, (nodes[0], nodes[1]), dialer, transport, key_file)


def _check(plan: Plan, where: str) -> None:
    """Names and ids unique, every partition on one node, links between planned nodes."""
    seen_names: set[str] = set()
    seen_ids: dict[int, str] = {}
    owner: dict[str, str] = {}
    for n in plan.nodes:
        if n.name in seen_names:
            raise ClusterError(f"{where}: two nodes are named {n.name!r}")
        seen_names.add(n.name)
        if not 1 <= n.id <= NODE_ID_MAX:
            raise ClusterError(f"{where}: node {n.name}: id {n.id} is not between 1 and {NODE_ID_MAX}")
        if n.id in seen_ids:
            raise ClusterError(f"{where}: nodes {seen_ids[n.id]} and {n.name} have the same id {n.id}")
        seen_ids[n.id] = n.name
        if not n.hosted:
            raise ClusterError(f"{where}: node {n.name} hosts no partition")
        for p in n.hosted:
            if p in owner:
                raise ClusterError(f"{where}: partition {p} is on two nodes, {owner[p]} and {n.name}")
            owner[p] = n.name
    link_names: set[str] = set()
    for link in plan.links:
        if link.name in link_names:
            raise ClusterError(f"{where}: two links are named {link.name!r}")
        link_names.add(link.name)
        for node in link.nodes:
            if node not in seen_names:
                raise ClusterError(f"{where}: link {link.name} names node {node!r}, which the plan does not have")
        if link.transport.dialed and link.dialer not in link.nodes:
            raise ClusterError(f"{where}: link {link.name}: dialer {link.dialer!r} is not one of its nodes {list(link.nodes)}")
    _check_zenoh(plan, where)


def _check_zenoh(plan: Plan, where: str) -> None:
    """A plan with zenoh links has a [zenoh] table; with one, every name that becomes a key chunk
    is key-safe."""
    on_zenoh = [link for link in plan.links if link.transport is Transport.ZENOH]
    if on_zenoh and plan.zenoh is None:
        raise ClusterError(f"{where}: link {on_zenoh[0].name} runs on zenoh, so the plan needs a [zenoh] table (connect = [\"tcp/HOST:PORT\"], the Zenoh router)")
    if plan.zenoh is None:
        return
    try:
        for link in on_zenoh:
            check_key_safe(link.name, f"link {link.name}")
        for n in plan.nodes:
            check_key_safe(n.name, f"node {n.name}")
            for p in n.partitions:
                check_key_safe(p, f"partition {p} of node {n.name}")
    except ClusterError as error:
        raise ClusterError(f"{where}: {error}") from None


__all__ = ["FORMAT", "NODE_ID_MAX", "DeviceAssignment", "Plan", "PlannedLink", "PlannedNode", "Runtime"]
