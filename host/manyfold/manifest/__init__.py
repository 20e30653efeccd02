"""Graph manifests: compile, serialize, validate, diff, draw and load.

>>> from manyfold.graph import FLOAT, Graph, Layer, Plane, Route
>>> g = Graph()
>>> t = g.route(Route(Plane.READ, Layer.LOGICAL, "sensor", "env", "t"), FLOAT)
>>> _ = g.moving_average(t, 3, name="avg")
>>> m = compile(g)
>>> m.format, len(m.routes), [n.kind for n in m.nodes]
('manyfold.graph.v1', 2, ['count_window'])
>>> compile(load(m)).to_cbor() == m.to_cbor()
True
"""

from manyfold.manifest.compile import compile
from manyfold.manifest.diff import Change, Diff, diff
from manyfold.manifest.draw import render_svg, to_dot
from manyfold.manifest.load import load
from manyfold.manifest.model import (
    COMPATIBLE,
    FORMAT,
    EdgePolicy,
    EdgeRecord,
    LinkRecord,
    Manifest,
    NodeRecord,
    PartitionRecord,
    PrimitiveRecord,
    QueryExposure,
    RouteRecord,
    SchemaRecord,
    Settings,
    StoreRecord,
)
from manyfold.manifest.validate import RULES, Violation, validate

__all__ = [
    "COMPATIBLE", "FORMAT", "RULES", "Change", "Diff", "EdgePolicy", "EdgeRecord", "LinkRecord", "Manifest",
    "NodeRecord", "PartitionRecord", "PrimitiveRecord", "QueryExposure", "RouteRecord", "SchemaRecord", "Settings", "StoreRecord", "Violation",
    "compile", "diff", "load", "render_svg", "to_dot", "validate",
]
