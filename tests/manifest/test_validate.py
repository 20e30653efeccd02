"""Every validation rule: a manifest that breaks it (pointing at the offender) and one that passes."""

from __future__ import annotations

import dataclasses

from manifestkit import r, small_graph

from manyfold import manifest
from manyfold.graph import FLOAT, Graph, Idempotency, JoinClass, Layer, LinkCapabilities, Mailbox, Overflow, Plane, Variant
from manyfold.manifest.model import EdgePolicy


def rules(m, rule):
    return [(v.subject, v.message) for v in manifest.validate(m, rules=[rule])]


def replace_node(m, name, **changes):
    return dataclasses.replace(m, nodes=tuple(dataclasses.replace(n, **changes) if n.name == name else n for n in m.nodes))


def replace_edge(m, name, **changes):
    return dataclasses.replace(m, edges=tuple(dataclasses.replace(e, **changes) if e.name == name else e for e in m.edges))


def test_hidden_unbounded_queue():
    """A mailbox without a bound (or beyond the limit) is flagged at its edge."""
    m = manifest.compile(small_graph())
    assert rules(m, "hidden_unbounded_queue") == []
    bad = replace_edge(m, "buffer_in", policy=EdgePolicy("mailbox", None, "drop_oldest"))
    assert rules(bad, "hidden_unbounded_queue") == [("edge buffer_in", "mailbox capacity None is not between 1 and 1000000")]
    huge = replace_node(m, "avg", kind="capacitor", params={"capacity": 10**9})
    assert [s for s, _ in rules(huge, "hidden_unbounded_queue")] == ["node avg"]


def test_gate_without_a_bound():
    """A gate for guarded publishes that could hold nothing, or beyond the limit, is flagged."""
    m = manifest.compile(small_graph())
    for gated_max in (0, 10**9):
        bad = dataclasses.replace(m, settings=dataclasses.replace(m.settings, gated_max=gated_max))
        assert rules(bad, "hidden_unbounded_queue") == [("settings", f"gated_max {gated_max} is not between 1 and 1000000")]


def test_unsafe_feedback_loop():
    """An inline cycle is flagged with its path; the same cycle through a mailbox passes."""
    g = Graph()
    a = g.route(r("n", "a"), FLOAT)
    back = g.route(r("n", "back"), FLOAT)
    loop = g.merge([a, back], name="loop")
    g.connect(loop.output, back, mailbox=Mailbox(4, Overflow.DROP_OLDEST), name="ret")
    m = manifest.compile(g)
    assert rules(m, "unsafe_feedback_loop") == []
    bad = replace_edge(m, "ret_in", policy=EdgePolicy("inline"))
    ((subject, message),) = rules(bad, "unsafe_feedback_loop")
    assert "inline loop" in message and str(back) in message and subject.startswith("route ")


def join_graph(left_partition="main", right_partition="main", join_class=JoinClass.LOCAL):
    g = Graph()
    with g.partition(left_partition):
        a = g.route(r("n", "a"), FLOAT)
    with g.partition(right_partition):
        b = g.route(r("n", "b"), FLOAT)
    g.join(a, b, join_class=join_class, key=lambda v: 0, name="j")
    return manifest.compile(g)


def test_cross_partition_join_without_plan():
    """A local join across partitions is flagged; a repartition join across them passes; a
    keyless non-mirror join is flagged as all-to-all."""
    assert rules(join_graph(), "cross_partition_join_without_plan") == []
    assert rules(join_graph("p1", "p2", JoinClass.REPARTITION), "cross_partition_join_without_plan") == []
    ((subject, message),) = rules(join_graph("p1", "p2"), "cross_partition_join_without_plan")
    assert subject == "node j" and "reads partitions p1, p2" in message
    keyless = replace_node(join_graph(), "j", params={"class": "local", "capacity": 8})
    assert "all-to-all" in rules(keyless, "cross_partition_join_without_plan")[0][1]


def test_payload_heavy_inspection():
    """Opening every payload of a bulk route is flagged; opening after a metadata filter passes."""
    g = Graph()
    cam = g.route(r("cam", "frame", layer=Layer.BULK, variant=Variant.PAYLOAD), FLOAT)
    wanted = g.filter(cam, lambda v: v > 0, name="wanted")
    g.open_payloads(wanted.output, name="inspect")
    m = manifest.compile(g)
    assert rules(m, "payload_heavy_inspection") == []
    direct = replace_edge(m, "inspect_in", source=cam)
    assert rules(direct, "payload_heavy_inspection") == [("node inspect", f"opens every payload of {cam}; filter or join on the metadata first so only the payloads that matter are opened")]


def test_write_without_fence():
    """Owned state written from outside needs a fence; a fenced route passes."""
    g = Graph()
    g.route(r("owner", "ledger", plane=Plane.STATE, variant=Variant.STATE), FLOAT, fence="epoch")
    m = manifest.compile(g)
    assert rules(m, "write_without_fence") == []
    unfenced = dataclasses.replace(m, routes=tuple(dataclasses.replace(x, fence=None) for x in m.routes))
    assert [s for s, _ in rules(unfenced, "write_without_fence")] == [f"route {m.routes[0].route}"]


