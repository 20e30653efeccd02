"""Shared helpers for graph tests."""

from __future__ import annotations

from manyfold.graph import FLOAT, Graph, Layer, NodeStats, Plane, Route, Variant


def sensor_route(stream: str = "temperature", owner: str = "sensor") -> Route:
    """read.logical.<owner>.env.<stream>.meta.v1"""
    return Route(Plane.READ, Layer.LOGICAL, owner, "env", stream, Variant.META, 1)


def route(stream: str = "temp", owner: str = "sensor") -> Route:
    """read.logical.<owner>.env.<stream>.meta.v1"""
    return Route(Plane.READ, Layer.LOGICAL, owner, "env", stream)


def collect(g: Graph, r: Route) -> list:
    """Every envelope published on ``r`` from now on, in order."""
    seen: list = []
    g.subscribe(r, seen.append)
    return seen


def stats(g: Graph, node) -> NodeStats:
    """The node_stats() entry of ``node``."""
    matches = [n for n in g.node_stats() if n.name == node.name]
    assert len(matches) == 1
    return matches[0]


def float_graph(stream: str = "temp"):
    """A graph with one float route owned by ``sensor``, and that producer."""
    g = Graph()
    r = g.route(route(stream), FLOAT)
    return g, r, g.producer("sensor")
