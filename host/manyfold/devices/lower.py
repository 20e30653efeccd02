"""Lowering a manifest partition to a partition image a board runs.

The nodes of an ``embedded-lite`` partition become the device's operators, its routes the
device's route table, routes with a synthetic source the device's sources, and the edges that
cross to other partitions the link routes: a device route read outside the partition is sent
to the host; a route from outside that a device node reads comes from the host. The image
carries the manifest's id, so a board's describe says which manifest it runs.

Only what a device can run lowers; anything else is refused with the node or route named.
"""

from __future__ import annotations

from manyfold.devices import image as img
from manyfold.graph.errors import ManifestError
from manyfold.manifest.model import Manifest, NodeRecord

AGGREGATES = {a.name.lower(): a for a in img.Aggregate}
WAVEFORMS = {"constant": img.Waveform.CONSTANT, "triangle": img.Waveform.TRIANGLE, "random_walk": img.Waveform.RANDOM_WALK}
OVERFLOWS = {o.name.lower(): o for o in img.Overflow}
KINDS = {"float": img.ValueKind.FLOAT, "int": img.ValueKind.INT, "bool": img.ValueKind.BOOL}
#: Node kinds a device runs.
DEVICE_KINDS = ("scale", "count_window", "time_window", "deadband", "threshold", "rate_limit", "sample", "actuator")


def _fail(node: NodeRecord, why: str) -> ManifestError:
    return ManifestError(f"node {node.name} ({node.kind}) cannot run on a device: {why}")


def _aggregate(node: NodeRecord) -> img.Aggregate:
    return AGGREGATES[node.params.get("aggregate", "mean")]


def _operator(node: NodeRecord, input_route: str, mailbox: img.Mailbox) -> img.Operator:
    p = node.params
    out = str(node.outputs[0])
    if "value" in p or "key" in p:
        raise _fail(node, "devices run on scalar routes; value= and key= are host features")
    if node.kind == "scale":
        return img.Scale(input_route, out, scale=float(p.get("scale", 1.0)), offset=float(p.get("offset", 0.0)), mailbox=mailbox)
    if node.kind == "count_window":
        if p.get("emit", "value") != "value":
            raise _fail(node, "devices emit the aggregate as a float (records=False)")
        return img.CountWindow(input_route, out, size=int(p["size"]), step=int(p.get("step", 1)), aggregate=_aggregate(node), mailbox=mailbox)
    if node.kind == "time_window":
        if p.get("emit") != "value" or p.get("time", "event") != "event" or int(p.get("lateness_us", 0)) != 0:
            raise _fail(node, "devices run event-time windows emitting floats without lateness (records=False, lateness_us=0)")
        return img.TimeWindow(input_route, out, width_us=int(p["width_us"]), slide_us=int(p.get("slide_us", p["width_us"])), aggregate=_aggregate(node), mailbox=mailbox)
    if node.kind == "deadband":
        return img.Deadband(input_route, out, band=float(p["band"]), mailbox=mailbox)
    if node.kind == "threshold":
        mode, low, high = p.get("mode"), p.get("low"), p.get("high")
        args = {"above": {"above": low}, "below": {"below": high}, "inside": {"inside": (low, high)}, "outside": {"outside": (low, high)}}[mode]
        return img.Threshold(input_route, out, mailbox=mailbox, **args)
    if node.kind == "rate_limit":
        return img.RateLimit(input_route, out, max_events=int(p["max_events"]), interval_us=int(p["interval_us"]), mailbox=mailbox)
    if node.kind == "sample":
        return img.Latest(input_route, out, period_us=int(p["period_us"]), mailbox=mailbox)
    if node.kind == "actuator":
        return img.WriteBinding(input_route, str(node.outputs[1]), str(node.outputs[0]), apply_us=int(p.get("apply_us", 0)), mailbox=mailbox)
    raise _fail(node, f"devices run {', '.join(DEVICE_KINDS)}")


def partition_spec(m: Manifest, partition: str) -> img.PartitionSpec:
    """The partition image spec of ``partition`` in ``m``."""
    names = [p.name for p in m.partitions]
    if partition not in names:
        raise ManifestError(f"the manifest has no partition {partition!r}; it has {', '.join(names)}")
    edges = {e.name: e for e in m.edges}
    by_route = {str(r.route): r for r in m.routes}
    inside_nodes = [n for n in m.nodes if n.partition == partition]
    inside_routes = [r for r in m.routes if r.partition == partition]
    inside_names = {str(r.route) for r in inside_routes}
    operators, from_host = [], []
    for node in inside_nodes:
        if len(node.inputs) != 1:
            raise _fail(node, "device operators take one input")
        edge = edges[node.inputs[0]]
        source = str(edge.source)
        if node.kind == "forward" and source not in inside_names:
            # A forward from another partition into this one is the link itself: the host
            # sends the forwarded route's events to the board.
            from_host.append(str(node.outputs[0]))
            continue
        if source not in inside_names and source not in from_host:
            from_host.append(source)
        if edge.policy.kind == "mailbox":
            mailbox = img.Mailbox(capacity=int(edge.policy.capacity), overflow=OVERFLOWS[edge.policy.overflow])
        elif edge.policy.kind == "inline":
            mailbox = img.Mailbox()
        else:
            raise _fail(node, "epoch boundaries are host features")
        operators.append(_operator(node, source, mailbox))
    to_host = sorted({str(e.source) for e in m.edges if str(e.source) in inside_names and m.node(e.target).partition != partition})
    routes = []
    for name in sorted(inside_names) + [f for f in from_host if f not in inside_names]:
        record = by_route[name]
        kind = m.schema(record.schema).type
        if kind not in KINDS:
            raise ManifestError(f"route {name} carries {kind!r}; device routes carry float, int or bool")
        routes.append(img.RouteSpec(name, KINDS[kind]))
    sources = []
    for r in inside_routes:
        if r.source:
            s = r.source
            sources.append(img.Source(
                str(r.route), int(s["period_us"]), WAVEFORMS[s.get("waveform", "constant")], center=float(s.get("center", 0.0)),
                amplitude=float(s.get("amplitude", 0.0)), cycle=int(s.get("cycle", 1)), noise=float(s.get("noise", 0.0)),
                seed=int(s.get("seed", 0)), phase_us=int(s.get("phase_us", 0)),
            ))
    return img.PartitionSpec(
        name=partition, routes=routes, sources=sources, operators=operators, to_host=to_host, from_host=from_host,
        manifest_id=bytes.fromhex(m.id),
    )


def partition_image(m: Manifest, partition: str) -> bytes:
    """The partition image bytes (checked by the same rules a device applies)."""
    try:
        return partition_spec(m, partition).encode()
    except img.ImageSpecError as error:
        raise ManifestError(f"partition {partition}: {error}") from None
