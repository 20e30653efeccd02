"""``manyfold monitor``: a live view of a running cluster (terminal, JSON lines, web page)."""

from __future__ import annotations

import argparse
from pathlib import Path

from manyfold.cli import arguments
from manyfold.cli.errors import CliError


def cmd_monitor(args: argparse.Namespace) -> int:
    from manyfold.cli.render import console
    from manyfold.cluster.address import Address
    from manyfold.federation import targets_from
    from manyfold.monitor.run import MonitorOptions, run

    if args.cluster.startswith("zenoh:"):
        raise CliError("manyfold monitor watches a plan or a node's admin HOST:PORT; through Zenoh use manyfold nodes or manyfold query --cluster zenoh:...")
    targets = targets_from(args.cluster)
    manifest = None
    if args.manifest:
        from manyfold.manifest import Manifest

        manifest = Manifest.read(Path(args.manifest))
    elif args.http and Path(args.cluster).is_file():  # only the page draws it
        from manyfold.cluster import up

        _, manifest = up.load(Path(args.cluster))
    options = MonitorOptions(
        targets, manifest, interval_s=args.interval, lease_s=args.lease_s, principal=args.principal, json=args.json,
        http=Address.parse(args.http, "--http") if args.http else None, http_public=args.http_public,
        count=args.count, duration_s=args.duration, clients_max=args.http_clients,
    )  # fmt: skip
    return run(options, console=None if args.json else console())


def register(subparsers) -> None:
    """Adds ``monitor``."""
    p = subparsers.add_parser(
        "monitor", help="a live view of a running cluster: nodes, links, rates, drops, taints (terminal, --json, --http)",
        description="Poll every node of a cluster (its status and the taints query) and show nodes online / stale / gone, "
        "each link's rates, drops, queue depth and capabilities, taints as they appear, and devices. --json prints one "
        "snapshot per poll as a JSON line; --http serves a page with the manifest's graph and live counters.",
    )  # fmt: skip
    p.add_argument("--cluster", required=True, metavar="PLAN_OR_ADDRESS", help="a plan file (every node it plans) or a node's admin HOST:PORT")
    p.add_argument("--interval", type=arguments.seconds, default=1.0, metavar="S", help="seconds between polls (default 1)")
    p.add_argument("--lease-s", type=arguments.seconds, default=10.0, metavar="S", help="a node silent this long is gone (default 10)")
    p.add_argument("--principal", default="operator", help="the principal of the taints query (default operator)")
    p.add_argument("--json", action="store_true", help="print one JSON object per poll (JSON lines) instead of the live view")
    p.add_argument("--http", metavar="HOST:PORT", help="also serve the live page there (loopback unless --http-public)")
    p.add_argument("--http-public", action="store_true", help="allow --http on a non-loopback address (the page has no authentication)")
    p.add_argument("--http-clients", type=arguments.positive_int, default=8, metavar="N", help="event streams served at once (default 8)")
    p.add_argument("--manifest", metavar="FILE", help="the manifest to draw on the page (default: the plan's)")
    p.add_argument("--count", type=arguments.positive_int, metavar="N", help="stop after N polls")
    p.add_argument("--duration", type=arguments.seconds, metavar="S", help="stop after S seconds")
    p.set_defaults(func=cmd_monitor)
