"""Draw a manifest: Graphviz DOT text, rendered to SVG by the `dot` program.

Routes are rounded boxes (coloured by plane), nodes are boxes named by kind, mailboxes are
cylinders on their edges, epoch boundaries are dashed edges, and each partition is a cluster;
inside it, the parts of each primitive instance (nodes, routes, mailboxes into its nodes) are a
cluster labelled with the instance and its contract.
Graphviz (`apt install graphviz`) is the standard graph layout engine; the DOT text is
produced without it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from manyfold.graph.errors import ManifestError
from manyfold.manifest.model import Manifest

PLANE_COLOURS = {"read": "#dbeafe", "write": "#fde68a", "state": "#d1fae5", "query": "#e9d5ff", "debug": "#e5e7eb"}


def _q(text: str) -> str:
    return '"' + text.replace("\\\\", "\\\\\\\\").replace('"', '\\\\"') + '"'


def to_dot(m: Manifest) -> str:
    """The manifest as a DOT digraph (deterministic)."""
    lines = ["digraph manyfold {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=9];']
    by_partition: dict[str, list[tuple[str | None, str]]] = {}
    part_of: dict[str, str] = {}  # 'n:name' / 'r:route' -> the primitive instance it belongs to
    for p in m.primitives:
        for name in p.nodes:
            part_of.setdefault("n:" + name, p.instance)
        for route in p.routes:
            part_of.setdefault("r:" + str(route), p.instance)
    for r in m.routes:
        text = str(r.route)
        label = f"{r.route.owner}.{r.route.family}.{r.route.stream}\\n{r.route.plane.word}.{r.route.layer.word} {r.route.variant.word}"
        colour = PLANE_COLOURS.get(r.route.plane.word, "#ffffff")
        by_partition.setdefault(r.partition, []).append((part_of.get("r:" + text), f"    {_q('r:' + text)} [shape=box, style=\"rounded,filled\", fillcolor={_q(colour)}, label={_q(label)}];"))
    for n in m.nodes:
        by_partition.setdefault(n.partition, []).append((part_of.get("n:" + n.name), f"    {_q('n:' + n.name)} [shape=box, style=filled, fillcolor=\"#f3f4f6\", label={_q(n.name + chr(92) + 'n' + n.kind)}];"))
    node_partition = {n.name: n.partition for n in m.nodes}
    for e in m.edges:
        if e.policy.kind == "mailbox":
            label = f"{e.name}{chr(92)}n{e.policy.capacity}, {e.policy.overflow}"
            by_partition.setdefault(node_partition.get(e.target, "main"), []).append((
                part_of.get("n:" + e.target), f"    {_q('m:' + e.name)} [shape=cylinder, style=filled, fillcolor=\"#fee2e2\", label={_q(label)}];"
            ))
    for i, (partition, items) in enumerate(sorted(by_partition.items())):
        profile = next((p.profile for p in m.partitions if p.name == partition), "local")
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f"    label={_q(f'partition {partition} ({profile})')}; style=dashed; color=\"#9ca3af\";")
        lines.extend(line for instance, line in items if instance is None)
        for j, instance in enumerate(sorted({i for i, _ in items if i is not None})):
            record = m.primitive(instance)
            lines.append(f"    subgraph cluster_{i}_{j} {{")
            lines.append(f"      label={_q(f'{instance} ({record.contract} v{record.version})')}; style=\"rounded,filled\"; fillcolor=\"#fafaf9\"; color=\"#57534e\";")
            lines.extend("  " + line for owner, line in items if owner == instance)
            lines.append("    }")
        lines.append("  }")
    for e in m.edges:
        src, dst = _q("r:" + str(e.source)), _q("n:" + e.target)
        if e.policy.kind == "mailbox":
            mb = _q("m:" + e.name)
            lines.append(f"  {src} -> {mb};")
            lines.append(f"  {mb} -> {dst};")
        else:
            style = ' [style=dashed, label="next epoch"]' if e.policy.kind == "epoch_boundary" else ""
            if e.link:
                style = f" [color=\"#dc2626\", label={_q('link ' + e.link)}]"
            lines.append(f"  {src} -> {dst}{style};")
    for n in m.nodes:
        for r in n.outputs:
            lines.append(f"  {_q('n:' + n.name)} -> {_q('r:' + str(r))};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(m: Manifest, path: str | Path) -> Path:
    """Write the manifest's picture as SVG (needs Graphviz's `dot`)."""
    dot = shutil.which("dot")
    if dot is None:
        raise ManifestError("drawing needs Graphviz's `dot` program: install it (apt install graphviz) or write DOT with --dot")
    result = subprocess.run([dot, "-Tsvg"], input=to_dot(m), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise ManifestError(f"dot failed: {result.stderr.strip()}")
    path = Path(path)
    path.write_text(result.stdout)
    return path
