"""Refusals leave nothing behind and are recorded: a node the graph refuses does not keep its
new output routes, and every refused publish, whatever the call, is in the route audit."""

from __future__ import annotations

import pytest
from graphkit import float_graph, route

from manyfold import manifest
from manyfold.graph import FLOAT, OperatorConfigError


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
