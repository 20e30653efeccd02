"""The greenhouse: a local graph that explains itself.

Two zones (north, south) report temperature and humidity over a probe network that can
reorder readings; a probe flushes a burst of buffered readings that overflows the bounded
ingest mailbox. A sliding window keeps a mean per zone. A camera publishes frames lazily: the
bytes are opened only for a zone that runs hot, inspected, and turned into a fan speed request
(at most one per 30 s). The fan is a write binding whose reported value lags behind. An
operator's misting command waits for a control epoch that never comes, and expires.

At the end the graph itself, through the query plane, answers: which routes exist and who owns
them; where the buffers, windows and guards are; which inputs, payloads and epochs explain the
last fan command; which taints were added or repaired; which payloads were opened and why.

Run it with ``manyfold demo`` or ``python examples/greenhouse.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from dataclasses import dataclass

from manyfold import query
from manyfold.graph import (
    FLOAT,
    Aggregate,
    Graph,
    Idempotency,
    JoinClass,
    Layer,
    LinkCapabilities,
    Mailbox,
    Overflow,
    Plane,
    Route,
    SyntheticSource,
    Variant,
    schema,
    taints_of,
)

SECOND_US = 1_000_000
ZONES = ("north", "south")
HOT_C = 28.0


@schema(version=1)
@dataclass(frozen=True)
class Reading:
    """A probe's temperature reading."""

    zone: str
    celsius: float


@schema(version=1)
@dataclass(frozen=True)
class Humidity:
    zone: str
    percent: float


@schema(version=1)
@dataclass(frozen=True)
class FrameMeta:
    """What a camera frame's metadata says; the pixels are a lazy payload."""

    zone: str
    frame: int
    width: int
    height: int


