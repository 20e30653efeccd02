"""Refusals leave nothing behind and are recorded: a node the graph refuses does not keep its
new output routes, and every refused publish, whatever the call, is in the route audit."""

from __future__ import annotations

import pytest
from graphkit import float_graph, route

from manyfold import manifest, query
from manyfold.graph import FLOAT, NotOwnerError, OperatorConfigError


def test_a_refused_node_does_not_keep_its_new_output_route():
    """A node refused by the graph (its name is an edge's) takes back the output route it declared: routes declared next work, the route is free, the graph compiles."""
    g, temp, sensor = float_graph()
    g.map(temp, lambda v: v, output=route("doubled"), name="double")
    with pytest.raises(OperatorConfigError, match='the name "double_in" is already used'):
        g.map(temp, lambda v: v, output=route("copy"), name="double_in")
    assert route("copy") not in [r.route for r in manifest.compile(g).routes]
    later = g.route(route("later"), FLOAT)
    sensor.publish(later, 1.5)
    assert g.latest(later).value == 1.5
    copy = g.map(temp, lambda v: v + 1, output=route("copy"), name="copy")
    sensor.publish(temp, 2.0)
    assert g.latest(copy.output).value == 3.0
    assert route("copy") in [r.route for r in manifest.compile(g).routes]


@pytest.mark.parametrize("call", ["publish_many", "publish_lazy", "publish_guarded"])
def test_owner_refusals_are_audited_on_every_publish_path(call):
    """A publish refused for ownership is in the route audit, naming the producer, whichever publish call made it."""
    g, temp, _ = float_graph()
    intruder = g.producer("intruder")
    with pytest.raises(NotOwnerError):
        if call == "publish_many":
            intruder.publish_many(temp, [1.0, 2.0])
        elif call == "publish_lazy":
            intruder.publish_lazy(temp, 1.0, length=0, sha256=bytes(32), open=lambda: b"")
        else:
            g.publish_guarded(temp, 1.0, producer=intruder, not_before_epoch=1)
    refused = [(e.who, e.detail) for e in query.route_audit(g, temp).of_kind("refused")]
    assert refused == [("producer intruder", "not the owner")]
