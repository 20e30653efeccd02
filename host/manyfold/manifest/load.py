"""Load a manifest into a new graph: the Rust runtime builds it; Python adds its view."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Optional

from manyfold.graph import Graph, Node, Schema
from manyfold.graph.errors import ManifestError
from manyfold.graph.graph import Link, LinkCapabilities, Partition, SyntheticSource
from manyfold.graph.schema import Pair, WindowResult
from manyfold.manifest.compile import plain_type
from manyfold.manifest.model import Manifest, SchemaRecord

_BUILTIN_RECORDS = {"WindowResult": WindowResult, "Pair": Pair}
_SCALAR_PY = {"bool": bool, "int": int, "float": float, "text": str, "bytes": bytes}


def _import(path: str | None) -> type | None:
    if not path:
        return None
    module, _, qualname = path.rpartition(".")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return obj if isinstance(obj, type) else None


def _with_classes(descriptor: Any, hint: type | None, made: dict) -> tuple:
    """A Python descriptor (tuples with classes) for a manifest type; record classes come from
    the hint when its fields match, a built-in class, or a dataclass made for the purpose."""
    if isinstance(descriptor, str):
        return (descriptor,)
    tag = descriptor[0]
    if tag in ("list", "optional"):
        return (tag, _with_classes(descriptor[1], None, made))
    name, fields = descriptor[1], descriptor[2]
    hints = {}
    if hint is not None and dataclasses.is_dataclass(hint):
        hints = {f.name: f.type for f in dataclasses.fields(hint)}
    children = tuple((fname, _with_classes(ftype, _nested_hint(hint, fname), made)) for fname, ftype in fields)
    key = (name, tuple(f for f, _ in fields))
    cls = hint if hint is not None and list(hints) == [f for f, _ in fields] else made.get(key) or _BUILTIN_RECORDS.get(name)
    if cls is None:
        if key not in made:
            made[key] = dataclasses.make_dataclass(name, [(f, Optional[Any]) for f, _ in fields], frozen=True)
        cls = made[key]
    return ("record", name, children, cls)


def _collect_classes(cls: type | None, known: dict) -> None:
    """Index a dataclass and the dataclasses in its fields by (name, field names)."""
    if cls is None or not dataclasses.is_dataclass(cls):
        return
    key = (cls.__name__, tuple(f.name for f in dataclasses.fields(cls)))
    if key in known:
        return
    known[key] = cls
    for f in dataclasses.fields(cls):
        _collect_classes(_nested_hint(cls, f.name), known)


def _nested_hint(hint: type | None, field: str) -> type | None:
    if hint is None or not dataclasses.is_dataclass(hint):
        return None
    try:
        import typing

        t = typing.get_type_hints(hint).get(field)
    except Exception:
        return None
    return t if isinstance(t, type) and dataclasses.is_dataclass(t) else None


def _schema(record: SchemaRecord, made: dict) -> Schema:
    cls = _import(record.python)
    try:
        descriptor = _with_classes(record.type, cls, made)
        schema = Schema(record.name, record.version, descriptor, cls if descriptor[0] == "record" else _SCALAR_PY.get(descriptor[0]))
        digest = schema.hash_hex
    except (TypeError, IndexError, ValueError) as error:
        raise ManifestError(f"schema {record.name}@{record.version}: invalid type descriptor {record.type!r} ({error})") from None
    if plain_type(descriptor) != record.type or digest != record.hash:
        raise ManifestError(f"schema {record.name}@{record.version}: its type does not hash to the recorded {record.hash[:16]}...")
    return schema


def load(
    manifest: Manifest | bytes | str | Path,
    *,
    callables: Mapping[str, Callable] | None = None,
    realtime: bool | None = None,
    partitions: Iterable[str] | None = None,
) -> Graph:
    """Build a new graph from a manifest. The Rust runtime reads the manifest's CBOR and builds
    routes, nodes and edges with the built-in operators; functions referred to by name must be
    in ``callables`` (a :class:`ManifestError` names any that is missing). With ``partitions``
    only those partitions' nodes are built: the runtime hosting them receives the other
    partitions' routes over links (their routes are declared, with no producer here)."""
    m = Manifest.coerce(manifest)
    callables = dict(callables or {})
    wanted = None if partitions is None else sorted(set(partitions))
    if wanted is not None:
        unknown = sorted(set(wanted) - {p.name for p in m.partitions})
        if unknown:
            raise ManifestError(f"the manifest has no partition {', '.join(unknown)}")
    nodes = [n for n in m.nodes if wanted is None or n.partition in wanted]
    missing = sorted({ref for n in nodes for ref in n.function_refs()} - set(callables))
    if missing:
        users = {ref: [n.name for n in nodes if ref in n.function_refs()] for ref in missing}
        detail = "; ".join(f"{ref!r} (used by {', '.join(users[ref])})" for ref in missing)
        raise ManifestError(f"the manifest refers to functions that were not supplied: {detail}. Pass them as callables={{name: function}}")
    g = Graph(realtime=(m.settings.clock == "realtime") if realtime is None else realtime, gated_max=m.settings.gated_max)
    # Record classes found by importing the schemas' Python paths come first, so a record
    # nested in another schema (a Pair's left side, say) gets its real class too.
    made: dict = {}
    for record in m.schemas:
        _collect_classes(_import(record.python), made)
    schemas = {s.hash: _schema(s, made) for s in m.schemas}
    g._native.load_manifest(m.to_cbor(), callables, wanted)
    g._callables.update(callables)
    for p in m.partitions:
        g._partitions[p.name] = Partition(p.name, p.profile, tuple(sorted(p.placement.items())), g)
    for link in m.links:
        caps = LinkCapabilities(link.ordered, link.reliable, link.authenticated, link.durable)
        g._links[link.name] = Link(link.name, link.between[0], link.between[1], link.transport, caps)
    for r in m.routes:
        g._schemas[r.route] = schemas[r.schema]
        g._route_partition[r.route] = r.partition
        if r.fence:
            g._fences[r.route] = r.fence
        if r.source:
            g._sources[r.route] = SyntheticSource(**r.source)
    inputs_of = {e.name: e.source for e in m.edges}
    for n in nodes:
        g._names.add(n.name)
        g._node_partition[n.name] = n.partition
        g._nodes[n.name] = Node(n.name, n.kind, tuple(inputs_of[e] for e in n.inputs), n.outputs, g)
    _restore_primitives(g, m, {n.name for n in nodes})
    if m.query:
        request = next((r.route for r in m.routes if r.route.plane.word == "query" and r.route.variant.word == "query_request"), None)
        g.query_exposure = {"service": m.query.service, "kinds": list(m.query.kinds), "request_route": request}
        if request is None:  # declared with manyfold.query.expose: no request route to grant
            g.query_exposure["principals"] = list(m.query.principals)
    return g


def _restore_primitives(g: Graph, m: Manifest, built: set[str]) -> None:
    """The graph's primitive instances from the manifest's records (those with a part built here)."""
    from manyfold.primitives import Layer, Maturity, PrimitiveInstance, StoreDecl

    for p in m.primitives:
        if p.nodes and not set(p.nodes) & built:
            continue
        try:
            layer, maturity = Layer(p.layer), Maturity(p.maturity)
        except ValueError:
            raise ManifestError(f"primitive {p.instance}: layer {p.layer!r} or maturity {p.maturity!r} is not one this version of manyfold knows") from None
        g.primitives[p.instance] = PrimitiveInstance(
            p.instance, p.contract, p.version, layer, maturity, dict(p.policies), p.nodes, p.routes,
            tuple(StoreDecl(s.name, s.kind, s.sync) for s in p.stores),
        )
