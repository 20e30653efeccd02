"""The greenhouse split for the edge profile: four partitions, three runtime nodes and a board.

- ``greenhouse-sensors`` (embedded-lite): the sensor board (host simulation by default, or an
  emulated board in QEMU): seeded temperature sources, scaling, a count window, a time window
  and a threshold, as in ``manyfold.devices.greenhouse``. Its outputs cross the ``uart`` serial
  link (ordered; not reliable, authenticated or durable) to edge node A, which owns the board.
- ``edge-a`` (edge node A: ingest, windows): the board's uplinks; the probes' readings through
  the bounded ingest mailbox (a reconnecting probe's burst overflows it), resequenced in event
  time, and the per-zone window mean. The mean crosses link ``ab`` (UDP; ordered and reliable,
  which the node link provides by resequencing and retransmission) to edge node B.
- ``edge-b`` (edge node B: the lookup join, lazy frame inspection, fan control): camera frames
  whose pixels are lazy payloads, joined with the latest zone mean; only a hot zone's frames
  are opened, inspected and turned into a fan speed, which is paired with the board's latest
  zone-1 mean (forwarded from A over ``ab``: the command's lineage reaches the board) and paced
  to one command per interval. The fan command crosses link ``bh`` (TCP) to the host.
- ``host`` (local): the fan commands as the operator's host receives them.

Every node answers the query plane (``manyfold query --cluster``) for the principal
``operator`` (:func:`manyfold.query.expose`).

The probes and the camera are producers on nodes A and B: :func:`probes_app` and
:func:`camera_app` run there (``manyfold node --app``). ``manyfold demo edge`` plans and starts
it (``manyfold.demos.edge``); ``manyfold compile examples/greenhouse_edge.py`` compiles it.
"""

from __future__ import annotations

import hashlib
import os
import random
import time

from manyfold.examples.greenhouse import HOT_C, SECOND_US, ZONES, FrameMeta, Reading, fan_speed_from_frame, frame_bytes
from manyfold.graph import (
    FLOAT,
    Aggregate,
    Graph,
    JoinClass,
    Layer,
    LinkCapabilities,
    Mailbox,
    Overflow,
    Plane,
    Route,
    SyntheticSource,
    Variant,
)
from manyfold.query import expose

SENSORS, EDGE_A, EDGE_B, HOST = "greenhouse-sensors", "edge-a", "edge-b", "host"
SERIAL = LinkCapabilities(ordered=True, reliable=False, authenticated=False, durable=False)
"""The board's UART: frames keep their order; a lost event is counted and tainted."""
AB = LinkCapabilities(ordered=True, reliable=True, authenticated=False, durable=False)
"""UDP between A and B: the node link resequences and retransmits what UDP lacks."""
BH = LinkCapabilities(ordered=True, reliable=True, authenticated=False, durable=False)
"""TCP between B and the host."""
PROBE_NETWORK = LinkCapabilities(ordered=False)
"""The probes' network may reorder readings (a declared taint, as in the local greenhouse)."""

FAN_INTERVAL_US = 2 * SECOND_US
"""Fan commands are paced to one per this many microseconds of the node's (wall) clock."""
SEED_ENV = "MANYFOLD_GREENHOUSE_SEED"


def route(plane: Plane, layer: Layer, owner: str, family: str, stream: str, variant: Variant = Variant.META) -> Route:
    return Route(plane, layer, owner, family, stream, variant, 1)


ZONE_MEAN_AT_B = route(Plane.READ, Layer.LOGICAL, "control", "climate", "zone_mean")
TEMPERATURE_RAW = route(Plane.READ, Layer.RAW, "probes", "climate", "temperature")
CAMERA = route(Plane.READ, Layer.BULK, "camera", "vision", "frame", Variant.PAYLOAD)
FAN_REQUEST = route(Plane.WRITE, Layer.LOGICAL, "control", "fan", "speed", Variant.REQUEST)
FAN_COMMAND = route(Plane.WRITE, Layer.LOGICAL, "host", "fan", "speed", Variant.REQUEST)
"""The fan command as the host receives it: the end of the chain the demo explains."""


