"""``manyfold demo edge``: the greenhouse split across runtime nodes (``manyfold.examples.
greenhouse_edge``), each its own OS process on loopback, started by the plan/up machinery, and
a report of what the nodes say about themselves.

:func:`run_edge_demo` compiles the manifest, writes a nodes file and a plan into a work
directory, starts the nodes (``manyfold.cluster.up``), lets the probes and the camera run,
asks every node's admin endpoint for its status, asks the cluster through the query plane
(``manyfold.demos.edge_federated``: partition owners, links, taints, and the lineage of the
host's last fan command walked from node to node onto the board), stops every node, and returns an :class:`EdgeReport`.
With ``transport="zenoh"`` both node links run through a Zenoh router the demo starts
(``manyfold zenoh-router`` on a free loopback port; the nodes are its clients, or peers with
``zenoh_mode``), and the query plane is asked through the nodes' admin queryables.
:func:`render_edge_report` prints it; ``EdgeReport.to_dict()`` is ``--json``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from manyfold.cluster.admin import AdminClient, HeldEnvelope, LinkStatus, NodeStatus
from manyfold.cluster.errors import ClusterError
from manyfold.cluster.nodes_file import NodeRequest, NodesFile
from manyfold.cluster.place import make_plan
from manyfold.cluster.up import Cluster, Progress, Stopped
from manyfold.demos.edge_federated import FederatedReport, ask_federated, render_federated
from manyfold.examples import greenhouse_edge as gh
from manyfold.federation.lineage import WalkStep
from manyfold.zenoh.options import ZenohMode, ZenohOptions
APP_TIMEOUT_S = 60.0
SETTLE_S = 2.5
"""After the producers finish: longer than the fan pacing interval, so the last command is out."""


@dataclass(frozen=True)
class NodeRow:
    name: str
    pid: int
    partitions: tuple[str, ...]
    """Hosted partitions, devices included."""
    program: str
    listen: str
    admin: str
    incarnation: int

    def to_dict(self) -> dict:
        return {"name": self.name, "pid": self.pid, "partitions": list(self.partitions), "program": self.program,
                "listen": self.listen, "admin": self.admin, "incarnation": self.incarnation}  # fmt: skip


@dataclass(frozen=True)
class LinkRow:
    """A mesh link seen from both ends: capabilities requested and provided, events and drops."""

    name: str
    transport: str
    nodes: tuple[str, str]
    state: str
    requested: tuple[str, ...]
    provided: tuple[str, ...]
    missing: tuple[str, ...]
    events: int
    """Events delivered across the link (both directions)."""
    dropped: int
    retransmits: int
    gaps: int
    refusal: str | None

    def to_dict(self) -> dict:
        return {"name": self.name, "transport": self.transport, "nodes": list(self.nodes), "state": self.state,
                "requested": list(self.requested), "provided": list(self.provided), "missing": list(self.missing),
                "events": self.events, "dropped": self.dropped, "retransmits": self.retransmits, "gaps": self.gaps,
                "refusal": self.refusal}  # fmt: skip


@dataclass(frozen=True)
class Uplink:
    """A device route forwarded over the serial link into a route of the owning node: that
    route's last sequence number and taints (the device's and the serial link's)."""

    device_route: str
    route: str
    seq: int
    taints: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"device_route": self.device_route, "route": self.route, "seq": self.seq, "taints": list(self.taints)}


@dataclass(frozen=True)
class DeviceRow:
    partition: str
    node: str
    port: str
    uplinks: tuple[Uplink, ...] = ()

    def to_dict(self) -> dict:
        return {"partition": self.partition, "node": self.node, "port": self.port, "uplinks": [u.to_dict() for u in self.uplinks]}


@dataclass(frozen=True)
class EdgeReport:
    nodes: tuple[NodeRow, ...]
    links: tuple[LinkRow, ...]
    devices: tuple[DeviceRow, ...]
    fan_command: HeldEnvelope | None
    lineage: tuple[WalkStep, ...]
    """The fan command's lineage across the nodes (the federated walk's steps)."""
    stopped: dict[str, int | None] = field(default_factory=dict)
    """Exit code of each node after the stop (0: clean)."""
    board: str = "sim"
    federated: FederatedReport | None = None

    def to_dict(self) -> dict:
        fan = self.fan_command
        return {
            "nodes": [n.to_dict() for n in self.nodes],
            "links": [link.to_dict() for link in self.links],
            "devices": [d.to_dict() for d in self.devices],
            "fan_command": None if fan is None else {"route": str(fan.route), "seq": fan.seq, "value": fan.value,
                                                     "taints": sorted(t.value for t in fan.taints)},  # fmt: skip
            "lineage": [s.to_dict() for s in self.lineage],
            "stopped": self.stopped,
            "federated": None if self.federated is None else self.federated.to_dict(),
        }