def frame_bytes(zone: str, frame: int, size: int = 16_384) -> bytes:
    """A deterministic synthetic image (what the camera would return when asked)."""
    seed = hashlib.sha256(f"{zone}:{frame}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def fan_speed_from_frame(pixels: bytes) -> float:
    """A stand-in for image analysis: a fan speed (percent) from the frame's brightness."""
    return round(min(100.0, 40.0 + sum(pixels[:512]) / 512 / 4.0), 1)


DEVICE = "greenhouse-sensors"
"""The embedded-lite partition: the sensor board (docs/embedded.md)."""


@dataclass
class DeviceSide:
    """The device partition's routes as the host sees them, and the fan loop across the link."""

    outputs: dict
    """device route (printed) -> the host route it is forwarded to over the UART link."""
    fan: object
    """The host's write binding for the board's fan setpoint."""
    desired_to_device: Route
    """The device route the host's desired fan setpoint travels to."""
    device_reported: Route
    """The device route on which the board reports its fan setpoint."""


@dataclass
class Greenhouse:
    """The graph and the routes and nodes the report talks about."""

    graph: Graph
    temperature_raw: Route
    temperature: Route
    humidity: Route
    camera: Route
    zone_mean: Route
    inspections: Route
    mist: Route
    fan: object
    seed: int
    fan_commands: list
    device: DeviceSide | None = None


def sensor_chain(g: Graph) -> dict[str, Route]:
    """The sensor board's seeded synthetic sensors and operators (scaling, windows, a deadband, a
    rate limiter, a threshold), as in ``manyfold.devices.greenhouse``; call it inside the board
    partition's ``with``. Returns the routes that go to the host, by name: z1_mean, z1_hot,
    z2_mean, h1, h2 (this order). The greenhouse and the fleet demo both build the board with it."""
    from manyfold.devices import greenhouse as dev

    def r(text, source=None):
        return g.route(Route.parse(text), FLOAT, source=source)

    z1_raw = r(dev.Z1_TEMP_RAW, SyntheticSource(dev.TEMP_PERIOD_US, "triangle", 2700.0, 300.0, 48, 8.0, 1))
    z2_raw = r(dev.Z2_TEMP_RAW, SyntheticSource(dev.TEMP_PERIOD_US, "triangle", 2150.0, 150.0, 64, 8.0, 2, 50_000))
    h1_raw = r(dev.Z1_HUMIDITY_RAW, SyntheticSource(dev.HUMIDITY_PERIOD_US, "random_walk", 60.0, 15.0, 1, 1.5, 3, 100_000))
    h2_raw = r(dev.Z2_HUMIDITY_RAW, SyntheticSource(dev.HUMIDITY_PERIOD_US, "triangle", 55.0, 10.0, 20, 0.0, 4, 150_000))
    z1 = g.scale(z1_raw, scale=0.01, output=r(dev.Z1_TEMP), name="z1_celsius")
    z1_avg = g.count_window(z1.output, size=4, output=r(dev.Z1_TEMP_AVG), name="z1_mean")
    hot = g.threshold(z1_avg.output, above=dev.HOT_ABOVE_C, output=r(dev.Z1_HOT), name="z1_hot")
    z2 = g.scale(z2_raw, scale=0.01, output=r(dev.Z2_TEMP), name="z2_celsius")
    z2_avg = g.time_window(z2.output, width_us=2 * SECOND_US, slide_us=SECOND_US, records=False, output=r(dev.Z2_TEMP_AVG), name="z2_mean")
    h1 = g.deadband(h1_raw, band=2.0, output=r(dev.Z1_HUMIDITY), name="h1_deadband")
    h2 = g.rate_limit(h2_raw, max_events=1, interval_us=2 * SECOND_US, output=r(dev.Z2_HUMIDITY), name="h2_rate")
    return {"z1_mean": z1_avg.output, "z1_hot": hot.output, "z2_mean": z2_avg.output, "h1": h1.output, "h2": h2.output}


def _device_partition(g: Graph) -> DeviceSide:
    """The sensor board: seeded synthetic sensors, scaling, windows, a deadband, a rate limiter,
    a threshold and the fan actuator, as in ``manyfold.devices.greenhouse``; its outputs cross
    a UART link (ordered, not reliable, not authenticated, not durable) to the host, and the
    host's fan setpoint crosses back."""
    from manyfold.devices import greenhouse as dev

    board = g.partition(DEVICE, profile="embedded-lite", board="lm3s6965evb")
    uart = LinkCapabilities(ordered=True, reliable=False, authenticated=False, durable=False)
    g.link("uart", board, "main", transport="serial", capabilities=uart)
    with board:
        sensors = sensor_chain(g)

        def r(text):
            return g.route(Route.parse(text), FLOAT)

        desired_in = r(dev.FAN_DESIRED)
        fan_reported, fan_effective = r(dev.FAN_REPORTED), r(dev.FAN_EFFECTIVE)
        g.actuator(desired_in, reported=fan_reported, effective=fan_effective, apply_us=200_000, name="fan_actuator")

    # The host's side: every device output is forwarded over the link into a host route, and
    # a hot zone 1 asks the board's fan to run.
    outputs = {}
    for out in (*sensors.values(), fan_effective):
        host_route = Route(Plane.READ, Layer.LOGICAL, "uplink", out.family, out.stream, out.variant, 1)
        g.connect(out, g.route(host_route, FLOAT), link=uart, name=f"uplink_{out.family}_{out.stream}")
        outputs[str(out)] = host_route
    fan = g.write_binding("host", "fan", "setpoint", FLOAT, retry_max=2, retry_interval_us=2 * SECOND_US,
                          idempotency=Idempotency.ABSOLUTE_VALUE, name="board_fan_binding")
    g.connect(fan_reported, fan.reported, link=uart, name="uplink_fan_reported")
    g.map(outputs[str(sensors["z1_hot"])], board_fan_speed, schema=FLOAT, output=fan.request, name="board_fan_control")
    with board:
        # The loop desired -> actuator -> reported -> binding -> desired closes here; the
        # link's transmit queue (a mailbox) makes it safe, and the graph refuses it without.
        g.connect(fan.desired, desired_in, link=uart, mailbox=Mailbox(4, Overflow.DROP_OLDEST), name="downlink_fan_desired")
    return DeviceSide(outputs, fan, desired_in, fan_reported)


def _fan_inbox(g: Graph, desired: Route) -> list:
    """The simulated greenhouse fan's inbox: the commands it received, once each."""
    commands: list = []

    def fan_inbox(envelope) -> None:
        # The fan applies each request once: a retry carries the same request (idempotent by
        # value), so it is not a new command.
        request = str(envelope.parents[0])
        if not commands or commands[-1][2] != request:
            commands.append((envelope.ingest_time_us, envelope.value, request))

    g.subscribe(desired, fan_inbox, name="fan_device_inbox")
    return commands


def with_board(seed: int = 7, *, board: str = "sim"):
    """The greenhouse with its sensor board: the full system graph is compiled, its device
    partition lowered to an image and run by ``board`` (``sim``: the host simulation, the
    default; or an emulated board's name), the host partition loaded from the same manifest,
    and the two joined by a :class:`~manyfold.devices.bridge.DeviceBridge`. Returns
    (greenhouse, bridge, stop) where ``stop()`` shuts the board down."""
    from manyfold import manifest, sim
    from manyfold.devices.bridge import DeviceBridge
    from manyfold.devices.lower import partition_image

    system = build(seed, device=True)
    m = manifest.compile(system.graph)
    image = partition_image(m, DEVICE)
    host = manifest.load(m, callables=system.graph._callables, partitions=["main"])
    stop = lambda: None  # noqa: E731 - replaced when a board process runs
    if board == "sim":
        client = sim.open(image, board="lm3s6965evb", session=seed)
        where = "host simulation"
    else:
        from manyfold.devices import qemu

        b = qemu.bootable(board)
        running = qemu.start_board(b, qemu.build_firmware(b), image)
        client, stop = running.client(), running.stop
        where = f"QEMU {b.qemu_machine}" if b.emulated else f"QEMU stand-in {b.qemu_target[0]}"
    client.connect(lockstep=True, reset=True)
    gh = dataclasses.replace(system, graph=host, fan_commands=_fan_inbox(host, system.fan.desired))
    bridge = DeviceBridge(m, DEVICE, host, client, where=where)
    return gh, bridge, stop


def board_fan_speed(mean_celsius: float) -> float:
    """The board fan's speed (percent) for a hot zone 1 mean."""
    return round(min(100.0, 50.0 + 10.0 * (mean_celsius - HOT_C)), 1)


def build(seed: int = 7, *, device: bool = False) -> Greenhouse:
    """Declare the routes and wire the graph; with ``device`` the sensor board's partition, the
    UART link and the board's fan loop too."""
    g = Graph()

    def route(plane, layer, owner, family, stream, variant=Variant.META):
        return Route(plane, layer, owner, family, stream, variant, 1)

    temperature_raw = g.route(route(Plane.READ, Layer.RAW, "probes", "climate", "temperature"), Reading, audit=True)
    humidity = g.route(route(Plane.READ, Layer.RAW, "probes", "climate", "humidity"), Humidity)
    temperature = g.route(route(Plane.READ, Layer.LOGICAL, "greenhouse", "climate", "temperature"), Reading, retain=1024)
    camera = g.route(route(Plane.READ, Layer.BULK, "camera", "vision", "frame", Variant.PAYLOAD), FrameMeta, audit=True)
    mist = g.route(route(Plane.WRITE, Layer.LOGICAL, "operator", "climate", "mist", Variant.REQUEST), FLOAT, audit=True)

    # The probe network may reorder readings, and a burst can overflow the ingest mailbox.
    g.connect(
        temperature_raw, temperature, name="ingest",
        mailbox=Mailbox(16, Overflow.DROP_OLDEST), link=LinkCapabilities(ordered=False),
    )
    ordered = g.resequence(temperature, delay_us=10 * SECOND_US, name="reorder")
    window = g.time_window(
        ordered.output, width_us=60 * SECOND_US, slide_us=20 * SECOND_US, lateness_us=0,
        aggregate=Aggregate.MEAN, value="celsius", key="zone", name="zone_mean",
    )
    g.time_window(humidity, width_us=60 * SECOND_US, aggregate=Aggregate.MAX, value="percent", key="zone", name="humidity_max")

    # Open a zone's camera frames only while its window mean runs hot.
    latest_state = g.join(camera, window.output, join_class=JoinClass.LOOKUP, left_key="zone", right_key="key", capacity=8, name="frame_with_zone")
    hot_frames = g.filter(latest_state.output, lambda pair: pair.right.value is not None and pair.right.value > HOT_C, name="hot_frames")
    inspections = g.open_payloads(hot_frames.output, name="inspect")
    speed = g.map(inspections.output, fan_speed_from_frame, schema=FLOAT, name="fan_speed")

    fan = g.write_binding(
        "fan", "climate", "speed", FLOAT,
        retry_max=2, retry_interval_us=10 * SECOND_US, idempotency=Idempotency.ABSOLUTE_VALUE, name="fan_binding",
    )
    g.resistor(speed.output, min_interval_us=30 * SECOND_US, output=fan.request, name="fan_pacing")

    commands = _fan_inbox(g, fan.desired)
    device_side = _device_partition(g) if device else None
    return Greenhouse(g, temperature_raw, temperature, humidity, camera, window.output, inspections.output, mist, fan, seed, commands, device_side)


def run(gh: Greenhouse, *, minutes: int = 6, bridge=None) -> Greenhouse:
    """Drive five minutes of greenhouse life on the virtual clock (deterministic per seed)."""
    g, rng = gh.graph, random.Random(gh.seed)
    probes, camera, fan_device, operator = (g.producer(n) for n in ("probes", "camera", "fan", "operator"))
    # The misting command waits for control epoch 50, which never comes: it expires.
    g.publish_guarded(gh.mist, 1.0, producer=operator, not_before_epoch=50, expires_at_us=240 * SECOND_US)

    reported_up_to = 0
    frame = 0
    for step in range(minutes * 12):  # 5-second steps
        now = step * 5 * SECOND_US
        for zone in ZONES:
            heat = 8.0 * min(1.0, max(0, step - 18) / 24) if zone == "north" else 0.0
            celsius = round(23.0 + heat + rng.uniform(-0.4, 0.4), 2)
            # Readings reach the graph up to 3 s late, so their event times can be out of order.
            probes.publish(gh.temperature_raw, Reading(zone, celsius), event_time_us=now - rng.randrange(0, 3) * SECOND_US)
            probes.publish(gh.humidity, Humidity(zone, round(55 + rng.uniform(-5, 5), 1)), event_time_us=now)
        if step == 30:
            # A probe reconnects and flushes 40 buffered readings at once: the ingest mailbox
            # (16 items) keeps the newest and drops the rest, visibly.
            for k in range(40):
                probes.publish(gh.temperature_raw, Reading("south", round(23.0 + rng.uniform(-0.3, 0.3), 2)), event_time_us=now - (40 - k) * 100_000)
        if step % 4 == 0:
            for zone in ZONES:
                frame += 1
                pixels = frame_bytes(zone, frame)
                camera.publish_lazy(
                    gh.camera, FrameMeta(zone, frame, 128, 128), length=len(pixels),
                    sha256=hashlib.sha256(pixels).digest(), open=lambda z=zone, f=frame: frame_bytes(z, f), event_time_us=now,
                )
        # The fan ramps: 5 s after a command it reports a speed halfway there (a stale
        # report), and 15 s after it acknowledges and reports the commanded speed.
        for at, value, _request in gh.fan_commands[reported_up_to:]:
            if now - at == 5 * SECOND_US:
                fan_device.publish(gh.fan.reported, round(value / 2, 1))
            if now - at >= 15 * SECOND_US:
                fan_device.publish(gh.fan.ack, int(at // SECOND_US))
                fan_device.publish(gh.fan.reported, value)
                reported_up_to += 1
        if step % 12 == 11:
            g.advance_epoch()  # one control epoch per minute
        g.advance(5 * SECOND_US)
        if bridge is not None:
            bridge.step(g.now_us)  # the board runs in lockstep with the host's clock
    g.run_until_idle()
    if bridge is not None:
        bridge.step(g.now_us)  # the setpoints produced by the last step reach the board too
    return gh


def report(gh: Greenhouse, console, *, bridge=None) -> None:
    """Print what the graph says about itself (rich); with the sensor board's ``bridge``, what
    the board says about itself too."""
    from manyfold.cli import render

    g = gh.graph
    topo = query.topology(g)

    render.heading(console, "[bold]Greenhouse: what the graph says about itself")
    t = render.table("1. Which routes exist, who owns them, and what they carry", ("route", "owner", "schema", "produced by", "envelopes"), priority=["route"])
    for r in topo.routes:
        if r.route.plane == Plane.QUERY:
            continue
        t.add_row(str(r.route), r.owner, r.schema, f"{r.producer_kind} {r.producer}", str(r.envelopes))
    console.print(t)

    flow = query.flow(g)
    marks = {w.node: w for w in query.watermarks(g)}
    t = render.table("2. Where the buffers, windows and guards are", ("where", "kind", "settings", "state"))
    for m in flow.mailboxes:
        t.add_row(f"edge {m.edge}", "mailbox", f"capacity {m.capacity}, {m.overflow}", f"depth {m.depth} (max {m.depth_max}), dropped {m.dropped}, delivered {m.delivered}")
    for n in topo.nodes:
        if n.kind in ("event_time_window", "processing_time_window", "resequence", "join", "resistor", "rate_limit", "capacitor", "write_binding"):
            settings = ", ".join(f"{k}={v}" for k, v in n.params.items() if k not in ("value",))
            w = marks.get(n.name)
            state = f"watermark {w.watermark_us / SECOND_US:.0f} s, late {w.late}" if w and w.watermark_us is not None else ""
            if n.buffered is not None:
                state = (state + ", " if state else "") + f"holding {n.buffered}"
            t.add_row(f"node {n.name}", n.kind, settings, state)
    sched = query.scheduler(g)
    for x in sched.expired:
        t.add_row(f"guard #{x.guard_id}", "scheduler guard", f"on {x.route}", f"expired at {x.expired_at_us / SECOND_US:.0f} s (epoch reached {sched.epoch})")
    for x in sched.gated:
        t.add_row(f"guard #{x.guard_id}", "scheduler guard", f"on {x.route}", "waiting")
    console.print(t)

    render.heading(console, "3. What explains the last fan command")
    last = g.latest(gh.fan.desired)
    if last is None:
        console.print("No fan command was issued.")
    else:
        lin = query.lineage(g, last)
        console.print(f"Last command: fan speed [bold]{last.value}[/] % ({last.id}), taints: {sorted(t.value for t in taints_of(last)) or 'none'}")
        t = render.table("Lineage: the chain of derived envelopes behind the command (newest first)", ("route", "by", "envelopes", "one of them", "epochs", "payload"), priority=["route"])
        chain: dict = {}
        for s in lin.steps:
            if s.parents:
                chain.setdefault(s.route, []).append(s)
        for r, steps in chain.items():
            first = steps[0]
            value = repr(first.value) if not isinstance(first.value, bytes) else f"<{len(first.value)} bytes>"
            payload = "lazy (the frame's)" if first.payload == "lazy" else "inline"
            epochs = sorted({s.control_epoch for s in steps})
            t.add_row(str(r), first.producer, str(len(steps)), value[:60], ",".join(map(str, epochs)), payload)
        console.print(t)
        t = render.table("Inputs from outside the graph that explain it", ("route", "envelopes", "values", "payloads opened"), priority=["route"])
        by_route: dict = {}
        for s in lin.steps:
            if not s.parents:
                by_route.setdefault(s.route, []).append(s)
        for r, steps in by_route.items():
            values = [s.value.celsius for s in steps if isinstance(s.value, Reading)]
            shown = f"{min(values):.2f} to {max(values):.2f} C" if values else ", ".join(repr(s.value) for s in steps)[:70]
            opened = "; ".join(f"{s.id.seq} by {', '.join(o.consumer for o in s.opens)}" for s in steps if s.opens) or "-"
            t.add_row(str(r), str(len(steps)), shown, opened)
        console.print(t)
        console.print(
            f"{len(lin.inputs)} inputs, {len(lin.payloads_opened)} payload opened, control epochs {list(lin.epochs)}, "
            f"{len(lin.missing)} ancestors no longer retained."
        )
        binding = next(n for n in query.topology(g).nodes if n.name == "fan_binding")
        counters = {n.name: n.counters for n in g.node_stats()}["fan_binding"]
        effective = g.latest(gh.fan.effective)
        console.print(
            f"Fan binding ({binding.params['idempotency']}, up to {binding.params['retry_max']} retries): "
            f"{counters['requests']} requests, {counters['retries']} retries, {counters['confirmations']} confirmed, "
            f"{counters['stale_reports']} stale reports; reported lags 15 s behind desired. Effective now: "
            f"{effective.value if effective else None} ({', '.join(t.value for t in taints_of(effective)) if effective and taints_of(effective) else 'stable'})."
        )

    t = render.table("4. Which taints were added or repaired, and where", ("route", "taint", "added by", "repaired by (proof)"), priority=["route"])
    for rt in query.taints(g):
        if rt.route not in (gh.temperature, gh.zone_mean, gh.fan.desired, gh.fan.effective, gh.inspections):
            continue
        for origin in rt.added:
            t.add_row(str(rt.route), origin.taint.value, f"{origin.kind} {origin.name}", "")
        for origin in rt.repaired:
            t.add_row(str(rt.route), origin.taint.value, "", f"{origin.name} ({origin.proof})")
    console.print(t)

    demand = query.payload_demand(g, gh.camera)
    audit = query.route_audit(g, gh.camera)
    t = render.table("5. Which payloads were opened, and why", ("frame", "opened by", "bytes", "why"), priority=["frame"])
    # Why: each inspection's lineage holds the frame it opened and the zone window that was hot.
    why: dict = {}
    for seq in range(1, query.topology(g).route(gh.inspections).envelopes + 1):
        inspection = g.envelope(gh.inspections, seq)
        if inspection is None:
            continue
        steps = query.lineage(g, inspection).steps
        frames = [s for s in steps if s.route == gh.camera]
        windows = [s.value for s in steps if s.route == gh.zone_mean]
        if frames and windows:
            w = windows[0]
            why[frames[0].id.seq] = f"zone {w.key}: mean {w.value:.2f} C over {w.start_us // SECOND_US}-{w.end_us // SECOND_US} s > {HOT_C} C"
    for entry in audit.of_kind("opened"):
        t.add_row(f"{gh.camera}@{entry.seq}", entry.who, entry.detail, why.get(entry.seq, "opened outside the graph"))
    console.print(t)
    console.print(
        f"Camera: {demand.metadata_events} frames published as metadata, {demand.opens} payload opens "
        f"({demand.cache_hits} from cache), {demand.bytes_materialized} bytes materialized; "
        f"opens by consumer: {demand.by_consumer}"
    )
    if bridge is not None:
        report_device(gh, bridge, console)


def report_device(gh: Greenhouse, bridge, console) -> None:
    """Section 6: the sensor board's routes and taints, asked over the link, beside the host
    routes they are forwarded to."""
    from manyfold.cli import render
    from manyfold.devices.image import route_id
    from manyfold.devices.protocol import taint_names

    client = bridge.client
    d = client.describe
    where = f" ({bridge.where})" if bridge.where else ""
    render.heading(console, f"6. The sensor board: partition {d.partition} on {d.board}{where}")
    console.print(
        f"Describe: manifest {d.manifest_id.hex()[:16] if d.manifest_id else None} "
        f"({'the host manifest' if d.manifest_id and d.manifest_id.hex() == bridge.manifest.id else 'NOT the host manifest'}), "
        f"image {d.image_status_name}, protocol v{d.version}, max message {d.max_message} B, lockstep {d.lockstep}."
    )
    host_taints = {rt.route: rt.taints for rt in query.taints(gh.graph)}
    host_topo = query.topology(gh.graph)
    device_taints = {t.route: t.seen for t in client.taints()}
    names = {route_id(name): name for name in bridge.route_names}  # the device knows routes by id
    t = render.table("Device routes (asked over the link) and the host routes they feed or come from", ("device route / host route", "seq", "device taints", "host envelopes", "host taints beyond the device's"), priority=["device route / host route"])
    from_host = {device_route: source for source, device_route in bridge.downlinks}
    to_host = dict(gh.device.outputs)
    to_host[str(gh.device.device_reported)] = gh.device.fan.reported
    for index, info in enumerate(client.routes()):
        name = names.get(info.id, f"#{info.id:08x}")
        on_device = taint_names(device_taints.get(index, 0))
        if name in to_host or name in from_host:
            host_route = to_host.get(name) or from_host[name]
            arrow = "->" if name in to_host else "<-"
            added = sorted({x.value for x in host_taints.get(host_route, ())} - set(on_device))
            t.add_row(f"{name}\n{arrow} {host_route}", str(info.seq), ", ".join(on_device) or "none",
                      str(host_topo.route(host_route).envelopes), ", ".join(added) or "none")
        else:
            t.add_row(f"{name}\n   (on the board only)", str(info.seq), ", ".join(on_device) or "none", "", "")
    console.print(t)
    counters = client.counters_device()
    flow = client.flow()
    dropped = sum(f.dropped for f in flow)
    fan = gh.graph.latest(gh.device.fan.desired)
    reported = gh.graph.latest(gh.device.fan.reported)
    console.print(
        f"Link: {bridge.counts.events_from_device} events from the board, {bridge.counts.events_to_device} fan setpoints to it; "
        f"board counters: {counters.frames} frames, {counters.frame_crc_errors} CRC errors, {counters.rx_gaps} gaps, "
        f"{counters.events_out} events out, {counters.events_unsent} unsent, {dropped} mailbox drops. "
        f"Host counters: {client.counters.nacks} nacks, {client.counters.retries} retries, {client.counters.reconnects} reconnects."
    )
    console.print(
        f"Board fan: host desired {fan.value if fan else None} %, board reported {reported.value if reported else None} % "
        f"(the board applies a setpoint 200 ms after it arrives; the binding confirms when its report matches)."
    )


def main(argv: list[str] | None = None) -> None:
    import argparse

    from manyfold.cli import render

    parser = argparse.ArgumentParser(description="The greenhouse demo.")
    parser.add_argument("--board", default="sim", help="sim (default) or an emulated board's name")
    args = parser.parse_args(argv)
    console = render.console()
    gh, bridge, stop = with_board(board=args.board)
    try:
        report(run(gh, bridge=bridge), console, bridge=bridge)
    finally:
        stop()


if __name__ == "__main__":
    main()
