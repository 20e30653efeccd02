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


def build(seed: int = 7) -> Greenhouse:
    """Declare the routes and wire the graph."""
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

    commands: list = []

    def fan_inbox(envelope) -> None:
        # The fan applies each request once: a retry carries the same request (idempotent by
        # value), so it is not a new command.
        request = str(envelope.parents[0])
        if not commands or commands[-1][2] != request:
            commands.append((envelope.ingest_time_us, envelope.value, request))

    g.subscribe(fan.desired, fan_inbox, name="fan_device_inbox")
    return Greenhouse(g, temperature_raw, temperature, humidity, camera, window.output, inspections.output, mist, fan, seed, commands)


def run(gh: Greenhouse, *, minutes: int = 6) -> Greenhouse:
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
    g.run_until_idle()
    return gh


def report(gh: Greenhouse, console) -> None:
    """Print what the graph says about itself (rich)."""
    from rich.table import Table

    g = gh.graph
    topo = query.topology(g)

    console.rule("[bold]Greenhouse: what the graph says about itself")
    t = Table(title="1. Which routes exist, who owns them, and what they carry")
    for column in ("route", "owner", "schema", "produced by", "envelopes"):
        t.add_column(column, overflow="fold")
    for r in topo.routes:
        if r.route.plane == Plane.QUERY:
            continue
        t.add_row(str(r.route), r.owner, r.schema, f"{r.producer_kind} {r.producer}", str(r.envelopes))
    console.print(t)

    flow = query.flow(g)
    marks = {w.node: w for w in query.watermarks(g)}
    t = Table(title="2. Where the buffers, windows and guards are")
    for column in ("where", "kind", "settings", "state"):
        t.add_column(column, overflow="fold")
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

    console.rule("3. What explains the last fan command")
    last = g.latest(gh.fan.desired)
    if last is None:
        console.print("No fan command was issued.")
    else:
        lin = query.lineage(g, last)
        console.print(f"Last command: fan speed [bold]{last.value}[/] % ({last.id}), taints: {sorted(t.value for t in taints_of(last)) or 'none'}")
        t = Table(title="Lineage: the chain of derived envelopes behind the command (newest first)")
        for column in ("route", "by", "envelopes", "one of them", "epochs", "payload"):
            t.add_column(column, overflow="fold")
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
        t = Table(title="Inputs from outside the graph that explain it")
        for column in ("route", "envelopes", "values", "payloads opened"):
            t.add_column(column, overflow="fold")
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
        counters = {n["name"]: n["counters"] for n in g.node_stats()}["fan_binding"]
        effective = g.latest(gh.fan.effective)
        console.print(
            f"Fan binding ({binding.params['idempotency']}, up to {binding.params['retry_max']} retries): "
            f"{counters['requests']} requests, {counters['retries']} retries, {counters['confirmations']} confirmed, "
            f"{counters['stale_reports']} stale reports; reported lags 15 s behind desired. Effective now: "
            f"{effective.value if effective else None} ({', '.join(t.value for t in taints_of(effective)) if effective and taints_of(effective) else 'stable'})."
        )

    t = Table(title="4. Which taints were added or repaired, and where")
    for column in ("route", "taint", "added by", "repaired by (proof)"):
        t.add_column(column, overflow="fold")
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
    t = Table(title="5. Which payloads were opened, and why")
    for column in ("frame", "opened by", "bytes", "why"):
        t.add_column(column, overflow="fold")
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


def main() -> None:
    from rich.console import Console

    console = Console()
    if console.width < 140:  # the tables carry full route names; narrower terminals wrap
        console = Console(width=140)
    report(run(build()), console)


if __name__ == "__main__":
    main()
