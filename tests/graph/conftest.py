"""Fixtures for graph tests: a fresh virtual-clock graph and a float sensor route."""

from __future__ import annotations

import pytest
from graphkit import sensor_route

from manyfold.graph import FLOAT, Graph, Route


@pytest.fixture
def g() -> Graph:
    return Graph()


@pytest.fixture
def temp(g: Graph) -> Route:
    return g.route(sensor_route(), FLOAT)
