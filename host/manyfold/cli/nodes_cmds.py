"""``manyfold nodes``: which runtime nodes exist and the devices behind them
(:mod:`manyfold.discovery`), as a table or, with ``--json``, one object ``{"nodes": [...]}``."""

from __future__ import annotations

import argparse
import json

from manyfold.cli import arguments
from manyfold.cli.errors import EXIT_FAILED, EXIT_OK, CliError


def cmd_nodes(args: argparse.Namespace) -> int:
    from manyfold.cli import render
    from manyfold.discovery import BeaconOptions, NodeState, discover, seeds_from
    from manyfold.federation.targets import is_zenoh

    if not args.cluster and not args.peer and not args.beacon:
        raise CliError("say where to look: --cluster PLAN_OR_ADDRESS (or zenoh:ENDPOINT), --peer HOST:PORT or --beacon")
    if is_zenoh(args.cluster):
        if args.peer or args.beacon:
            raise CliError("--cluster zenoh:ENDPOINT lists the nodes present at the Zenoh router; it does not combine with --peer or --beacon")
        listing = _zenoh_listing(args)
    else:
        seeds = seeds_from(args.cluster, tuple(args.peer))
        beacon = BeaconOptions.parse(args.beacon_group, args.beacon_interface) if args.beacon else None
        listing = discover(seeds, beacon=beacon, listen_s=args.listen_s, timeout_s=args.timeout)
    if args.json:
        print(json.dumps(listing.to_dict(), indent=2))
    else:
        console = render.console()
        title = f"{len(listing.online)} of {len(listing.nodes)} nodes online"
        table = render.table(title, ("node", "id", "admin", "listen", "partitions", "state", "found", "devices"),
                             optional=("listen", "id"), priority=("node",))  # fmt: skip
        for n in listing.nodes:
            devices = [f"{d.partition} ({d.state}{', ' + d.port if d.port else ''})" for d in n.devices]
            name = f"{n.name} (other manifest)" if n.other_manifest else n.name
            table.add_row(name, n.id, n.where, n.listen, n.partitions, n.state, n.found, devices,
                          style=None if n.state is NodeState.ONLINE else "red")  # fmt: skip
        console.print(table)
        for n in listing.nodes:
            if n.error:
                console.print(f"{n.name}: {n.error}", markup=False)
        for note in listing.notes:
            console.print(note, markup=False)
    return EXIT_OK if listing.online else EXIT_FAILED


def _zenoh_listing(args: argparse.Namespace):
    from manyfold.discovery.zenoh import discover_zenoh
    from manyfold.federation.targets import zenoh_endpoints
    from manyfold.zenoh.client import ZenohClient
    from manyfold.zenoh.options import DEFAULT_PREFIX

    with ZenohClient(zenoh_endpoints(args.cluster), args.zenoh_prefix or DEFAULT_PREFIX) as client:
        return discover_zenoh(client, timeout_s=args.timeout)


def register(subparsers) -> None:
    """Adds ``nodes``."""
    nodes = subparsers.add_parser(
        "nodes", help="list the runtime nodes found and the devices behind them",
        description="Find nodes from configured addresses (a plan or an admin HOST:PORT, --peer), from the peer lists the "
        "nodes exchange, and with --beacon from the multicast beacon heard for --listen-s seconds; every candidate is "
        "dialed in parallel (status) within --timeout. With --cluster zenoh:ENDPOINT: the nodes whose presence token the "
        "Zenoh router holds, each asked through its admin queryable. Exit 1 when no node answered.",
    )  # fmt: skip
    nodes.add_argument("--cluster", metavar="PLAN_OR_ADDRESS",
                       help="a plan file (every node), one node's admin HOST:PORT, or zenoh:ENDPOINT (the nodes present at a Zenoh router)")
    nodes.add_argument("--zenoh-prefix", metavar="P", help="--cluster zenoh:...: the deployment's key prefix (default manyfold)")  # fmt: skip
    nodes.add_argument("--peer", action="append", default=[], metavar="HOST:PORT", help="a node's admin endpoint (repeatable)")
    nodes.add_argument("--beacon", action="store_true", help="also listen for the nodes' multicast beacon")
    nodes.add_argument("--beacon-group", metavar="IPV4:PORT", help="the beacon's group (default 239.255.109.102:7477)")
    nodes.add_argument("--beacon-interface", metavar="IPV4", help="the interface's address to listen on (default: the route's)")
    nodes.add_argument("--listen-s", type=arguments.seconds, default=2.0, metavar="S", help="seconds to listen for beacons (default 2)")
    arguments.timeout(nodes, 0.5, "each node's answer")
    nodes.add_argument("--json", action="store_true", help='one JSON object {"nodes": [...]}')
    nodes.set_defaults(func=cmd_nodes)


__all__ = ["cmd_nodes", "register"]