def nodes_file(device_port: str, zenoh: ZenohOptions | None = None) -> NodesFile:
    """Node A hosts ingest and owns the board, node B the control side, the host its own (every
    node a Zenoh client or peer of ``zenoh``'s router when given)."""
    return NodesFile(
        nodes=(
            NodeRequest(gh.EDGE_A, partitions=(gh.EDGE_A,), app="manyfold.examples.greenhouse_edge:probes_app"),
            NodeRequest(gh.EDGE_B, partitions=(gh.EDGE_B,), app="manyfold.examples.greenhouse_edge:camera_app"),
            NodeRequest(gh.HOST, partitions=(gh.HOST,)),
        ),
        devices=((gh.SENSORS, device_port),),
        zenoh=zenoh,
    )  # fmt: skip


def _link_rows(plan, statuses: dict[str, NodeStatus]) -> tuple[LinkRow, ...]:
    rows = []
    for link in plan.links:
        ends: list[LinkStatus] = [statuses[n].link(link.name) for n in link.nodes if n in statuses]
        if not ends:
            continue
        first = ends[0]
        rows.append(LinkRow(
            link.name, link.transport.value, link.nodes, "/".join(sorted({e.state for e in ends})), first.requested,
            first.provided, first.missing, sum(e.events_rx for e in ends), sum(e.dropped for e in ends),
            sum(e.retransmits for e in ends), sum(e.gaps for e in ends), next((e.refusal for e in ends if e.refusal), None),
        ))  # fmt: skip
    return tuple(rows)


def _uplinks(m, partition: str, admin: AdminClient) -> tuple[Uplink, ...]:
    """The device's routes forwarded to the owning node, as that node holds them."""
    produced = {str(r.route) for r in m.routes if r.partition == partition}
    out = []
    for e in m.edges:
        if e.link is not None and str(e.source) in produced:
            target = m.node(e.target).outputs[0]
            held = admin.latest(target)
            if held is not None:
                out.append(Uplink(str(e.source), str(target), held.seq, tuple(sorted(t.value for t in held.taints))))
    return tuple(sorted(set(out), key=lambda u: u.route))


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise ClusterError(f"the edge demo: {what} did not happen within {timeout_s:g} s")
        time.sleep(0.1)


def run_edge_demo(
    *, seed: int = 7, board: str = "sim", workdir: Path | None = None, progress: Callable[[Progress | str], None] = lambda _e: None,
    transport: str | None = None, zenoh_mode: ZenohMode = ZenohMode.CLIENT, link: str = "serial",
) -> EdgeReport:  # fmt: skip
    """Runs the edge greenhouse as at least three OS processes and reports on it (module docs).
    ``transport`` puts both node links on ``udp``, ``tcp`` or ``zenoh`` (default: ab on udp, bh
    on tcp); on zenoh the demo starts ``manyfold zenoh-router`` on a free loopback port and every
    node joins it in ``zenoh_mode``. ``link="udp"`` runs an emulated board with Ethernet on its
    UDP build: node A owns it by its ``udp://`` address."""
    from manyfold import manifest

    if transport not in (None, "udp", "tcp", "zenoh"):
        raise ClusterError(f"the edge demo runs its node links on udp, tcp or zenoh, not {transport!r}")
    with tempfile.TemporaryDirectory(prefix="manyfold-edge-") as tmp:
        where = Path(workdir or tmp)
        m = manifest.compile(gh.build(transport))
        m.write(where / "greenhouse-edge.json")
        stop_board = lambda: None  # noqa: E731 - replaced when QEMU runs the board
        if board == "sim":
            port = "sim:lm3s6965evb"
        else:
            from manyfold.devices import qemu
            from manyfold.devices.lower import partition_image

            b = qemu.bootable(board)
            progress(f"booting {b.name} in QEMU")
            running_board = qemu.start_board(b, qemu.build_firmware(b, link=link), partition_image(m, gh.SENSORS), link=link)
            port, stop_board = running_board.url, running_board.stop
        try:
            if transport != "zenoh":
                return _run(m, where, port, seed, board, progress)
            from manyfold.zenoh.native import native
            from manyfold.zenoh.router import RouterProcess

            native()  # a build without Zenoh: one sentence before anything starts
            with RouterProcess() as router:
                progress(f"Zenoh router (manyfold zenoh-router) on {router.listen}, pid {router.pid}; the nodes join it as {zenoh_mode.value}s")
                return _run(m, where, port, seed, board, progress, ZenohOptions(zenoh_mode, (router.listen,)))
        finally:
            stop_board()