def test_retry_without_idempotency():
    """A retried write with an unknown idempotency boundary is flagged."""
    g = Graph()
    g.write_binding("fan", "climate", "speed", FLOAT, retry_max=2, retry_interval_us=10, idempotency=Idempotency.ABSOLUTE_VALUE)
    m = manifest.compile(g)
    assert rules(m, "retry_without_idempotency") == []
    name = m.nodes[0].name
    bad = replace_node(m, name, params={**m.nodes[0].params, "idempotency": "unknown"})
    assert rules(bad, "retry_without_idempotency") == [(f"node {name}", "retries 2 times but its idempotency boundary is unknown; declare absolute_value or request_id")]


def crossing(declared: LinkCapabilities | None, link: LinkCapabilities):
    g = Graph()
    board, host = g.partition("board"), g.partition("host")
    g.link("uart", board, host, capabilities=link)
    with board:
        raw = g.route(r("s", "raw"), FLOAT)
    with host:
        g.connect(raw, g.route(r("s", "seen"), FLOAT), link=declared, name="up")
    return manifest.compile(g)


def test_undeclared_link_loss():
    """A crossing over a lossy link must declare the loss (then routes carry the taint)."""
    lossy = LinkCapabilities(ordered=False)
    assert rules(crossing(lossy, lossy), "undeclared_link_loss") == []
    ((subject, message),) = rules(crossing(None, lossy), "undeclared_link_loss")
    assert subject == "edge up_in" and "not ordered" in message and "order_possibly_out_of_order" in message
    m = crossing(lossy, lossy)
    no_link = dataclasses.replace(m, links=())
    assert "without a declared link" in rules(no_link, "undeclared_link_loss")[0][1]


def test_schema_mismatch():
    """An edge whose ends carry different schemas is flagged at the edge."""
    g = Graph()
    a = g.route(r("s", "a"), FLOAT)
    b = g.route(r("s", "b"), FLOAT)
    g.connect(a, b, name="copy")
    text_route = g.route(r("s", "words"), str)
    m = manifest.compile(g)
    assert rules(m, "schema_mismatch") == []
    bad = replace_edge(m, "copy_in", source=text_route)
    ((subject, message),) = rules(bad, "schema_mismatch")
    assert subject == "edge copy_in" and str(text_route) in message


def test_examples_are_valid():
    """The shipped examples pass every rule."""
    from manyfold.examples import greenhouse

    assert manifest.validate(manifest.compile(greenhouse.build().graph)) == []
    assert manifest.validate(manifest.compile(small_graph())) == []


def link_manifest(transport: str, caps: LinkCapabilities):
    g = Graph()
    a, b = g.partition("a", profile="edge"), g.partition("b", profile="edge")
    g.link("ab", a, b, transport=transport, capabilities=caps)
    return manifest.compile(g)


def test_link_capability_unavailable():
    """A link may declare only what its transport keeps: nothing durable yet, no retransmission or
    MAC on serial, udp/tcp keep order and reliability themselves; unknown transports are refused."""
    keeps = LinkCapabilities(ordered=True, reliable=True, authenticated=True, durable=False)
    for transport in ("udp", "tcp"):
        assert rules(link_manifest(transport, keeps), "link_capability_unavailable") == []
        ((subject, message),) = rules(link_manifest(transport, LinkCapabilities()), "link_capability_unavailable")
        assert subject == "link ab"
        assert message == (f"declares durable but a {transport} link cannot keep it: no transport stores events for replay yet; "
                           "declare durable=False (its crossings then carry det_nonreplayable)")
    serial = LinkCapabilities(ordered=True, reliable=False, authenticated=False, durable=False)
    assert rules(link_manifest("serial", serial), "link_capability_unavailable") == []
    found = rules(link_manifest("serial", LinkCapabilities()), "link_capability_unavailable")
    assert [m.split(" but")[0] for _, m in found] == ["declares reliable", "declares authenticated", "declares durable"]
    assert "a serial link carries no MAC" in found[1][1]
    ((subject, message),) = rules(link_manifest("carrier-pigeon", serial), "link_capability_unavailable")
    assert message == "transport 'carrier-pigeon' is not one manyfold runs (serial, tcp, udp, zenoh)"


def test_zenoh_link_keeps_what_udp_keeps():
    """A node link on zenoh keeps what one on udp keeps (Zenoh is reliable hop by hop only, so the
    node link resequences, retransmits and authenticates itself): the same validation row."""
    keeps = LinkCapabilities(ordered=True, reliable=True, authenticated=True, durable=False)
    assert rules(link_manifest("zenoh", keeps), "link_capability_unavailable") == []
    ((_, message),) = rules(link_manifest("zenoh", LinkCapabilities()), "link_capability_unavailable")
    assert message.startswith("declares durable but a zenoh link cannot keep it")
