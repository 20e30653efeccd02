"""The cluster commands: ``plan`` a manifest onto nodes (``manyfold.cluster.place``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from manyfold.cli.errors import EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    from manyfold.cli.manifest_cmds import read_manifest
    from manyfold.cluster.nodes_file import NodesFile
    from manyfold.cluster.place import make_plan

    m = read_manifest(args.manifest)
    nodes = NodesFile.read(Path(args.nodes)) if args.nodes else NodesFile()
    plan = make_plan(m, manifest_path=Path(args.manifest), plan_path=Path(args.output), nodes=nodes)
    plan.write(Path(args.output))
    summary = ", ".join(f"{n.name} ({', '.join(n.hosted)})" for n in plan.nodes)
    print(f"wrote {args.output}: {len(plan.nodes)} nodes [{summary}], {len(plan.links)} links", file=sys.stderr)
    return EXIT_OK


def register(subparsers) -> None:
    """Adds ``plan``."""
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


__all__ = ["cmd_plan", "register"]