def _run(m, where: Path, port: str, seed: int, board: str, progress, zenoh: ZenohOptions | None = None) -> EdgeReport:
    plan = make_plan(m, manifest_path=where / "greenhouse-edge.json", plan_path=where / "plan.toml", nodes=nodes_file(port, zenoh))
    plan.write(where / "plan.toml")
    cluster = Cluster(plan, where, env={**os.environ, gh.SEED_ENV: str(seed)})
    stopped: dict[str, int | None] = {}

    def on_event(event) -> None:
        if isinstance(event, Stopped):
            stopped[event.node.name] = event.code
        progress(event)

    cluster.start(progress=on_event)
    admin = {p.node.name: AdminClient(p.ready.admin, timeout_s=10) for p in cluster.processes}
    try:
        _wait(lambda: all(link.state == "up" for c in admin.values() for link in c.status().links), 15, "every link up")
        progress("the probes and the camera run on nodes A and B")

        def produced() -> bool:
            raw, cam = admin[gh.EDGE_A].latest(gh.TEMPERATURE_RAW), admin[gh.EDGE_B].latest(gh.CAMERA)
            return raw is not None and cam is not None and raw.seq >= 184 and cam.seq >= 120

        _wait(produced, APP_TIMEOUT_S, "the probes' and the camera's last events")
        time.sleep(SETTLE_S)
        statuses = {name: c.status() for name, c in admin.items()}
        fan = admin[gh.HOST].latest(gh.FAN_COMMAND)
        progress("asking the cluster through the query plane")
        through = f"zenoh:{','.join(zenoh.connect)}" if zenoh is not None else None  # the nodes' admin queryables
        federated = ask_federated(where / "plan.toml", str(gh.FAN_COMMAND), gh.HOST, fan.seq if fan is not None else None, cluster=through)
        lineage = federated.lineage.steps if federated.lineage is not None else ()
        nodes = tuple(
            NodeRow(p.node.name, p.pid, statuses[p.node.name].partitions, p.command.program, str(p.ready.listen),
                    str(p.ready.admin), statuses[p.node.name].incarnation)
            for p in cluster.processes if p.ready is not None
        )  # fmt: skip
        devices = tuple(DeviceRow(d.partition, n.name, d.port, _uplinks(m, d.partition, admin[n.name])) for n in plan.nodes for d in n.devices)
        links = _link_rows(plan, statuses)
    finally:
        for c in admin.values():
            c.close()
        cluster.stop(progress=on_event)
    return EdgeReport(nodes, links, devices, fan, lineage, stopped, board, federated)


def render_edge_report(report: EdgeReport, console) -> None:
    """Prints the report as tables (rich)."""
    from manyfold.cli import render

    render.heading(console, "[bold]Greenhouse on the edge: three runtime nodes and a board")
    console.print(render.table(
        "1. Nodes: one OS process each", ("node", "pid", "program", "partitions", "listen", "admin"),
        ((n.name, n.pid, n.program, ", ".join(n.partitions), n.listen, n.admin) for n in report.nodes), priority=("node",),
    ))  # fmt: skip
    console.print(render.table(
        "2. Links: capabilities requested and provided, events and drops",
        ("link", "transport", "nodes", "state", "requested", "provided", "missing (tainted)", "events", "dropped", "retransmits", "gaps"),
        ((k.name, k.transport, " <-> ".join(k.nodes), k.state, k.requested, k.provided, k.missing, k.events, k.dropped,
          k.retransmits, k.gaps) for k in report.links),
        optional=("retransmits", "gaps"),
    ))  # fmt: skip
    for d in report.devices:
        console.print(render.table(
            f"Device: partition {d.partition} on {d.port}, owned by node {d.node} over the serial link uart",
            ("device route -> node route", "last seq", "taints"),
            ((f"{u.device_route}\n-> {u.route}", u.seq, ", ".join(u.taints) or "-") for u in d.uplinks), priority=("device route -> node route",),
        ))  # fmt: skip
    render.heading(console, "3. What explains the host's last fan command, node by node")
    fan = report.fan_command
    if fan is None:
        console.print("No fan command reached the host.")
    else:
        console.print(f"Last command at the host: fan speed [bold]{fan.value}[/] % ({fan.route}@{fan.seq}), "
                      f"taints: {', '.join(sorted(t.value for t in fan.taints)) or 'none'}")  # fmt: skip
        by: dict[tuple[str, str], list[WalkStep]] = {}
        for step in report.lineage:
            by.setdefault((step.node, step.route), []).append(step)
        console.print(render.table(
            "Lineage across nodes (the node that answered, newest first)", ("node", "route", "envelopes", "seqs", "taints"),
            ((node, route, len(steps), _seqs([s.seq for s in steps]), ", ".join(sorted({t for s in steps for t in s.taints})) or "-")
             for (node, route), steps in by.items()),
            priority=("route",),
        ))  # fmt: skip
        crossings = sorted({(s.node, p.node) for s in report.lineage for p in s.parents if p.node not in (s.node, "?")})
        console.print(f"{len(report.lineage)} envelopes on {len({s.node for s in report.lineage})} nodes; the chain crosses "
                      + (", ".join(f"{a} <- {b}" for a, b in crossings) or "no node boundary") + ".")  # fmt: skip
    if report.federated is not None:
        render_federated(report.federated, console)
    clean = all(code == 0 for code in report.stopped.values())
    console.print(f"Stopped every node ({'each exit code 0' if clean else report.stopped}).")


def _seqs(seqs: list[int]) -> str:
    seqs = sorted(seqs)
    return f"{seqs[0]}" if len(seqs) == 1 else f"{seqs[0]}..{seqs[-1]}"


__all__ = ["DeviceRow", "Uplink", "EdgeReport", "LinkRow", "NodeRow", "nodes_file", "render_edge_report", "run_edge_demo"]
