"""The cluster commands: ``plan`` a manifest onto nodes (``manyfold.cluster.place``), and start
every node of a plan with ``up`` (``manyfold.cluster.up``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from manyfold.cli import arguments
from manyfold.cli.errors import EXIT_FAILED, EXIT_OK, CliError


def cmd_plan(args: argparse.Namespace) -> int:
    from manyfold.cli.manifest_cmds import read_manifest
    from manyfold.cluster.nodes_file import NodesFile
    from manyfold.cluster.place import make_plan

    m = read_manifest(args.manifest)
    nodes = NodesFile.read(Path(args.nodes)) if args.nodes else NodesFile()
    plan = make_plan(m, manifest_path=Path(args.manifest), plan_path=Path(args.output), nodes=nodes)
    plan.write(Path(args.output))
    summary = ", ".join(f"{n.name} ({', '.join(n.hosted)})" for n in plan.nodes)
    links = f"{len(plan.links)} link{'' if len(plan.links) == 1 else 's'}"
    print(f"wrote {args.output}: {len(plan.nodes)} node{'' if len(plan.nodes) == 1 else 's'} [{summary}], {links}", file=sys.stderr)
    return EXIT_OK


def cmd_up(args: argparse.Namespace) -> int:
    import signal

    from manyfold.cli import render
    from manyfold.cluster import up

    console = render.console(stderr=True)
    plan, _manifest = up.load(Path(args.plan))
    cluster = up.Cluster(plan, Path(args.plan).resolve().parent, store_root=Path(args.store_root).resolve() if args.store_root else None)
    show = _Progress(console)

    def stop_on_term(_signum, _frame):
        raise KeyboardInterrupt  # `kill` stops the nodes as Ctrl-C does

    signal.signal(signal.SIGTERM, stop_on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (a background job)
    try:
        with console.status(f"starting {len(plan.nodes)} nodes") as status:
            show.status = status
            cluster.start(timeout_s=args.timeout, progress=show)
        show.status = None
        console.print(render.table(
            f"{len(plan.nodes)} nodes running (Ctrl-C stops them all)", ("node", "pid", "program", "partitions", "listen", "admin"),
            ((p.node.name, p.pid, p.command.program, ", ".join(p.node.hosted), p.ready.listen if p.ready else "-",
              p.ready.admin if p.ready else "-") for p in cluster.processes),
            priority=("node",),
        ))  # fmt: skip
        exited = cluster.watch()
    except KeyboardInterrupt:
        console.print("stopping every node (SIGTERM, SIGKILL after 5 s)")
        cluster.stop(progress=show)
        return EXIT_OK
    assert exited is not None
    console.print(f"[red]node {exited.node.name} (pid {exited.pid}) exited with code {exited.code}[/]; it is not restarted")
    if exited.stderr_tail:
        console.print(f"its stderr ends: {exited.stderr_tail}", markup=False)
    cluster.stop(progress=show)
    return EXIT_FAILED


class _Progress:
    """Prints each start-up and stop event as a line (and updates the status line)."""

    def __init__(self, console) -> None:
        self.console = console
        self.status = None

    def __call__(self, event) -> None:
        from manyfold.cluster import up

        if isinstance(event, up.Started):
            note = f" ({event.command.note})" if event.command.note else ""
            self.console.print(f"started {event.node.name}: pid {event.pid}, {event.command.program}{note}", markup=False)
            if self.status is not None:
                self.status.update(f"waiting for {event.node.name} to be ready")
        elif isinstance(event, up.Ready):
            self.console.print(
                f"ready   {event.node.name}: pid {event.ready.pid}, partitions {', '.join(event.node.hosted)}, "
                f"listen {event.ready.listen}, admin {event.ready.admin} ({event.after_s:.1f} s)", markup=False,
            )  # fmt: skip
        elif isinstance(event, up.Stopped):
            how = "killed after the grace period" if event.killed else f"exit code {event.code}"
            self.console.print(f"stopped {event.node.name}: pid {event.pid}, {how}", markup=False)


def cmd_node(args: argparse.Namespace) -> int:
    from manyfold.cluster import node
    from manyfold.cluster.address import Address, PeerUrl
    from manyfold.cluster.plan import DeviceAssignment
    from manyfold.zenoh.options import ZenohOptions

    def pairs(values: list[str], flag: str) -> list[tuple[str, str]]:
        return [node.pair(v, flag) for v in values]

    options = node.NodeOptions(
        manifest=Path(args.manifest), name=args.node, node_id=args.node_id, partitions=tuple(args.partition),
        listen=Address.parse(args.listen, "--listen"), admin=Address.parse(args.admin, "--admin") if args.admin else None,
        links=tuple((n, PeerUrl.parse(u)) for n, u in pairs(args.link, "--link")),
        keys=tuple((n, Path(p)) for n, p in pairs(args.key, "--key")), faults=tuple(pairs(args.fault, "--fault")),
        devices=tuple(DeviceAssignment(p, u) for p, u in pairs(args.device, "--device")),
        callables=args.callables, app=args.app, lease_ms=args.lease_ms, queue_depth=args.queue_depth,
        peers=tuple(Address.parse(p, "--peer") for p in args.peer), advertise=args.advertise, beacon=args.beacon,
        beacon_group=args.beacon_group, beacon_interface=args.beacon_interface, gossip_ms=args.gossip_ms,
        store=Path(args.store) if args.store else None,
        zenoh=ZenohOptions.from_flags(args.zenoh_connect, args.zenoh_listen, args.zenoh_mode, args.zenoh_prefix),
    )  # fmt: skip
    if not options.partitions and not options.devices:
        raise CliError("a node hosts at least one partition: give --partition P (or --device P=PORT)")
    return node.run(options)


def discovery_flags(node: argparse.ArgumentParser) -> None:
    """The node's discovery flags, as manyfold-node's (docs/node.md)."""
    node.add_argument("--peer", action="append", default=[], metavar="HOST:PORT", help="another node's admin endpoint (repeatable)")
    node.add_argument("--advertise", metavar="HOST", help="the host peers reach this node at (needed with a wildcard bind)")
    node.add_argument("--beacon", action="store_true", help="send and hear the multicast beacon (off by default)")
    node.add_argument("--beacon-group", metavar="IPV4:PORT", help="the beacon's group (default 239.255.109.102:7477)")
    node.add_argument("--beacon-interface", metavar="IPV4", help="the interface's address the beacon uses (default: the route's)")
    node.add_argument("--gossip-ms", type=arguments.positive_int, metavar="MS", help="how often peers are asked for their peers (default 2000)")


def zenoh_flags(node: argparse.ArgumentParser) -> None:
    """The node's Zenoh flags, as manyfold-node's (docs/edge.md "Scaling out with Zenoh")."""
    node.add_argument("--zenoh-connect", action="append", default=[], metavar="ENDPOINT",
                      help="a Zenoh router to connect to, e.g. tcp/127.0.0.1:7447 (repeatable; needed by links on zenoh)")
    node.add_argument("--zenoh-listen", action="append", default=[], metavar="ENDPOINT", help="a Zenoh endpoint to listen on (peer mode; repeatable)")
    node.add_argument("--zenoh-mode", choices=("client", "peer"), help="client (default): everything through the router; peer: the router is a rendezvous")
    node.add_argument("--zenoh-prefix", metavar="P", help="the first chunks of every Zenoh key (default manyfold)")  # fmt: skip


def register(subparsers) -> None:
    """Adds ``plan``, ``up`` and ``node``."""
    plan = subparsers.add_parser(
        "plan", help="map a manifest's partitions to runtime nodes (a plan file for manyfold up)",
        description="Write a plan: which node hosts each partition, where it listens, who dials each link. "
        "By default one node per partition on 127.0.0.1 with free ports; a nodes file assigns partitions, "
        "gives hosts, ports and placement tags, device ports and link keys. The same inputs give the same file.",
    )  # fmt: skip
    plan.add_argument("manifest", help="a compiled manifest (manyfold compile -o graph.json)")
    plan.add_argument("--nodes", metavar="NODES.toml", help="the nodes you have and what you want of them (docs/edge.md)")
    plan.add_argument("-o", "--output", required=True, metavar="PLAN.toml", help="where to write the plan")
    plan.set_defaults(func=cmd_plan)

    up = subparsers.add_parser(
        "up", help="start every node of a plan, each its own process, until Ctrl-C",
        description="Start each node of PLAN (manyfold-node for native nodes when it is found, else manyfold node), "
        "wait for each to be ready, show where each runs, and stop them all on Ctrl-C (SIGTERM, SIGKILL after 5 s). "
        "A node that exits is reported with its exit code and stderr, never restarted; up then stops the rest and exits 1.",
    )  # fmt: skip
    up.add_argument("plan", help="a plan file (manyfold plan)")
    up.add_argument("--store-root", metavar="DIR", help="each node keeps its durable stores in DIR/NODE (default: the plan's directory)")
    arguments.timeout(up, 30.0, "every node's ready line")
    up.set_defaults(func=cmd_up)

    node = subparsers.add_parser(
        "node", help="run one runtime node in Python (partitions with Python operators, devices)",
        description="Host partitions of a manifest in this process: the Rust runtime node on a graph loaded with the "
        "partitions' Python functions. The flags of manyfold-node, plus --device, --callables and --app. Prints one JSON "
        "ready line; SIGTERM, Ctrl-C or the admin stop end it cleanly. Start-up errors: one sentence, exit code 2.",
    )  # fmt: skip
    node.add_argument("--manifest", required=True, metavar="PATH", help="the manifest (JSON or CBOR as manyfold compile writes it)")
    node.add_argument("--node", required=True, metavar="NAME", help="this node's name")
    node.add_argument("--node-id", required=True, type=lambda t: arguments.int_within(t, 0, 65535, "a node id (0 to 65535)"), metavar="N")
    node.add_argument("--partition", action="append", default=[], metavar="P", help="a partition hosted (repeatable)")
    node.add_argument("--listen", required=True, metavar="HOST:PORT", help="mesh: UDP and TCP both bound here (port 0: chosen)")
    node.add_argument("--link", action="append", default=[], metavar="NAME=URL", help="dial link NAME's peer: udp://HOST:PORT or tcp://HOST:PORT")
    node.add_argument("--key", action="append", default=[], metavar="NAME=PATH", help="pre-shared key of link NAME (32 bytes as hex)")
    node.add_argument("--admin", metavar="HOST:PORT", help="admin endpoint (port 0: chosen)")
    node.add_argument("--fault", action="append", default=[], metavar="NAME=SPEC", help="tests only: seeded datagram faults on link NAME")
    node.add_argument("--device", action="append", default=[], metavar="P=URL", help="device partition P on a pyserial URL or sim:BOARD")
    node.add_argument("--callables", metavar="MODULE:ATTR", help="functions the manifest names that cannot be imported by name")
    node.add_argument("--app", metavar="MODULE:FUNC", help="called with the node (manyfold.cluster.node.NodeApp) once it is ready")
    node.add_argument("--lease-ms", type=arguments.positive_int, metavar="MS", help="link lease (default 10000)")
    node.add_argument("--queue-depth", type=arguments.positive_int, metavar="N", help="events queued per link at most (default 1024)")
    node.add_argument("--store", metavar="DIR", help="the graph's store directory (durable operators keep their stores there)")
    discovery_flags(node)
    zenoh_flags(node)
    node.set_defaults(func=cmd_node)


__all__ = ["cmd_node", "cmd_plan", "cmd_up", "register"]
