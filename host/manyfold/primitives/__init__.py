"""Primitives: contracts defined once, installed into many graphs with different policies.

A contract (:meth:`Primitive.define`) names what a primitive needs and provides, its typed
ports, state and policies, what it does about each of six failures, how mature it is, the
installer that lowers it into nodes, routes and stores, and static checks over manifests.
``manyfold.catalog`` holds the contracts that ship with manyfold; ``docs/catalog.md`` is
generated from them.

>>> from manyfold.graph import FLOAT, Graph, Route
>>> from manyfold.catalog import get
>>> g = Graph()
>>> temp = g.route("read.logical.sensor.env.temperature.event.v1", FLOAT)
>>> slow = get("Resistor").install(g, "slow_temp", source=temp, min_interval_us=1000)
>>> g.primitives["slow_temp"].contract, g.primitives["slow_temp"].nodes
('Resistor', ('slow_temp',))
"""

from manyfold.primitives.contract import Installer, Primitive, Validator
from manyfold.primitives.enums import Failure, Family, Layer, Maturity, StateKind
from manyfold.primitives.errors import PrimitiveError
from manyfold.primitives.findings import Finding, Severity
from manyfold.primitives.install import InstallContext, Installed, PrimitiveInstance, StoreDecl
from manyfold.primitives.parts import Coverage, Handled, OutsideProfile, Policy, Port, State, handled, outside_profile

__all__ = [
    "Coverage", "Failure", "Family", "Finding", "Handled", "InstallContext", "Installed", "Installer", "Layer",
    "Maturity", "OutsideProfile", "Policy", "Port", "Primitive", "PrimitiveError", "PrimitiveInstance", "Severity",
    "State", "StateKind", "StoreDecl", "Validator", "handled", "outside_profile",
]
