"""The manifest: typed records, and their two deterministic serializations.

A :class:`Manifest` is plain data about a graph (no callables, no runtime state). It serializes
to canonical JSON (sorted keys, records in a stable order, one record per line, so a diff reads
well) and to deterministic CBOR (RFC 8949 core deterministic encoding). The manifest id is the
SHA-256 of the CBOR. ``docs/manifest.md`` documents every field.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import cbor2

from manyfold._native import GATED_MAX_DEFAULT, RETAIN_DEFAULT, canonical_cbor
from manyfold.graph import Route
from manyfold.graph.errors import ManifestError, RouteError

FORMAT = "manyfold.graph.v1"


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while building large acyclic structures.

    Compiling a 100k-route graph allocates millions of small objects, none of them in cycles;
    the collector's full passes over them made compile time grow faster than the graph. The
    collector resumes (and catches up) afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
COMPATIBLE = ">=0.2,<1.0"
"""Package versions that can load a manyfold.graph.v1 manifest."""


def _need(data: dict, key: str, kind: type | tuple, where: str):
    if key not in data:
        raise ManifestError(f"{where} has no field {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ManifestError(f"{where}: field {key!r} must be {names}, got {type(value).__name__}")
    return value


def _opt(data: dict, key: str, kind: type | tuple, where: str, default=None):
    if data.get(key) is None:
        return default
    return _need(data, key, kind, where)


def _route(text: str, where: str) -> Route:
    try:
        return Route.parse(text)
    except RouteError as error:
        raise ManifestError(f"{where}: {error}") from None


@dataclass(frozen=True)
class SchemaRecord:
    """A schema: its hash (the key routes refer to), name, version and type descriptor."""

    hash: str
    name: str
    version: int
    type: Any
    """``"float"``, ``["list", T]``, ``["optional", T]`` or ``["record", name, [[field, T], ...]]``."""
    python: str | None = None
    """Where the Python class lives (``module.Qualname``), a hint for loaders; not hashed."""

    def to_data(self) -> dict:
        return {"hash": self.hash, "name": self.name, "version": self.version, "type": self.type, "python": self.python}

    @staticmethod
    def from_data(d: dict, where: str) -> "SchemaRecord":
        return SchemaRecord(
            _need(d, "hash", str, where), _need(d, "name", str, where), _need(d, "version", int, where),
            _need(d, "type", (str, list), where), _opt(d, "python", str, where),
        )


@dataclass(frozen=True)
class PartitionRecord:
    name: str
    profile: str
    placement: dict

    def to_data(self) -> dict:
        return {"name": self.name, "profile": self.profile, "placement": dict(sorted(self.placement.items()))}

    @staticmethod
    def from_data(d: dict, where: str) -> "PartitionRecord":
        return PartitionRecord(_need(d, "name", str, where), _need(d, "profile", str, where), dict(_opt(d, "placement", dict, where, {})))


@dataclass(frozen=True)
class LinkRecord:
    """A link between two partitions and what it keeps."""

    name: str
    between: tuple[str, str]
    transport: str
    ordered: bool
    reliable: bool
    authenticated: bool
    durable: bool

    def to_data(self) -> dict:
        return {
            "name": self.name, "between": list(self.between), "transport": self.transport, "ordered": self.ordered,
            "reliable": self.reliable, "authenticated": self.authenticated, "durable": self.durable,
        }

    @staticmethod
    def from_data(d: dict, where: str) -> "LinkRecord":
        between = _need(d, "between", list, where)
        if len(between) != 2 or not all(isinstance(p, str) for p in between):
            raise ManifestError(f"{where}: between must name two partitions")
        return LinkRecord(
            _need(d, "name", str, where), (between[0], between[1]), _need(d, "transport", str, where),
            *(_need(d, k, bool, where) for k in ("ordered", "reliable", "authenticated", "durable")),
        )


@dataclass(frozen=True)
class RouteRecord:
    """A route: its schema (by hash), partition, retention, audit, writers and fence."""

    route: Route
    schema: str
    partition: str
    history: int
    retain: int
    audit: bool
    clock_domain: int
    writers: tuple[str, ...]
    fence: str | None
    source: dict | None = None
    """A synthetic source on a board: period_us, waveform, center, amplitude, cycle, noise,
    seed, phase_us (optional field, added within v1)."""

    @property
    def owner(self) -> str:
        return self.route.owner

    def to_data(self) -> dict:
        return {
            "route": str(self.route), "schema": self.schema, "partition": self.partition, "history": self.history,
            "retain": self.retain, "audit": self.audit, "clock_domain": self.clock_domain,
            "writers": list(self.writers), "fence": self.fence,
        } | ({"source": dict(sorted(self.source.items()))} if self.source else {})

    @staticmethod
    def from_data(d: dict, where: str) -> "RouteRecord":
        route = _route(_need(d, "route", str, where), where)
        where = f"route {route}"
        return RouteRecord(
            route, _need(d, "schema", str, where), _need(d, "partition", str, where), _need(d, "history", int, where),
            _need(d, "retain", int, where), _need(d, "audit", bool, where), _opt(d, "clock_domain", int, where, 0),
            tuple(_opt(d, "writers", list, where, [])), _opt(d, "fence", str, where), _opt(d, "source", dict, where),
        )


@dataclass(frozen=True)
class EdgePolicy:
    kind: str
    """``inline``, ``mailbox`` or ``epoch_boundary``."""
    capacity: int | None = None
    overflow: str | None = None

    def to_data(self) -> dict:
        return {"kind": self.kind, "capacity": self.capacity, "overflow": self.overflow}


@dataclass(frozen=True)
class EdgeRecord:
    """An edge from a route to a node's input port, its delivery policy, and the link it
    crosses when source and node sit in different partitions."""

    name: str
    source: Route
    target: str
    port: int
    policy: EdgePolicy
    link: str | None

    def to_data(self) -> dict:
        return {
            "name": self.name, "source": str(self.source), "target": self.target, "port": self.port,
            "policy": self.policy.to_data(), "link": self.link,
        }

    @staticmethod
    def from_data(d: dict, where: str) -> "EdgeRecord":
        name = _need(d, "name", str, where)
        where = f"edge {name}"
        p = _need(d, "policy", dict, where)
        kind = _need(p, "kind", str, f"{where}: policy")
        if kind not in ("inline", "mailbox", "epoch_boundary"):
            raise ManifestError(f"{where}: policy kind must be inline, mailbox or epoch_boundary, got {kind!r}")
        policy = EdgePolicy(kind, _opt(p, "capacity", int, where), _opt(p, "overflow", str, where))
        return EdgeRecord(name, _route(_need(d, "source", str, where), where), _need(d, "target", str, where), _need(d, "port", int, where), policy, _opt(d, "link", str, where))


@dataclass(frozen=True)
class NodeRecord:
    """A node: operator kind, partition, input edges (by port), output routes, parameters.
    Functions appear as ``{"ref": name}`` and are supplied by name when loading."""

    name: str
    kind: str
    partition: str
    inputs: tuple[str, ...]
    outputs: tuple[Route, ...]
    params: dict

    def to_data(self) -> dict:
        return {
            "name": self.name, "kind": self.kind, "partition": self.partition, "inputs": list(self.inputs),
            "outputs": [str(r) for r in self.outputs], "params": dict(sorted(self.params.items())),
        }

    @staticmethod
    def from_data(d: dict, where: str) -> "NodeRecord":
        name = _need(d, "name", str, where)
        where = f"node {name}"
        outputs = tuple(_route(r, where) for r in _need(d, "outputs", list, where))
        return NodeRecord(name, _need(d, "kind", str, where), _need(d, "partition", str, where), tuple(_need(d, "inputs", list, where)), outputs, dict(_opt(d, "params", dict, where, {})))

    def function_refs(self) -> list[str]:
        return sorted(v["ref"] for v in self.params.values() if isinstance(v, dict) and "ref" in v)


@dataclass(frozen=True)
class QueryExposure:
    """Which query kinds are answered over the query plane, and who may ask."""

    service: str
    kinds: tuple[str, ...]
    principals: tuple[str, ...]

    def to_data(self) -> dict:
        return {"service": self.service, "kinds": list(self.kinds), "principals": list(self.principals)}


@dataclass(frozen=True)
class Settings:
    """Graph-wide settings: clock, lineage retention, audit, payload cache, scheduler and queue bounds."""

    clock: str = "virtual"
    retain_default: int = RETAIN_DEFAULT
    audit_max: int = 8192
    payload_cache_bytes: int = 64 * 1024 * 1024
    steps_max: int = 10_000_000
    epoch_hold_max: int = 4096
    gated_max: int = GATED_MAX_DEFAULT
    queue_capacity_max: int = 1_000_000
    watermark: str = "max_event_time_minus_lateness"

    def to_data(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def from_data(d: dict, where: str) -> "Settings":
        known = {f.name: f.type for f in fields(Settings)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ManifestError(f"{where}: unknown settings {', '.join(unknown)}")
        return Settings(**d)


@dataclass(frozen=True)
class StoreRecord:
    """A store a primitive instance keeps state in: name, kind of store, sync policy."""

    name: str
    kind: str
    sync: str

    def to_data(self) -> dict:
        return {"name": self.name, "kind": self.kind, "sync": self.sync}

    @staticmethod
    def from_data(d: dict, where: str) -> "StoreRecord":
        sync = _need(d, "sync", str, where)
        if sync not in ("full", "normal"):
            raise ManifestError(f"{where}: sync must be full or normal, got {sync!r}")
        return StoreRecord(_need(d, "name", str, where), _need(d, "kind", str, where), sync)


@dataclass(frozen=True)
class PrimitiveRecord:
    """An installed primitive: its instance name, contract and contract version, layer and
    maturity (as installed), policies, and the nodes, routes and stores it is made of."""

    instance: str
    contract: str
    version: int
    layer: str
    maturity: str
    policies: dict
    nodes: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    stores: tuple[StoreRecord, ...] = ()

    def to_data(self) -> dict:
        return {
            "instance": self.instance, "contract": self.contract, "version": self.version, "layer": self.layer,
            "maturity": self.maturity, "policies": dict(sorted(self.policies.items())),
            "parts": {"nodes": list(self.nodes), "routes": [str(r) for r in self.routes], "stores": [s.to_data() for s in self.stores]},
        }

    @staticmethod
    def from_data(d: dict, where: str) -> "PrimitiveRecord":
        instance = _need(d, "instance", str, where)
        where = f"primitive {instance}"
        parts = _opt(d, "parts", dict, where, {})
        nodes = _opt(parts, "nodes", list, f"{where}: parts", [])
        if not all(isinstance(n, str) for n in nodes):
            raise ManifestError(f"{where}: parts.nodes must be node names")
        texts = _opt(parts, "routes", list, f"{where}: parts", [])
        if not all(isinstance(r, str) for r in texts):
            raise ManifestError(f"{where}: parts.routes must be route names")
        routes = tuple(_route(r, where) for r in texts)
        stores = []
        for i, s in enumerate(_opt(parts, "stores", list, f"{where}: parts", [])):
            if not isinstance(s, dict):
                raise ManifestError(f"{where}: parts.stores[{i}] must be a map")
            stores.append(StoreRecord.from_data(s, f"{where}: parts.stores[{i}]"))
        return PrimitiveRecord(
            instance, _need(d, "contract", str, where), _need(d, "version", int, where), _need(d, "layer", str, where),
            _need(d, "maturity", str, where), dict(_opt(d, "policies", dict, where, {})), tuple(nodes), routes, tuple(stores),
        )


@dataclass(frozen=True)
class Manifest:
    """A compiled graph. Compare, diff, validate, serialize and load it."""

    schemas: tuple[SchemaRecord, ...]
    routes: tuple[RouteRecord, ...]
    nodes: tuple[NodeRecord, ...]
    edges: tuple[EdgeRecord, ...]
    partitions: tuple[PartitionRecord, ...] = ()
    links: tuple[LinkRecord, ...] = ()
    query: QueryExposure | None = None
    settings: Settings = field(default_factory=Settings)
    format: str = FORMAT
    compatible: str = COMPATIBLE
    primitives: tuple[PrimitiveRecord, ...] = ()
    """Installed primitive instances, by instance name (the key is left out when there are none,
    so graphs without primitives keep their manifest ids)."""

    # ---------------------------------------------------------------- lookups

    def schema(self, hash: str) -> SchemaRecord:
        return next(s for s in self.schemas if s.hash == hash)

    def route(self, route: Route | str) -> RouteRecord:
        text = str(route)
        return next(r for r in self.routes if str(r.route) == text)

    def node(self, name: str) -> NodeRecord:
        return next(n for n in self.nodes if n.name == name)

    def edge(self, name: str) -> EdgeRecord:
        return next(e for e in self.edges if e.name == name)

    def primitive(self, instance: str) -> PrimitiveRecord:
        return next(p for p in self.primitives if p.instance == instance)

    def producer_of(self, route: Route) -> NodeRecord | None:
        return next((n for n in self.nodes if route in n.outputs), None)

    # ---------------------------------------------------------------- serialization

    def to_data(self) -> dict:
        """The manifest as plain data (computed once: a manifest is immutable)."""
        cached = self.__dict__.get("_data")
        if cached is None:
            with gc_paused():
                cached = self._build_data()
            object.__setattr__(self, "_data", cached)
        return cached

    def _build_data(self) -> dict:
        data = {
            "format": self.format,
            "compatible": self.compatible,
            "settings": self.settings.to_data(),
            "schemas": [s.to_data() for s in self.schemas],
            "partitions": [p.to_data() for p in self.partitions],
            "links": [link.to_data() for link in self.links],
            "routes": [r.to_data() for r in self.routes],
            "nodes": [n.to_data() for n in self.nodes],
            "edges": [e.to_data() for e in self.edges],
            "query": self.query.to_data() if self.query else None,
        }
        if self.primitives:
            data["primitives"] = [p.to_data() for p in self.primitives]
        return data

    def to_cbor(self) -> bytes:
        """Deterministic CBOR (RFC 8949 core deterministic encoding)."""
        cached = self.__dict__.get("_cbor")
        if cached is None:
            cached = canonical_cbor(self.to_data())
            object.__setattr__(self, "_cbor", cached)
        return cached

    @property
    def id(self) -> str:
        """SHA-256 of the canonical CBOR, hex."""
        return hashlib.sha256(self.to_cbor()).hexdigest()

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, one record per line, a trailing newline."""
        data = self.to_data()
        lines = ["{"]
        keys = sorted(data)
        for i, key in enumerate(keys):
            comma = "," if i < len(keys) - 1 else ""
            value = data[key]
            if isinstance(value, list) and value:
                lines.append(f"  {json.dumps(key)}: [")
                for j, record in enumerate(value):
                    rc = "," if j < len(value) - 1 else ""
                    lines.append(f"    {_dumps(record)}{rc}")
                lines.append(f"  ]{comma}")
            else:
                lines.append(f"  {json.dumps(key)}: {_dumps(value)}{comma}")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def write(self, path: str | Path, *, cbor: bool | None = None) -> None:
        """Write JSON, or CBOR when ``cbor`` or the path ends in ``.cbor``."""
        path = Path(path)
        if cbor or (cbor is None and path.suffix == ".cbor"):
            path.write_bytes(self.to_cbor())
        else:
            path.write_text(self.to_json())

    # ---------------------------------------------------------------- parsing

    @staticmethod
    def from_data(data: Any) -> "Manifest":
        """A manifest from decoded JSON or CBOR, checking every field."""
        if not isinstance(data, dict):
            raise ManifestError("a manifest must be a map at the top level")
        fmt = data.get("format")
        if fmt != FORMAT:
            raise ManifestError(f"unknown manifest format {fmt!r}; this version of manyfold reads {FORMAT!r}")

        def records(key: str, parse):
            items = _opt(data, key, list, "the manifest", [])
            out = []
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    raise ManifestError(f"{key}[{i}] must be a map")
                out.append(parse(item, f"{key}[{i}]"))
            return tuple(out)

        query = data.get("query")
        return Manifest(
            schemas=records("schemas", SchemaRecord.from_data),
            routes=records("routes", RouteRecord.from_data),
            nodes=records("nodes", NodeRecord.from_data),
            edges=records("edges", EdgeRecord.from_data),
            partitions=records("partitions", PartitionRecord.from_data),
            links=records("links", LinkRecord.from_data),
            query=QueryExposure(query["service"], tuple(query["kinds"]), tuple(query.get("principals", []))) if query else None,
            settings=Settings.from_data(_opt(data, "settings", dict, "the manifest", {}), "settings"),
            format=fmt,
            compatible=_opt(data, "compatible", str, "the manifest", COMPATIBLE),
            primitives=tuple(sorted(records("primitives", PrimitiveRecord.from_data), key=lambda p: p.instance)),
        )

    @staticmethod
    def from_json(text: str) -> "Manifest":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ManifestError(f"the manifest is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
        return Manifest.from_data(data)

    @staticmethod
    def from_cbor(data: bytes) -> "Manifest":
        try:
            decoded = cbor2.loads(data)
        except Exception as error:  # cbor2 raises several types for truncated or corrupt input
            raise ManifestError(f"the manifest is not valid CBOR: {error}") from None
        return Manifest.from_data(decoded)

    @staticmethod
    def read(path: str | Path) -> "Manifest":
        """Read a JSON or CBOR manifest file (told apart by content)."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise ManifestError(f"cannot read {path}: {error.strerror}") from None
        if not raw:
            raise ManifestError(f"{path} is empty")
        if raw.lstrip()[:1] == b"{":
            try:
                return Manifest.from_json(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise ManifestError(f"{path} is neither UTF-8 JSON nor CBOR") from None
        return Manifest.from_cbor(raw)

    @staticmethod
    def coerce(value: "Manifest | bytes | str | Path") -> "Manifest":
        if isinstance(value, Manifest):
            return value
        if isinstance(value, bytes):
            return Manifest.from_cbor(value)
        if isinstance(value, str) and value.lstrip().startswith("{"):
            return Manifest.from_json(value)
        return Manifest.read(value)


_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)
