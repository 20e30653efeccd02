"""The manifest commands: ``compile`` a graph file, ``validate``, ``diff``, ``show`` and draw
(``graph``) manifests."""

from __future__ import annotations

import argparse
import sys

from manyfold.cli.errors import EXIT_FAILED, EXIT_OK, CliError


def load_graph_file(path: str):
    """Run FILE.py and return the graph it builds: a module-level ``graph`` (a Graph), or a
    ``build_graph()`` function returning one."""
    import runpy
    from pathlib import Path

    from manyfold.graph import Graph

    file = Path(path)
    if not file.is_file():
        raise CliError(f"{path}: no such file")
    try:
        namespace = runpy.run_path(str(file), run_name="manyfold_compile")
    except Exception as error:  # the user's file failed: say where, not a traceback of ours
        raise CliError(f"{path} raised {type(error).__name__}: {error}") from None
    graph = namespace.get("graph")
    if graph is None and callable(namespace.get("build_graph")):
        graph = namespace["build_graph"]()
    if not isinstance(graph, Graph):
        raise CliError(f"{path} must define `graph` (a manyfold.graph.Graph) or a `build_graph()` function returning one")
    return graph


def read_manifest(path: str):
    """The manifest in ``path`` (a ManifestError, reported as a sentence, when it is not one)."""
    from manyfold.manifest import Manifest

    return Manifest.read(path)


def cmd_compile(args: argparse.Namespace) -> int:
    from manyfold import manifest

    m = manifest.compile(load_graph_file(args.file))
    if args.output:
        m.write(args.output, cbor=args.cbor)
        print(f"wrote {args.output} (manifest {m.id[:16]}, {len(m.routes)} routes, {len(m.nodes)} nodes, {len(m.edges)} edges)", file=sys.stderr)
    elif args.cbor:
        sys.stdout.buffer.write(m.to_cbor())
    else:
        sys.stdout.write(m.to_json())
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from manyfold import manifest

    m = read_manifest(args.manifest)
    found = manifest.validate(m)
    for v in found:
        print(v)
    violations = [v for v in found if v.severity != "warning"]
    if violations:
        print(f"{args.manifest}: {len(violations)} problem(s) found", file=sys.stderr)
        return EXIT_FAILED
    warned = f", {len(found)} warning(s)" if found else ""
    print(f"{args.manifest}: valid ({len(manifest.RULES)} checks{warned}, manifest {m.id[:16]})")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from manyfold import manifest

    d = manifest.diff(read_manifest(args.old), read_manifest(args.new))
    for change in d.changes:
        print(change)
    if d.empty:
        print("no differences")
    else:
        print("compatible" if d.compatible else "INCOMPATIBLE: consumers of the old manifest may break")
    return EXIT_OK if d.compatible else EXIT_FAILED


def cmd_show(args: argparse.Namespace) -> int:
    from manyfold.cli import render

    m = read_manifest(args.manifest)
    console = render.console()
    console.print(f"[bold]{m.format}[/] manifest {m.id} (loads with manyfold {m.compatible})")
    console.print(
        render.table(
            "routes", ("route", "schema", "partition", "history/retain", "writers"),
            ((r.route, f"{m.schema(r.schema).name}@{m.schema(r.schema).version}", r.partition, f"{r.history}/{r.retain}", r.writers) for r in m.routes),
            priority=("route",),
        )  # fmt: skip
    )
    edges = {e.name: e for e in m.edges}

    def inputs(node) -> str:
        return ", ".join(
            f"{edges[i].source}" + (f" [{edges[i].policy.kind} {edges[i].policy.capacity or ''}]" if edges[i].policy.kind != "inline" else "")
            for i in node.inputs
        )

    def params(node) -> str:
        return ", ".join(f"{k}={v['ref'] if isinstance(v, dict) else v}" for k, v in sorted(node.params.items()))

    console.print(
        render.table(
            "nodes", ("node", "kind", "partition", "inputs", "outputs", "params"),
            ((n.name, n.kind, n.partition, inputs(n), n.outputs, params(n)) for n in m.nodes),
        )  # fmt: skip
    )
    if m.primitives:
        console.print(
            render.table(
                "primitives", ("instance", "contract", "maturity", "policies", "nodes", "stores"),
                ((p.instance, f"{p.contract} v{p.version}", p.maturity, ", ".join(f"{k}={v}" for k, v in p.policies.items()), p.nodes,
                  [f"{s.name} ({s.kind}, sync {s.sync})" for s in p.stores]) for p in m.primitives),
                priority=("instance",),
            )  # fmt: skip
        )
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from manyfold import manifest

    m = read_manifest(args.manifest)
    if args.output.endswith(".dot"):
        with open(args.output, "w") as f:
            f.write(manifest.to_dot(m))
    else:
        manifest.render_svg(m, args.output)
    print(f"wrote {args.output}")
    return EXIT_OK


def register(subparsers) -> None:
    """Adds ``compile``, ``validate``, ``diff``, ``show`` and ``graph``."""
    compile_ = subparsers.add_parser("compile", help="compile FILE.py's graph into a manifest")
    compile_.add_argument("file", help="a Python file defining `graph` (a Graph) or `build_graph()`")
    compile_.add_argument("-o", "--output", help="write here (JSON, or CBOR for .cbor) instead of stdout")
    compile_.add_argument("--cbor", action="store_true", help="write deterministic CBOR instead of canonical JSON")
    compile_.set_defaults(func=cmd_compile)

    validate = subparsers.add_parser("validate", help="check a manifest against every validation rule")
    validate.add_argument("manifest")
    validate.set_defaults(func=cmd_validate)

    diff = subparsers.add_parser("diff", help="semantic diff of two manifests, and whether the change is compatible")
    diff.add_argument("old")
    diff.add_argument("new")
    diff.set_defaults(func=cmd_diff)

    show = subparsers.add_parser("show", help="print a manifest's routes, nodes and primitive instances")
    show.add_argument("manifest")
    show.set_defaults(func=cmd_show)

    graph = subparsers.add_parser("graph", help="draw a manifest (SVG with Graphviz, or .dot)")
    graph.add_argument("manifest")
    graph.add_argument("-o", "--output", required=True, help="graph.svg (needs Graphviz's dot) or graph.dot")
    graph.set_defaults(func=cmd_graph)


__all__ = ["cmd_compile", "cmd_diff", "cmd_graph", "cmd_show", "cmd_validate", "load_graph_file", "read_manifest", "register"]
