"""The fleet demo's system: the greenhouse sensor partition, run by every board of a fleet, and
one host graph that all the boards feed.

The device partition is the greenhouse sensor board (``manyfold.devices.greenhouse``, without
the fan, which a fleet-wide host cannot steer board by board). Each output crosses a UART link
(ordered, not reliable, not authenticated, not durable) into a host route, so the host routes
carry the link's taints. On the host, fleet-wide windows average zone 1 and zone 2 over every
board (their lateness covers one fleet step: boards are merged step by step) and native counters
count each route's events.

>>> m = fleet_manifest()
>>> sorted(p.name for p in m.partitions)
['greenhouse-sensors', 'main']
"""

from __future__ import annotations

from dataclasses import dataclass

from manyfold.examples.greenhouse import sensor_chain
from manyfold.graph import FLOAT, Graph, LinkCapabilities, Layer, Plane, Route
from manyfold.manifest.model import Manifest

DEVICE = "greenhouse-sensors"
"""The partition every board of the fleet runs."""
HOST = "main"
SECOND_US = 1_000_000
FLEET_WINDOW_US = 5 * SECOND_US
"""The fleet-wide windows' width: one mean over every board per 5 simulated seconds."""


@dataclass(frozen=True)
class HostRoutes:
    """The host graph's routes the demo reports on."""

    uplinks: dict[str, Route]
    """device route (printed) -> the host route the UART link forwards it to."""
    fleet_means: dict[str, Route]
    """fleet-wide window name -> its output route."""


def _device_partition(g: Graph) -> dict[str, Route]:
    """The sensor board's routes and operators, as in ``manyfold.devices.greenhouse``; returns
    the routes that go to the host, by name."""
    board = g.partition(DEVICE, profile="embedded-lite", board="lm3s6965evb")
    with board:
        # The greenhouse's own board, without the fan (manyfold.examples.greenhouse).
        return sensor_chain(g)


def build(step_us: int = 100_000) -> tuple[Graph, HostRoutes]:
    """The whole system as one graph: the board partition, the UART link and the host side.
    ``step_us`` is the fleet's step: the fleet-wide windows wait that long for late boards."""
    g = Graph()
    outputs = _device_partition(g)
    host = g.partition(HOST)
    uart = LinkCapabilities(ordered=True, reliable=False, authenticated=False, durable=False)
    g.link("uart", DEVICE, host, transport="serial", capabilities=uart)
    uplinks: dict[str, Route] = {}
    for out in outputs.values():
        host_route = Route(Plane.READ, Layer.LOGICAL, "uplink", out.family, out.stream, out.variant, 1)
        g.connect(out, g.route(host_route, FLOAT), link=uart, name=f"uplink_{out.family}_{out.stream}")
        uplinks[str(out)] = host_route
    fleet_means: dict[str, Route] = {}
    for name in ("z1_mean", "z2_mean"):
        source = uplinks[str(outputs[name])]
        output = g.route(Route(Plane.READ, Layer.LOGICAL, "fleet", source.family, source.stream, source.variant, 1), FLOAT)
        g.time_window(source, width_us=FLEET_WINDOW_US, lateness_us=step_us, records=False, output=output, name=f"fleet_{name}")
        fleet_means[name] = output
    return g, HostRoutes(uplinks, fleet_means)


def fleet_manifest(step_us: int = 100_000) -> Manifest:
    """The system's manifest (the fleet lowers its device partition to the boards' image)."""
    from manyfold import manifest

    return manifest.compile(build(step_us)[0])


def host_graph(m: Manifest) -> Graph:
    """A host graph loaded from the system's manifest: partition ``main`` only (the board
    partition's routes are declared, fed by the fleet)."""
    from manyfold import manifest

    return manifest.load(m, partitions=[HOST])


def uplink_routes(m: Manifest) -> list[Route]:
    """The host routes the UART uplinks feed, in the manifest's order."""
    return [r.route for r in m.routes if r.route.owner == "uplink"]


def fleet_mean_routes(m: Manifest) -> dict[str, Route]:
    """Fleet-wide window name -> its output route."""
    out = {}
    for node in m.nodes:
        if node.partition == HOST and node.name.startswith("fleet_"):
            out[node.name.removeprefix("fleet_")] = node.outputs[0]
    return out


__all__ = ["DEVICE", "FLEET_WINDOW_US", "HOST", "HostRoutes", "build", "fleet_manifest", "fleet_mean_routes", "host_graph", "uplink_routes"]
