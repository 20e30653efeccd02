"""Helpers for manifest tests: small graphs and the golden-file check."""

from __future__ import annotations

import os
from pathlib import Path

from manyfold.graph import FLOAT, Graph, Layer, Mailbox, Overflow, Plane, Route, Variant

GOLDEN = Path(__file__).resolve().parent / "golden"


def r(owner: str, stream: str, plane: Plane = Plane.READ, layer: Layer = Layer.LOGICAL, variant: Variant = Variant.META) -> Route:
    return Route(plane, layer, owner, "env", stream, variant)


def small_graph() -> Graph:
    """A sensor, a mailbox, a moving average and a threshold."""
    g = Graph()
    temp = g.route(r("sensor", "temp"), FLOAT, history=4)
    copy = g.route(r("sensor", "copy"), FLOAT)
    g.connect(temp, copy, mailbox=Mailbox(8, Overflow.DROP_OLDEST), name="buffer")
    avg = g.moving_average(copy, 3, name="avg")
    g.threshold(avg.output, above=30.0, name="hot")
    return g


def check_golden(name: str, text: str) -> None:
    """Compare with tests/manifest/golden/<name>; MANYFOLD_UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if os.environ.get("MANYFOLD_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"golden file {path} is missing; run with MANYFOLD_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"{name} differs from its golden file; if the change is intended, rerun with MANYFOLD_UPDATE_GOLDEN=1"
