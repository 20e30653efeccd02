"""Installing a contract into a graph: check the policies, run the installer, record the instance.

The installer gets an :class:`InstallContext` and declares through it what the instance is made
of (nodes, routes, stores); the graph keeps a :class:`PrimitiveInstance` per instance
(``graph.primitives``), which the manifest compiles into its ``primitives`` records. An
installer that fails half-way leaves what it already built in the graph (the runtime cannot
take nodes back); the instance is not recorded.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from manyfold.primitives.enums import Layer, Maturity
from manyfold.primitives.errors import PrimitiveError

if TYPE_CHECKING:
    from manyfold.graph import Graph, Node, Route
    from manyfold.primitives.contract import Primitive

_INSTANCE = re.compile(r"^[a-z][a-z0-9_]*$")
SYNC_MODES = ("full", "normal")


@dataclass(frozen=True)
class StoreDecl:
    """A store an instance uses: its name (the file ``<store dir>/<name>.sqlite``), the kind
    of store (``EventLog`` ...), and its sync policy (``full`` or ``normal``)."""

    name: str
    kind: str
    sync: str = "full"

    def to_data(self) -> dict:
        return {"name": self.name, "kind": self.kind, "sync": self.sync}


@dataclass(frozen=True)
class PrimitiveInstance:
    """An installed primitive as the graph and its manifest know it: which contract at which
    version, its policies, and the nodes, routes and stores it is made of."""

    instance: str
    contract: str
    version: int
    layer: Layer
    maturity: Maturity
    policies: Mapping[str, Any]
    nodes: tuple[str, ...] = ()
    routes: tuple["Route", ...] = ()
    stores: tuple[StoreDecl, ...] = ()


@dataclass(frozen=True)
class Installed:
    """What an installer returns: the instance's ports as routes. ``installed.port("output")``
    or ``installed.output``; ``installed.instance`` is the recorded :class:`PrimitiveInstance`
    (set by ``Primitive.install``), ``installed.nodes`` the graph nodes it built."""

    ports: Mapping[str, "Route"]
    instance: PrimitiveInstance | None = None
    nodes: tuple["Node", ...] = ()

    def port(self, name: str) -> "Route":
        try:
            return self.ports[name]
        except KeyError:
            who = self.instance.instance if self.instance else "this instance"
            raise PrimitiveError(f"{who} has no port {name!r}; its ports are {', '.join(sorted(self.ports)) or 'none'}") from None

    def __getattr__(self, name: str) -> "Route":
        if name.startswith("_") or name in ("ports", "instance", "nodes"):
            raise AttributeError(name)
        ports = self.__dict__.get("ports") or {}
        if name in ports:
            return ports[name]
        raise AttributeError(f"installed primitive has no port or attribute {name!r}")

    @property
    def node(self) -> "Node":
        """The instance's (first) node."""
        if not self.nodes:
            raise PrimitiveError("this instance has no nodes")
        return self.nodes[0]


@dataclass
class InstallContext:
    """What an installer works with: the graph, the instance name, its checked policies, the
    routes bound to its ports, and calls to declare the parts it builds."""

    graph: "Graph"
    instance: str
    policies: dict[str, Any]
    contract: "Primitive"
    bindings: dict[str, "Route"] = field(default_factory=dict)
    nodes: list["Node"] = field(default_factory=list)
    routes: list["Route"] = field(default_factory=list)
    stores: list[StoreDecl] = field(default_factory=list)

    def input(self, port: str) -> "Route":
        """The route bound to ``port``; PrimitiveError when none was given."""
        route = self.bindings.get(port)
        if route is None:
            raise PrimitiveError(f"{self.contract.name} {self.instance} needs a route for its {port} port: pass {port}=<route>")
        return route

    def bound(self, port: str) -> "Route | None":
        """The route bound to ``port``, or None (the installer picks one)."""
        return self.bindings.get(port)

    def name(self, part: str = "") -> str:
        """A part's graph name: the instance name, or ``<instance>_<part>``."""
        return f"{self.instance}_{part}" if part else self.instance

    def add_node(self, node: "Node", *, outputs: bool = True) -> "Node":
        """Declare ``node`` (and, by default, its output routes) a part of the instance."""
        self.nodes.append(node)
        if outputs:
            for route in node.outputs:
                self.add_route(route)
        return node

    def add_route(self, route: "Route") -> "Route":
        """Declare ``route`` a part of the instance."""
        if route not in self.routes:
            self.routes.append(route)
        return route

    def add_store(self, name: str, kind: str, sync: str = "full") -> StoreDecl:
        """Declare a store the instance keeps state in."""
        if sync not in SYNC_MODES:
            raise PrimitiveError(f"{self.contract.name} {self.instance}: store {name} sync must be full or normal, got {sync!r}")
        if any(s.name == name for s in self.stores):
            raise PrimitiveError(f"{self.contract.name} {self.instance}: store {name} declared twice")
        store = StoreDecl(name, kind, sync)
        self.stores.append(store)
        return store