BOARD_MEAN_AT_A = Route.parse("read.logical.uplink.zone1.temperature_avg.meta.v1")
"""The board's zone-1 mean as it arrives over the UART on node A."""
BOARD_MEAN_AT_B = route(Plane.READ, Layer.LOGICAL, "control", "board", "zone1_mean")
"""The board's zone-1 mean on node B, where each fan speed is paired with the latest of it."""
OPERATOR = "operator"
"""The principal the query plane answers (docs/observability.md, Principals)."""


def whole_greenhouse(_value) -> str:
    """One key for the whole greenhouse: a fan speed pairs with the board's latest mean."""
    return "greenhouse"


def fan_speed_of(pair) -> float:
    """The fan speed of a (speed, board mean) pair: the board's reading stands beside the
    command (in its lineage) without changing it."""
    return pair.left


def frame_is_hot(pair) -> bool:
    """A frame whose zone's latest window mean is above :data:`HOT_C`."""
    return pair.right.value is not None and pair.right.value > HOT_C


def _sensor_board(g: Graph, board) -> list[Route]:
    """The board's partition; returns its outputs (forwarded to node A)."""
    from manyfold.devices import greenhouse as dev

    with board:
        def r(text, source=None):
            return g.route(Route.parse(text), FLOAT, source=source)

        z1_raw = r(dev.Z1_TEMP_RAW, SyntheticSource(dev.TEMP_PERIOD_US, "triangle", 2700.0, 300.0, 48, 8.0, 1))
        z2_raw = r(dev.Z2_TEMP_RAW, SyntheticSource(dev.TEMP_PERIOD_US, "triangle", 2150.0, 150.0, 64, 8.0, 2, 50_000))
        z1 = g.scale(z1_raw, scale=0.01, output=r(dev.Z1_TEMP), name="z1_celsius")
        z1_avg = g.count_window(z1.output, size=4, output=r(dev.Z1_TEMP_AVG), name="z1_mean")
        hot = g.threshold(z1_avg.output, above=dev.HOT_ABOVE_C, output=r(dev.Z1_HOT), name="z1_hot")
        z2 = g.scale(z2_raw, scale=0.01, output=r(dev.Z2_TEMP), name="z2_celsius")
        z2_avg = g.time_window(z2.output, width_us=2 * SECOND_US, slide_us=SECOND_US, records=False, output=r(dev.Z2_TEMP_AVG), name="z2_mean")
    return [z1_avg.output, hot.output, z2_avg.output]


def build(transport: str | None = None) -> Graph:
    """The edge greenhouse's graph (partitions, links and every crossing declared); with
    ``transport`` (``udp``, ``tcp`` or ``zenoh``) both node links ``ab`` and ``bh`` run on it
    (default: ``ab`` on udp, ``bh`` on tcp)."""
    g = Graph()
    board = g.partition(SENSORS, profile="embedded-lite", board="lm3s6965evb")
    a = g.partition(EDGE_A, profile="edge", role="ingest")
    b = g.partition(EDGE_B, profile="edge", role="control")
    host = g.partition(HOST, profile="local")
    g.link("uart", board, a, transport="serial", capabilities=SERIAL)
    g.link("ab", a, b, transport=transport or "udp", capabilities=AB)
    g.link("bh", b, host, transport=transport or "tcp", capabilities=BH)

    outputs = _sensor_board(g, board)
    with a:
        for out in outputs:
            uplink = g.route(Route(Plane.READ, Layer.LOGICAL, "uplink", out.family, out.stream, out.variant, 1), FLOAT)
            g.connect(out, uplink, link=SERIAL, name=f"uplink_{out.family}_{out.stream}")
        raw = g.route(TEMPERATURE_RAW, Reading, audit=True)
        temperature = g.route(route(Plane.READ, Layer.LOGICAL, "greenhouse", "climate", "temperature"), Reading, retain=1024)
        g.connect(raw, temperature, name="ingest", mailbox=Mailbox(16, Overflow.DROP_OLDEST), link=PROBE_NETWORK)
        ordered = g.resequence(temperature, delay_us=10 * SECOND_US, name="reorder")
        window = g.time_window(
            ordered.output, width_us=60 * SECOND_US, slide_us=20 * SECOND_US, lateness_us=0, aggregate=Aggregate.MEAN,
            value="celsius", key="zone", name="zone_mean",
        )  # fmt: skip
    with b:
        zone_mean = g.route(ZONE_MEAN_AT_B, g.schema_of(window.output))
        g.connect(window.output, zone_mean, link=AB, name="ab_zone_mean")
        camera = g.route(CAMERA, FrameMeta, audit=True)
        latest_state = g.join(camera, zone_mean, join_class=JoinClass.LOOKUP, left_key="zone", right_key="key", capacity=8, name="frame_with_zone")
        hot_frames = g.filter(latest_state.output, frame_is_hot, name="hot_frames")
        inspections = g.open_payloads(hot_frames.output, name="inspect")
        speed = g.map(inspections.output, fan_speed_from_frame, schema=FLOAT, name="fan_speed")
        board_mean = g.route(BOARD_MEAN_AT_B, FLOAT)
        g.connect(BOARD_MEAN_AT_A, board_mean, link=AB, name="ab_board_mean")
        beside = g.join(speed.output, board_mean, join_class=JoinClass.LOOKUP, key=whole_greenhouse, capacity=1, name="fan_with_board")
        checked = g.map(beside.output, fan_speed_of, schema=FLOAT, name="fan_checked")
        g.resistor(checked.output, min_interval_us=FAN_INTERVAL_US, output=g.route(FAN_REQUEST, FLOAT), name="fan_pacing")
    with host:
        g.connect(FAN_REQUEST, g.route(FAN_COMMAND, FLOAT), link=BH, name="bh_fan_command")
    expose(g, principals=[OPERATOR], kinds=["topology", "flow", "watermarks", "taints", "lineage"])
    return g


