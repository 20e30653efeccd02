"""``manyfold query --graph FILE WHAT``: ask a graph built by a Python file (``graph``, or
``build_graph()``, as ``manyfold compile`` reads it) one question locally, after the file ran
(whatever it published is in the graph). WHAT: ``health`` (each installed primitive instance:
healthy, degraded or blocked, and why, then each part's) or ``topology`` (the primitive
instances and their parts, then the nodes, each with its instance). ``--json`` prints the typed
answer's ``to_dict()`` (``health``: ``{"kind": "health", "instances": [...]}``, as a runtime
node answers it).
"""

from __future__ import annotations

import argparse
import json

from manyfold.cli.errors import EXIT_OK, CliError

LOCAL_WHATS = ("health", "topology")


def cmd_local_query(args: argparse.Namespace) -> int:
    from manyfold import query
    from manyfold.cli.manifest_cmds import load_graph_file

    if args.what not in LOCAL_WHATS:
        raise CliError(f"with --graph, WHAT is one of {', '.join(LOCAL_WHATS)}; got {args.what!r}")
    if args.route:
        raise CliError(f"{args.what} takes no argument (got {' '.join(args.route)})")
    graph = load_graph_file(args.graph)
    if args.what == "health":
        answer = query.HealthReport(tuple(query.health(graph)))
    else:
        answer = query.topology(graph)
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2, default=str))
        return EXIT_OK
    from manyfold.cli import render
    from manyfold.cli.federated_query import _parts, render_health

    console = render.console()
    if args.what == "health":
        render_health(console, answer.instances)
    else:
        if answer.primitives:
            console.print(render.table("primitive instances", ("instance", "contract", "parts"),
                                       ((p.instance, f"{p.contract} v{p.version}", _parts(p)) for p in answer.primitives), priority=("parts",)))  # fmt: skip
        console.print(render.table("nodes", ("node", "kind", "primitive", "inputs", "outputs"),
                                   ((n.name, n.kind, n.primitive, n.inputs, n.outputs) for n in answer.nodes), priority=("inputs", "outputs")))  # fmt: skip
    return EXIT_OK


__all__ = ["LOCAL_WHATS", "cmd_local_query"]