def check_policies(contract: "Primitive", where: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The policies to install with: ``given`` checked against the contract, defaults filled
    in (a policy with no default and not given is left out)."""
    unknown = sorted(set(given) - {p.name for p in contract.policies})
    if unknown:
        known = ", ".join(p.name for p in contract.policies) or "none"
        raise PrimitiveError(f"{where}: unknown policy {', '.join(unknown)} (its policies: {known})")
    out: dict[str, Any] = {}
    for policy in contract.policies:
        if policy.name in given and given[policy.name] is not None:
            out[policy.name] = policy.check(given[policy.name], where)
        elif policy.required:
            raise PrimitiveError(f"{where}: policy {policy.name} is required ({policy.doc or policy.type_name})")
        elif policy.default is not None:
            out[policy.name] = policy.check(policy.default, where)
    return out


def _plain(value: Any) -> Any:
    """A policy value as manifest data: enums by value, tuples as lists."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def recorded_policies(contract: "Primitive", policies: Mapping[str, Any]) -> dict[str, Any]:
    """The policies as the manifest records them (sorted by name, plain data)."""
    out = {}
    for key in sorted(policies):
        policy = contract.policy(key)
        value = policies[key]
        out[key] = _plain(policy.record(value) if policy is not None and policy.record else value)
    return out


def install(contract: "Primitive", graph: "Graph", name: str, **kwargs: Any) -> Installed:
    """``contract.install(graph, name, **kwargs)`` (see :meth:`Primitive.install`)."""
    from manyfold.graph import Route
    from manyfold.graph.graph import _route

    where = f"{contract.name} {name}"
    if contract.installer is None:
        raise PrimitiveError(f"{contract.name} is named only in this version: nothing to install")
    if not isinstance(name, str) or not _INSTANCE.match(name):
        raise PrimitiveError(f"{contract.name}: an instance name is lower snake case (image_jobs), got {name!r}")
    instances = primitives_of(graph)
    if name in instances:
        raise PrimitiveError(f"{where}: the graph already has a primitive instance called {name} ({instances[name].contract})")
    ports = {p.name for p in (*contract.inputs, *contract.outputs)}
    bindings: dict[str, Route] = {}
    policies_given: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in ports:
            if value is not None:
                bindings[key] = _route(value)
        else:
            policies_given[key] = value
    policies = check_policies(contract, where, policies_given)
    ctx = InstallContext(graph, name, dict(policies), contract, bindings)
    result = contract.installer(ctx, **policies)
    if not isinstance(result, Installed):
        raise PrimitiveError(f"{where}: the installer returned {type(result).__name__}, not Installed")
    stray = sorted(set(result.ports) - ports)
    if stray:
        raise PrimitiveError(f"{where}: the installer returned port {', '.join(stray)}, which the contract does not declare")
    record = PrimitiveInstance(
        instance=name, contract=contract.name, version=contract.version, layer=contract.layer,
        maturity=contract.maturity, policies=recorded_policies(contract, policies),
        nodes=tuple(dict.fromkeys(n.name for n in ctx.nodes)), routes=tuple(ctx.routes), stores=tuple(ctx.stores),
    )
    instances[name] = record
    return Installed(dict(result.ports), record, tuple(ctx.nodes))


def primitives_of(graph: "Graph") -> dict[str, PrimitiveInstance]:
    """``graph.primitives`` (created on first use for graphs built before it existed)."""
    instances = getattr(graph, "primitives", None)
    if instances is None:
        instances = {}
        graph.primitives = instances
    return instances


__all__ = ["InstallContext", "Installed", "PrimitiveInstance", "StoreDecl", "check_policies", "install", "primitives_of"]