def build_graph() -> Graph:
    """For ``manyfold compile examples/greenhouse_edge.py``."""
    return build()


def _seed() -> int:
    return int(os.environ.get(SEED_ENV, "7"))


def probes_app(app) -> None:
    """Node A's probes: two zones every 5 s of event time (north heats up), readings up to 3 s
    late, and at step 30 a reconnecting probe's burst of 40 readings; 72 steps, 50 ms apart."""
    rng = random.Random(_seed())
    probes = app.graph.producer("probes")
    for step in range(72):
        if app.stopping.is_set():
            return
        now = step * 5 * SECOND_US
        for zone in ZONES:
            heat = 8.0 * min(1.0, max(0, step - 18) / 24) if zone == "north" else 0.0
            celsius = round(23.0 + heat + rng.uniform(-0.4, 0.4), 2)
            probes.publish(TEMPERATURE_RAW, Reading(zone, celsius), event_time_us=now - rng.randrange(0, 3) * SECOND_US)
        if step == 30:
            for k in range(40):
                probes.publish(TEMPERATURE_RAW, Reading("south", round(23.0 + rng.uniform(-0.3, 0.3), 2)), event_time_us=now - (40 - k) * 100_000)
        time.sleep(0.05)


def camera_app(app) -> None:
    """Node B's camera: a frame per zone every 100 ms, metadata eager, pixels lazy (opened on
    node B only when its zone runs hot); 60 rounds."""
    camera = app.graph.producer("camera")
    frame = 0
    for step in range(60):
        if app.stopping.is_set():
            return
        for zone in ZONES:
            frame += 1
            pixels = frame_bytes(zone, frame)
            camera.publish_lazy(
                CAMERA, FrameMeta(zone, frame, 128, 128), length=len(pixels), sha256=hashlib.sha256(pixels).digest(),
                open=lambda z=zone, f=frame: frame_bytes(z, f), event_time_us=step * 5 * SECOND_US,
            )  # fmt: skip
        time.sleep(0.1)


__all__ = [
    "AB", "BH", "CAMERA", "TEMPERATURE_RAW", "SEED_ENV", "EDGE_A", "EDGE_B", "FAN_COMMAND", "FAN_REQUEST", "HOST", "SENSORS", "SERIAL", "ZONE_MEAN_AT_B",
    "BOARD_MEAN_AT_A", "BOARD_MEAN_AT_B", "OPERATOR",
    "build", "build_graph", "camera_app", "fan_speed_of", "frame_is_hot", "probes_app", "whole_greenhouse",
]
